import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { ToolExecution } from "../api/types";
import type { ChatApp } from "../stores/app";

/** A call waiting for the user: what it is, how risky, with what arguments; approve or deny. */
export function ToolApproval({ app, execution }: { app: ChatApp; execution: ToolExecution }) {
  const busy = useSignal(false);
  const card = useRef<HTMLElement>(null);
  // A call that asks is what the user must see: bring it into view when it appears.
  useEffect(() => card.current?.scrollIntoView({ block: "nearest" }), []);
  const decide = async (decision: "approve" | "deny") => {
    busy.value = true;
    await app.decide(execution, decision);
    busy.value = false;
  };
  return (
    <section ref={card} class={`approval risk-${execution.risk}`} aria-label={`Approve ${execution.tool}?`} data-execution={execution.id}>
      <header>
        <strong>
          Run <code>{execution.tool}</code>?
        </strong>
        <span class={`risk-badge ${execution.risk}`}>{execution.risk}</span>
      </header>
      <pre class="arguments" tabIndex={0}>{JSON.stringify(execution.arguments, null, 2)}</pre>
      <div class="approval-actions">
        <button type="button" class="primary" disabled={busy.value} onClick={() => void decide("approve")}>
          Approve
        </button>
        <button type="button" class="danger" disabled={busy.value} onClick={() => void decide("deny")}>
          Deny
        </button>
      </div>
    </section>
  );
}
