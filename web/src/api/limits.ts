// The server's limits the forms respect before sending, as the contract states them
// (contract.test.ts fails when a number here differs from openapi.json).

export const TITLE_MAX_CHARS = 200;
export const SYSTEM_PROMPT_MAX_CHARS = 100_000;
export const MESSAGE_MAX_CHARS = 200_000;
export const FALLBACKS_MAX = 5;
/** The largest `limit` a list accepts. */
export const PAGE_MAX = 200;

/** The error codes the server marks as worth retrying (its table, `x-retryable` in the
 * contract): the same request may succeed later. */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  "rate_limited",
  "too_many_connections",
  "provider_error",
  "incomplete",
  "turn_timeout",
  "turn_lost",
  "unavailable",
]);
