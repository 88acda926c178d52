#!/usr/bin/env bash
# Smoke scenario: tools and modules work, deno starts.
set -x
jool --version
jool instance add default --netfilter --pool6 64:ff9b::/96
jool instance display
/mnt/deno/deno --version
lsmod | head -30
