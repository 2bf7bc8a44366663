import type { Signal } from "@preact/signals";
import { memo } from "preact/compat";
import type { ToolExecution } from "../api/types";
import type { ChatApp } from "../stores/app";
import type { MessageItem } from "../stores/messages";
import { money, refusalText, sentence, statusLabel, tokens } from "./format";
import { renderMarkdown } from "./markdown";
import type { SettingsTarget } from "./Settings";
import { MessageFiles } from "./Attachments";
import { ToolApproval } from "./ToolApproval";

/** Failures the user fixes in the provider's settings rather than by trying again. */
const KEY_PROBLEMS = new Set(["provider_key_refused", "provider_not_configured"]);

/** Copies a code block's text when its Copy button is pressed (one listener per message). */
function onCopy(e: MouseEvent) {
  const button = (e.target as HTMLElement).closest("button[data-copy]");
  if (!button) return;
  const code = button.closest(".code")?.querySelector("code")?.textContent ?? "";
  void navigator.clipboard?.writeText(code).then(
    () => {
      button.textContent = "Copied";
      setTimeout(() => (button.textContent = "Copy"), 1500);
    },
    () => (button.textContent = "Copy failed"),
  );
}

export const MessageView = memo(function MessageView({
  item,
  app,
  approvals,
  last,
  openSettings,
}: {
  item: Signal<MessageItem>;
  app: ChatApp;
  approvals: ToolExecution[];
  /** The conversation's last message: a failed one can be run again. */
  last: boolean;
  openSettings: (target?: SettingsTarget) => void;
}) {
  const m = item.value;
  const label = m.local === "failed" ? "Not sent" : m.local ? "Sending…" : statusLabel(m.status);
  const live = m.status === "pending" || m.status === "streaming";
  if (m.role === "tool") {
    return (
      <article class="message tool" aria-label="Tool result" data-message-id={m.id} data-status={m.status}>
        <details>
          <summary>Tool result {m.tool_call_id ? <code>{m.tool_call_id}</code> : null}</summary>
          <pre class="tool-output" tabIndex={0}>{m.content}</pre>
        </details>
      </article>
    );
  }
  return (
    <article
      class={`message ${m.role} status-${m.status}${m.local ? ` local-${m.local}` : ""}`}
      aria-label={m.role === "user" ? "You" : "Assistant"}
      aria-busy={live ? "true" : undefined}
      data-message-id={m.id}
      data-status={m.status}
    >
      <header class="message-head">
        <span class="who">{m.role === "user" ? "You" : (m.model ?? "Assistant")}</span>
        {label && <span class={`status-badge ${m.status}`}>{label}</span>}
      </header>
      {m.reasoning && (
        <details class="reasoning">
          <summary>Reasoning</summary>
          <div class="reasoning-text">{m.reasoning}</div>
        </details>
      )}
      {m.attachments && m.attachments.length > 0 && <MessageFiles app={app} items={m.attachments} />}
      {m.role === "user" ? (
        <div class="content plain">{m.content}</div>
      ) : (
        <div
          class="content markdown"
          onClick={onCopy}
          // Sanitized by renderMarkdown; raw HTML from the model is escaped before that.
          dangerouslySetInnerHTML={{ __html: renderMarkdown(m.content) }}
        />
      )}
      {live && !m.content && <div class="typing" aria-hidden="true"><span /><span /><span /></div>}
      {m.tool_calls && m.tool_calls.length > 0 && (
        <ul class="tool-calls" aria-label="Tool calls">
          {m.tool_calls.map((call) => {
            const waiting = approvals.find((a) => a.tool_call_id === call.id);
            return (
              <li key={call.id}>
                {waiting ? (
                  <ToolApproval app={app} execution={waiting} />
                ) : (
                  <details>
                    <summary>
                      Called <code>{call.name}</code>
                    </summary>
                    <pre tabIndex={0}>{JSON.stringify(call.arguments, null, 2)}</pre>
                  </details>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {m.error && (m.status === "error" || m.status === "incomplete") && (
        <div class="message-error">
          <p class="error-text">
            {refusalText(m.error.code, m.error.message)} <code class="error-code">{m.error.code}</code>
          </p>
          <div class="error-actions">
            {KEY_PROBLEMS.has(m.error.code) && m.provider && (
              <button type="button" class="link" onClick={() => openSettings({ provider: m.provider! })}>
                Open the {m.provider} settings
              </button>
            )}
            {last && m.status === "error" && m.role === "assistant" && !m.content && (
              <button type="button" class="ghost" onClick={() => void app.retry(m)}>
                Retry
              </button>
            )}
          </div>
        </div>
      )}
      {m.failure && (
        <p class="error-text">
          {sentence(m.failure)}{" "}
          <button type="button" class="link" onClick={() => app.discard(m)}>
            Dismiss
          </button>
        </p>
      )}
      {m.usage && (
        <footer class="usage" title="Tokens in / out and cost of this answer">
          {tokens(m.usage.input_tokens)} in · {tokens(m.usage.output_tokens)} out
          {m.usage.cached_tokens ? ` · ${tokens(m.usage.cached_tokens)} cached` : ""} · {money(m.usage.cost_micros)}
        </footer>
      )}
    </article>
  );
});
