#!/usr/bin/env bash
# Runs the project's pinned Deno (npm package deno, see package.json) from inside `deno task`.
# Why: `deno task` puts node_modules/.bin first on PATH and runs what it finds there as an npm script, which
# fails for the deno package's native binary. Falls back to a deno on PATH when node_modules has none.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$here/node_modules/.bin/deno" ]; then exec "$here/node_modules/.bin/deno" "$@"; fi
exec deno "$@"
