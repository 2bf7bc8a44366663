import { describe, expect, it } from "vitest";
import { ApiError, type Api } from "../api/client";
import type { BudgetView } from "../api/types";
import { SettingsStore } from "../stores/settings";
import { effectiveLimit, used } from "./Budget";
import { dollarsToMicros, refusalText } from "./format";

const budget = (over: Partial<BudgetView>): BudgetView =>
  ({
    period: "month",
    limit_micros: null,
    personal_limit_micros: null,
    spent_micros: 0,
    reserved_micros: 0,
    resets_at: "2027-01-01T00:00:00Z",
    at_limit: "stop",
    balance_micros: null,
    ...over,
  }) as BudgetView;

describe("the budget gauge", () => {
  it("measures spent and held money against the tighter limit", () => {
    expect(effectiveLimit(budget({}))).toBeNull();
    expect(used(budget({}))).toBeNull();
    const b = budget({ limit_micros: 10_000_000, personal_limit_micros: 4_000_000, spent_micros: 1_000_000, reserved_micros: 1_000_000 });
    expect(effectiveLimit(b)).toBe(4_000_000);
    expect(used(b)).toBe(0.5);
    expect(used(budget({ limit_micros: 1, spent_micros: 5 }))).toBe(1);
    expect(used(budget({ limit_micros: 0 }))).toBe(1);
  });

  it("reads dollars as people type them", () => {
    expect(dollarsToMicros("5")).toBe(5_000_000);
    expect(dollarsToMicros(" $2.50 ")).toBe(2_500_000);
    expect(dollarsToMicros("0.000001")).toBe(1);
    for (const bad of ["", "-1", "1e3", "abc", "1.2345678", "10000000000"]) expect(dollarsToMicros(bad)).toBeNull();
  });
});

describe("refusals", () => {
  it("say when a rate limit lets the user go on", () => {
    expect(refusalText("rate_limited", "too many requests", 2_500)).toBe("Too many requests for now. You can go on in 3 s.");
    expect(refusalText("rate_limited", "x", undefined)).toContain("in 1 s");
  });

  it("show a spending limit's reset in the reader's own time and say where to look", () => {
    const text = refusalText("budget_exceeded", "your spending limit for this month is reached; it resets at 2027-01-01T00:00:00+00:00");
    expect(text).not.toContain("2027-01-01T");
    expect(text).toMatch(/^Your spending limit for this month is reached; it resets at .+ on .+\. See Settings › Usage\.$/);
    expect(refusalText("provider_error", "the provider failed")).toBe("The provider failed.");
  });
});

describe("budget and admin in the settings store", () => {
  it("leaves the balance empty when billing is off, and hides admin from a non-admin", async () => {
    const api = {
      budget: async () => budget({ limit_micros: 5 }),
      billing: async () => {
        throw new ApiError(404, "billing_off", "billing is not set up");
      },
      adminUsers: async () => {
        throw new ApiError(403, "forbidden", "this route is for admins");
      },
    } as unknown as Api;
    const store = new SettingsStore(api, async () => undefined);
    await store.loadBudget();
    expect(store.budget.value?.limit_micros).toBe(5);
    expect(store.billing.value).toBeNull();
    await store.loadUsers();
    expect(store.admin.value).toBe(false);
  });

  it("pages through every user for an admin and shows a new limit at once", async () => {
    const user = (id: string) => ({ id, subject: id, name: null, roles: [], created_at: "", period: "month", spent_micros: 1, limit_micros: null, personal_limit_micros: null });
    const pages: Record<string, { items: unknown[]; next_cursor: string | null }> = {
      first: { items: [user("a")], next_cursor: "c1" },
      c1: { items: [user("b")], next_cursor: null },
    };
    const api = {
      adminUsers: async (cursor?: string) => pages[cursor ?? "first"],
      putUserBudget: async (_id: string, limit: number | null, period: string) => budget({ limit_micros: limit, period: period as "day", spent_micros: 7 }),
    } as unknown as Api;
    const store = new SettingsStore(api, async () => undefined);
    await store.loadUsers();
    expect(store.admin.value).toBe(true);
    expect(store.users.value.map((u) => u.id)).toEqual(["a", "b"]);
    await store.setUserBudget("b", 3_000_000, "day");
    expect(store.users.value[1]).toMatchObject({ limit_micros: 3_000_000, period: "day", spent_micros: 7 });
    expect(store.users.value[0]!.limit_micros).toBeNull();
  });
});
