// Which failures the client sends again: the server's codes by its own table, anything else
// (no answer, a gateway's page) by status.

import { describe, expect, it } from "vitest";
import { ApiError } from "./client";

describe("ApiError.retryable", () => {
  it("follows the server's code when there is one", () => {
    expect(new ApiError(503, "unavailable", "").retryable).toBe(true);
    expect(new ApiError(429, "rate_limited", "").retryable).toBe(true);
    expect(new ApiError(500, "internal", "").retryable).toBe(false);
    expect(new ApiError(409, "conflict", "").retryable).toBe(false);
    expect(new ApiError(502, "provider_key_refused", "").retryable).toBe(false);
    expect(new ApiError(422, "validation_failed", "").retryable).toBe(false);
  });

  it("falls back on the status when the answer carried no code of ours", () => {
    expect(new ApiError(0, "network_error", "").retryable).toBe(true);
    expect(new ApiError(504, "http_error", "").retryable).toBe(true);
    expect(new ApiError(500, "http_error", "").retryable).toBe(false);
    expect(new ApiError(403, "http_error", "").retryable).toBe(false);
  });
});
