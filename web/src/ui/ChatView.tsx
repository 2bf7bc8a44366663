import { useSignal } from "@preact/signals";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { MESSAGE_MAX_CHARS } from "../api/limits";
import type { Conversation, ToolExecution } from "../api/types";
import type { ChatApp } from "../stores/app";
import type { ConversationMessages } from "../stores/messages";
import { money, tokens } from "./format";
import { MessageView } from "./MessageView";
import { useVirtualList } from "./virtual";

/** Within this many pixels of the end, the list follows new text. */
const STICK_PX = 80;
/** A message's height before it is measured. */
const ESTIMATED_ROW_PX = 120;

export function ChatView({ app, conversation }: { app: ChatApp; conversation: Conversation }) {
  const view = app.messages.of(conversation.id);
  const totals = view.totals();
  const items = view.items.value;
  const live = items.map((s) => s.value).filter((m) => m.role === "assistant" && (m.status === "pending" || m.status === "streaming"));
  const last = items[items.length - 1]?.value;
  const canRegenerate = !live.length && last?.role === "assistant" && last.status !== "awaiting_approval";
  return (
    <section class="chat" aria-label={conversation.title}>
      <header class="chat-head">
        <div class="chat-title">
          <h1>{conversation.title}</h1>
          <span class="muted">
            {conversation.provider} / {conversation.model}
            {(conversation.settings.fallbacks?.length ?? 0) > 0 &&
              ` → ${conversation.settings.fallbacks.map((f) => f.model).join(", ")}`}
          </span>
        </div>
        <div class="totals" aria-label="Conversation usage" title="Tokens in / out and cost of this conversation">
          {tokens(totals.input_tokens)} in · {tokens(totals.output_tokens)} out · {money(totals.cost_micros)}
        </div>
      </header>
      <Notices view={view} />
      <MessageList app={app} view={view} />
      <Composer
        app={app}
        conversationId={conversation.id}
        streamingId={live[live.length - 1]?.id ?? null}
        canRegenerate={canRegenerate}
      />
    </section>
  );
}

function Notices({ view }: { view: ConversationMessages }) {
  const notices = view.notices.value;
  if (!notices.length) return null;
  const n = notices[notices.length - 1]!;
  return (
    <p class="notice" role="status">
      Context optimized ({n.strategy}): {tokens(n.tokens_before)} → {tokens(n.tokens_after)} tokens so the conversation fits
      the model's window.
    </p>
  );
}

function MessageList({ app, view }: { app: ChatApp; view: ConversationMessages }) {
  const scroller = useRef<HTMLDivElement>(null);
  const stuck = useRef(true);
  const items = view.items.value;
  const approvals = app.approvals.value;
  const virtualizer = useVirtualList({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ESTIMATED_ROW_PX,
    getItemKey: (i) => items[i]?.value.id ?? String(i),
  });
  const lastContent = items[items.length - 1]?.value.content.length ?? 0;
  // Follow the end while the reader is there: new messages and growing answers stay in view.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stuck.current) el.scrollTop = el.scrollHeight;
  }, [items.length, lastContent, virtualizer.getTotalSize()]);
  useEffect(() => {
    stuck.current = true;
    virtualizer.scrollToIndex(Math.max(0, items.length - 1), { align: "end" });
  }, [view.conversationId]);
  const onScroll = () => {
    const el = scroller.current;
    if (el) stuck.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
  };
  if (app.loadingMessages.value && !items.length) return <div class="messages empty muted">Loading…</div>;
  if (!items.length) return <div class="messages empty muted">Say something to start.</div>;
  return (
    <div class="messages" ref={scroller} onScroll={onScroll} role="log" aria-live="polite" aria-relevant="additions" tabIndex={0}>
      <div class="messages-inner" style={{ height: `${virtualizer.getTotalSize()}px` }}>
        {virtualizer.getVirtualItems().map((row) => {
          const item = items[row.index];
          if (!item) return null;
          return (
            <div
              key={row.key}
              data-index={row.index}
              ref={(el) => {
                if (el) virtualizer.measureElement(el);
              }}
              class="row-wrap"
              style={{ transform: `translateY(${row.start}px)` }}
            >
              <MessageView item={item} app={app} approvals={approvalsOf(approvals, item.value.id)} />
            </div>
          );
        })}
      </div>
    </div>
  );
}

const NONE: ToolExecution[] = [];

/** The same empty array for every message without waiting calls, so their rows stay memoized. */
function approvalsOf(all: ToolExecution[], messageId: string): ToolExecution[] {
  if (!all.some((a) => a.message_id === messageId)) return NONE;
  return all.filter((a) => a.message_id === messageId);
}

function Composer({
  app,
  conversationId,
  streamingId,
  canRegenerate,
}: {
  app: ChatApp;
  conversationId: string;
  streamingId: string | null;
  canRegenerate: boolean;
}) {
  const text = useSignal("");
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => input.current?.focus(), [conversationId]);
  const submit = () => {
    if (!text.value.trim()) return;
    app.send(text.value);
    text.value = "";
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label class="sr-only" for="composer">
        Message
      </label>
      <textarea
        id="composer"
        ref={input}
        rows={2}
        maxLength={MESSAGE_MAX_CHARS}
        placeholder="Message (Enter to send, Shift+Enter for a new line, Esc to stop)"
        value={text.value}
        onInput={(e) => (text.value = e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
          if (e.key === "Escape" && streamingId) app.stop(streamingId);
        }}
      />
      <div class="composer-actions">
        {canRegenerate && (
          <button type="button" class="ghost" onClick={() => app.regenerate()} title="Ask again">
            Regenerate
          </button>
        )}
        {streamingId ? (
          <button type="button" class="danger" onClick={() => app.stop(streamingId)} title="Stop (Esc)">
            Stop
          </button>
        ) : null}
        <button type="submit" class="primary" disabled={!text.value.trim()}>
          Send
        </button>
      </div>
    </form>
  );
}
