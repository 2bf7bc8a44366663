import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { BudgetView } from "../api/types";
import type { ChatApp } from "../stores/app";
import { dollarsToMicros, money, sentence, untilText } from "./format";

/** Amounts offered for prepaid credit, in micro-dollars. */
const CREDIT_AMOUNTS = [5_000_000, 10_000_000, 25_000_000, 50_000_000];

/** The limit that applies: the tighter of the operator's and the user's own. */
export function effectiveLimit(b: BudgetView): number | null {
  const limits = [b.limit_micros, b.personal_limit_micros].filter((l): l is number => l !== null && l !== undefined);
  return limits.length ? Math.min(...limits) : null;
}

/** How much of the limit is used or held, 0 to 1 (null without a limit). */
export function used(b: BudgetView): number | null {
  const limit = effectiveLimit(b);
  if (limit === null) return null;
  if (limit === 0) return 1;
  return Math.min(1, (b.spent_micros + b.reserved_micros) / limit);
}

/** The budget gauge, the user's own cap, and prepaid credit when billing is on. */
export function Budget({ app }: { app: ChatApp }) {
  const status = useSignal("");
  const cap = useSignal("");
  const amount = useSignal(CREDIT_AMOUNTS[1]!);
  const busy = useSignal(false);
  useEffect(() => {
    app.settings.loadBudget().catch((e: Error) => (status.value = sentence(e.message)));
  }, []);
  const budget = app.settings.budget.value;
  const billing = app.settings.billing.value;
  if (!budget) return status.value ? <p role="alert">{status.value}</p> : <p class="muted">Loading the budget…</p>;
  const limit = effectiveLimit(budget);
  const share = used(budget);
  const period = budget.period === "day" ? "today" : "this month";
  const saveCap = async (micros: number | null) => {
    status.value = "";
    try {
      await app.settings.savePersonalCap(micros);
      cap.value = "";
      status.value = micros === null ? "Your own cap is removed." : "Your own cap is saved.";
    } catch (e) {
      status.value = sentence((e as Error).message);
    }
  };
  const buy = async () => {
    busy.value = true;
    status.value = "";
    try {
      window.location.assign(await app.settings.checkout(amount.value));
    } catch (e) {
      status.value = sentence((e as Error).message);
      busy.value = false;
    }
  };
  return (
    <section class="stack budget" aria-labelledby="budget-heading">
      <h3 id="budget-heading">Budget</h3>
      {limit === null ? (
        <p>
          <strong>{money(budget.spent_micros)}</strong> spent {period}; no spending limit applies.
        </p>
      ) : (
        <>
          <meter
            min={0}
            max={1}
            low={0.75}
            high={0.9}
            optimum={0}
            value={share ?? 0}
            aria-label={`Spent ${period}: ${money(budget.spent_micros)} of ${money(limit)}`}
            class="budget-gauge"
          />
          <p>
            <strong>{money(budget.spent_micros)}</strong> of {money(limit)} spent {period}
            {budget.reserved_micros > 0 && <>, {money(budget.reserved_micros)} held by answers in progress</>}. Resets{" "}
            {untilText(budget.resets_at)}.
          </p>
        </>
      )}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          const micros = dollarsToMicros(cap.value);
          if (micros === null) status.value = "Give the cap in dollars, such as 5 or 2.50.";
          else void saveCap(micros);
        }}
      >
        <label>
          Your own cap per {budget.period} ($){" "}
          <input
            inputMode="decimal"
            value={cap.value}
            placeholder={budget.personal_limit_micros !== null && budget.personal_limit_micros !== undefined ? (budget.personal_limit_micros / 1_000_000).toFixed(2) : "none"}
            onInput={(e) => (cap.value = e.currentTarget.value)}
          />
        </label>
        <button type="submit">Save cap</button>
        {budget.personal_limit_micros !== null && budget.personal_limit_micros !== undefined && (
          <button type="button" onClick={() => void saveCap(null)}>
            Remove cap
          </button>
        )}
      </form>
      <p class="muted">Your cap applies only where it is below the operator's limit.</p>
      {billing && (
        <div class="stack">
          <h3>Credit</h3>
          <p>
            <strong>{money(billing.balance_micros)}</strong> prepaid credit left.
          </p>
          <div class="row">
            <label>
              Amount{" "}
              <select value={amount.value} onChange={(e) => (amount.value = Number(e.currentTarget.value))}>
                {CREDIT_AMOUNTS.map((a) => (
                  <option key={a} value={a}>
                    {money(a)}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" class="primary" disabled={busy.value} onClick={() => void buy()}>
              Buy credits
            </button>
          </div>
          {billing.payments.length > 0 && (
            <ul class="plain">
              {billing.payments.map((p) => (
                <li key={p.id}>
                  {money(p.amount_micros)} · {p.status === "paid" ? "paid" : "waiting for payment"} ·{" "}
                  {new Date(p.created_at).toLocaleDateString()}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {status.value && <p role="status">{status.value}</p>}
    </section>
  );
}
