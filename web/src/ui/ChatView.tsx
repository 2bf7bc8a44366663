import { useSignal, type Signal } from "@preact/signals";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { MESSAGE_MAX_CHARS } from "../api/limits";
import type { Conversation, ToolExecution } from "../api/types";
import type { ChatApp } from "../stores/app";
import { NEW_CONVERSATION } from "../stores/drafts";
import type { ConversationMessages } from "../stores/messages";
import { ComposerFiles, limitsText } from "./Attachments";
import { money, tokens } from "./format";
import { MessageView } from "./MessageView";
import type { SettingsTarget } from "./Settings";
import { useVirtualList } from "./virtual";

/** Within this many pixels of the end, the list follows new text. */
const STICK_PX = 80;
/** A message's height before it is measured. */
const ESTIMATED_ROW_PX = 120;

/** Puts the keyboard in the message box (after sign-in, creating or switching). */
export function focusComposer(): void {
  document.getElementById("composer")?.focus();
}

/** The length of `text` in code points (no array made: a paste may be megabytes). */
function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Phones and tablets: Enter is a new line there, and the Send button sends. */
function touchFirst(): boolean {
  return typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches;
}

export function ChatView({
  app,
  conversation,
  openSettings,
}: {
  app: ChatApp;
  conversation: Conversation;
  openSettings: (target?: SettingsTarget) => void;
}) {
  const view = app.messages.of(conversation.id);
  const totals = view.totals();
  const items = view.items.value;
  const live = items.map((s) => s.value).filter((m) => m.role === "assistant" && (m.status === "pending" || m.status === "streaming"));
  const last = items[items.length - 1]?.value;
  const canRegenerate = !live.length && last?.role === "assistant" && last.status !== "awaiting_approval";
  // Bumped by each send, so the list goes to the end and shows the new message.
  const sent = useSignal(0);
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
      <MessageList app={app} view={view} sent={sent} openSettings={openSettings} />
      <Composer
        app={app}
        conversationId={conversation.id}
        streamingId={live[live.length - 1]?.id ?? null}
        canRegenerate={canRegenerate}
        onSent={() => sent.value++}
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

function MessageList({
  app,
  view,
  sent,
  openSettings,
}: {
  app: ChatApp;
  view: ConversationMessages;
  sent: Signal<number>;
  openSettings: (target?: SettingsTarget) => void;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const stuck = useRef(true);
  const atEnd = useSignal(true);
  const items = view.items.value;
  const approvals = app.approvals.value;
  const virtualizer = useVirtualList({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ESTIMATED_ROW_PX,
    getItemKey: (i) => items[i]?.value.id ?? String(i),
  });
  const lastContent = items[items.length - 1]?.value.content.length ?? 0;
  const toEnd = () => {
    stuck.current = true;
    atEnd.value = true;
    virtualizer.scrollToIndex(Math.max(0, items.length - 1), { align: "end" });
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  };
  // Follow the end while the reader is there: new messages and growing answers stay in view.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stuck.current) el.scrollTop = el.scrollHeight;
  }, [items.length, lastContent, virtualizer.getTotalSize()]);
  useEffect(toEnd, [view.conversationId, sent.value]);
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stuck.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
    atEnd.value = stuck.current;
  };
  if (app.loadingMessages.value && !items.length) return <div class="messages empty muted">Loading…</div>;
  if (!items.length) return <div class="messages empty muted">Say something to start.</div>;
  const lastId = items[items.length - 1]?.value.id;
  return (
    <div class="messages-frame">
      <div class="messages" ref={scroller} onScroll={onScroll} role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages" tabIndex={0}>
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
                <MessageView
                  item={item}
                  app={app}
                  approvals={approvalsOf(approvals, item.value.id)}
                  last={item.value.id === lastId}
                  openSettings={openSettings}
                />
              </div>
            );
          })}
        </div>
      </div>
      {!atEnd.value && (
        <button type="button" class="jump" onClick={toEnd}>
          Jump to latest <span aria-hidden="true">↓</span>
        </button>
      )}
    </div>
  );
}

const NONE: ToolExecution[] = [];

/** The same empty array for every message without waiting calls, so their rows stay memoized. */
function approvalsOf(all: ToolExecution[], messageId: string): ToolExecution[] {
  if (!all.some((a) => a.message_id === messageId)) return NONE;
  return all.filter((a) => a.message_id === messageId);
}

