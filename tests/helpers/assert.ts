/**
 * The few assertions the tests use, on top of node:assert (JSR's @std/assert is unreachable here).
 * @module
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";

/** Deep strict equality with an optional message. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): asserts actual is T {
  deepStrictEqual(actual, expected, message);
}

/** Truthiness. */
export function assert(condition: unknown, message?: string): asserts condition {
  ok(condition, message);
}

/** Strict identity. */
export function assertStrictEquals<T>(actual: unknown, expected: T, message?: string): asserts actual is T {
  strictEqual(actual, expected, message);
}

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Calls fn, expects it to throw an instance of errorClass, returns the error. */
export function assertThrows<E extends Error>(fn: () => unknown, errorClass: ErrorClass<E>): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof errorClass) return error;
    throw new Error(`expected ${errorClass.name}, got ${error}`, { cause: error });
  }
  throw new Error(`expected ${errorClass.name} to be thrown, nothing was`);
}

/** Awaits fn, expects it to reject with an instance of errorClass, returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  errorClass: ErrorClass<E>,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof errorClass) return error;
    throw new Error(`expected ${errorClass.name}, got ${error}`, { cause: error });
  }
  throw new Error(`expected ${errorClass.name} to be thrown, nothing was`);
}