/** The message box: of a conversation, or (no conversation) the one that starts a new one. */
export function Composer({
  app,
  conversationId,
  streamingId = null,
  canRegenerate = false,
  onSent,
}: {
  app: ChatApp;
  conversationId: string | null;
  streamingId?: string | null;
  canRegenerate?: boolean;
  onSent?: () => void;
}) {
  const draft = app.drafts.of(conversationId ?? NEW_CONVERSATION);
  const uploads = app.uploadsOf(conversationId ?? NEW_CONVERSATION);
  const starting = useSignal(false);
  const dragging = useSignal(false);
  const input = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), [conversationId]);
  const text = draft.value;
  // Characters as the server counts them (code points, not UTF-16 units).
  const length = codePoints(text);
  const tooLong = length > MESSAGE_MAX_CHARS;
  const busy = conversationId ? app.busy(conversationId) : starting.value;
  const attached = uploads.readyFiles.value.length > 0;
  const uploading = !uploads.settled.value;
  const blocked = (!text.trim() && !attached) || tooLong || busy || uploading;
  const touch = touchFirst();
  const submit = async () => {
    if (blocked) return;
    const key = conversationId ?? NEW_CONVERSATION;
    const files = uploads.attachments();
    if (conversationId) {
      app.send(text, files);
      app.drafts.clear(key);
      uploads.clear();
      onSent?.();
      return;
    }
    starting.value = true;
    const started = await app.startConversation(text, files);
    starting.value = false;
    if (started) {
      app.drafts.clear(key);
      uploads.clear();
    }
  };
  const attach = (list: FileList | null | undefined) => {
    const files = list ? [...list] : [];
    if (files.length) uploads.add(files);
  };
  // Said only when it matters: too long, or typed while the previous answer still goes.
  const help = tooLong
    ? `This message is ${length.toLocaleString()} characters; at most ${MESSAGE_MAX_CHARS.toLocaleString()} can be sent.`
    : uploading
      ? "Files are still uploading or being read; the message can go once they are ready."
      : busy && text.trim()
        ? conversationId
          ? "The answer is still going: wait for it, stop it, or decide on its tool call first. What you type is kept."
          : "Starting the conversation…"
        : "";
  const hint = touch
    ? "Message"
    : "Message (Enter to send, Shift+Enter for a new line, Esc to stop)";
  return (
    <form
      class={dragging.value ? "composer dragging" : "composer"}
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
      onDragOver={(e) => {
        if (!e.dataTransfer?.types.includes("Files")) return;
        e.preventDefault();
        dragging.value = true;
      }}
      onDragLeave={() => (dragging.value = false)}
      onDrop={(e) => {
        if (!e.dataTransfer?.files.length) return;
        e.preventDefault();
        dragging.value = false;
        attach(e.dataTransfer.files);
      }}
    >
      {dragging.value && (
        <p class="drop-hint" aria-hidden="true">
          Drop to attach. {limitsText(app)}
        </p>
      )}
      <ComposerFiles uploads={uploads} />
      <label class="sr-only" for="composer">
        Message
      </label>
      <textarea
        id="composer"
        ref={input}
        rows={2}
        placeholder={hint}
        value={text}
        aria-invalid={tooLong}
        aria-describedby={help ? "composer-help" : undefined}
        onInput={(e) => app.drafts.set(conversationId ?? NEW_CONVERSATION, e.currentTarget.value)}
        onPaste={(e) => {
          const files = e.clipboardData?.files;
          if (files?.length) {
            e.preventDefault();
            attach(files);
          }
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !touch) {
            e.preventDefault();
            void submit();
          }
          if (e.key === "Escape" && streamingId) app.stop(streamingId);
        }}
      />
      <div class="composer-actions">
        <input
          ref={picker}
          type="file"
          multiple
          class="sr-only"
          tabIndex={-1}
          aria-hidden="true"
          id="attach-input"
          onChange={(e) => {
            attach(e.currentTarget.files);
            e.currentTarget.value = "";
          }}
        />
        <button
          type="button"
          class="ghost attach"
          onClick={() => picker.current?.click()}
          title={limitsText(app)}
          aria-describedby="attach-limits"
        >
          Attach
        </button>
        <span id="attach-limits" class="sr-only">
          {limitsText(app)}
        </span>
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
        <button type="submit" class="primary" disabled={blocked}>
          Send
        </button>
      </div>
      {/* Always present, so a screen reader hears the text when it appears. */}
      <p id="composer-help" class={tooLong ? "composer-help error-text" : "composer-help muted"} role="status">
        {help}
      </p>
    </form>
  );
}
