// Each conversation's messages, kept in order, updated by server events. One signal per message
// so a streaming answer re-renders only itself; deltas are applied in batches, not one by one.

import { batch, signal, type Signal } from "@preact/signals";
import type { EventOf, Message, ServerEvent, Usage } from "../api/types";

/** A message as shown: the server's, with what only the stream carries. */
export interface MessageItem extends Message {
  /** Visible reasoning streamed by the model; not stored by the server. */
  reasoning?: string;
  /** Shown before the server has it: the send is queued or being retried. */
  local?: "sending" | "failed";
  /** Why a local send was refused, in the server's words. */
  failure?: string;
}

export interface Notice {
  conversation_id: string;
  strategy: string;
  tokens_before: number;
  tokens_after: number;
}

/** Most messages one conversation view holds (the API pages them 200 at a time). */
export const MESSAGES_LOADED_MAX = 20_000;
/** Most events held while a conversation's pages load; past it the oldest go (a replay follows). */
export const EVENTS_HELD_MAX = 10_000;

export interface Totals {
  input_tokens: number;
  output_tokens: number;
  /** Null when some message's price is unknown: never a made-up zero. */
  cost_micros: number | null;
}

export type Schedule = (flush: () => void) => void;

/**
 * Deltas are written into their message at most this often: each write re-renders the answer's
 * growing block, so 20 a second keeps a 10,000-token answer smooth without a busy main thread.
 */
export const DELTA_FLUSH_MS = 50;

const frame: Schedule = (f) =>
  setTimeout(() => (typeof requestAnimationFrame === "function" ? requestAnimationFrame(() => f()) : f()), DELTA_FLUSH_MS);

export class ConversationMessages {
  readonly items = signal<Signal<MessageItem>[]>([]);
  readonly notices = signal<Notice[]>([]);
  private readonly byId = new Map<string, Signal<MessageItem>>();
  private readonly pending = new Map<string, { text: string; reasoning: string }>();
  private scheduled = false;
  /** Events that arrive while the pages load; null when not loading. */
  private held: ServerEvent[] | null = null;

  constructor(
    readonly conversationId: string,
    private readonly schedule: Schedule = frame,
  ) {}

  get(id: string): Signal<MessageItem> | undefined {
    return this.byId.get(id);
  }

  /** From now until `finishLoad`, events are held rather than applied to a list about to go. */
  beginLoad(): void {
    this.held = [];
  }

  /**
   * Takes the loaded list, then the events that came meanwhile: a message created since is
   * added, an older copy never replaces a newer one, and deltas of loaded messages are dropped
   * (their answers are replayed from seq 0 by the caller). Returns the answers to replay.
   */
  finishLoad(messages: Message[]): MessageItem[] {
    const held = this.held ?? [];
    this.held = null;
    this.reset(messages);
    const loaded = new Set(messages.map((m) => m.id));
    for (const event of held) {
      if (event.type === "message.delta" && loaded.has(event.message_id)) continue;
      this.apply(event);
    }
    this.flush();
    return this.unfinished();
  }

  /** Replaces the list with what the server has (after a load), keeping local sends. */
  reset(messages: Message[]): void {
    const local = this.items.value.filter((m) => m.value.local);
    this.byId.clear();
    this.pending.clear();
    const items = messages.map((m) => this.track(m));
    for (const l of local) {
      if (!messages.some((m) => m.client_message_id && m.client_message_id === l.value.client_message_id)) {
        this.byId.set(l.value.id, l);
        items.push(l);
      }
    }
    this.items.value = items;
  }

  private track(m: MessageItem): Signal<MessageItem> {
    const s = signal(m);
    this.byId.set(m.id, s);
    return s;
  }

  /** Inserts or replaces a message; a server copy replaces the local one with its client id. */
  upsert(message: MessageItem): void {
    const existing = this.byId.get(message.id);
    if (existing) {
      // An event that left before the copy held here (a replayed message.created) changes nothing.
      if (message.updated_at < existing.value.updated_at) return;
      existing.value = { ...message, reasoning: message.reasoning ?? existing.value.reasoning };
      return;
    }
    if (message.client_message_id && !message.local) {
      const local = this.items.value.find(
        (m) => m.value.local && m.value.client_message_id === message.client_message_id,
      );
      if (local) {
        this.byId.delete(local.value.id);
        local.value = message;
        this.byId.set(message.id, local);
        return;
      }
    }
    const s = this.track(message);
    const items = [...this.items.value];
    // Keep order by creation; a late arrival goes where it belongs.
    let at = items.length;
    while (at > 0 && (items[at - 1]?.value.created_at ?? "") > message.created_at && !items[at - 1]?.value.local) at--;
    items.splice(at, 0, s);
    this.items.value = items;
  }

  remove(id: string): void {
    const s = this.byId.get(id);
    if (!s) return;
    this.byId.delete(id);
    this.items.value = this.items.value.filter((m) => m !== s);
  }

  /** Applies one event of this conversation. The socket has already dropped repeated deltas. */
  apply(event: ServerEvent): void {
    if (this.held) {
      if (this.held.length >= EVENTS_HELD_MAX) this.held.shift();
      this.held.push(event);
      return;
    }
    switch (event.type) {
      case "message.created":
        this.upsert(event.message);
        break;
      case "message.delta":
        this.delta(event);
        break;
      case "message.completed": {
        this.flush();
        const final = this.whole(event.message);
        if (event.usage && !final.usage) final.usage = event.usage;
        this.upsert(final);
        break;
      }
      case "message.updated": {
        this.flush();
        this.upsert(this.whole(event.message));
        // A failed answer run again streams from its first delta.
        if (event.message.status === "pending") this.restart(event.message.id);
        break;
      }
      case "message.error": {
        if (!event.message_id) break;
        this.flush();
        const s = this.byId.get(event.message_id);
        if (s) s.value = { ...s.value, status: "error", error: { code: event.code, message: event.message } };
        break;
      }
      case "context.optimized":
        this.notices.value = [...this.notices.value, event];
        break;
      default:
        break;
    }
  }

  /** A message from an event, with the text this view holds when the frame left it out. */
  private whole(message: Message): MessageItem {
    const current = this.byId.get(message.id)?.value;
    return message.content_omitted && current
      ? { ...message, content: current.content, tool_calls: current.tool_calls }
      : { ...message };
  }

  private delta(event: EventOf<"message.delta">): void {
    const buffered = this.pending.get(event.message_id) ?? { text: "", reasoning: "" };
    if (event.channel === "reasoning") buffered.reasoning += event.text;
    else buffered.text += event.text;
    this.pending.set(event.message_id, buffered);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }

  /** Writes the buffered deltas into their messages, once per frame. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    batch(() => {
      for (const [id, { text, reasoning }] of this.pending) {
        const s = this.byId.get(id);
        if (!s) continue;
        const m = s.value;
        s.value = {
          ...m,
          status: m.status === "pending" ? "streaming" : m.status,
          content: m.content + text,
          reasoning: reasoning ? (m.reasoning ?? "") + reasoning : m.reasoning,
        };
      }
    });
    this.pending.clear();
  }

  /** Before following a message from seq 0: its text so far comes again in the replay. */
  restart(id: string): void {
    const s = this.byId.get(id);
    this.pending.delete(id);
    if (s) s.value = { ...s.value, content: "", reasoning: undefined };
  }

  /** Messages whose answer may still change: these are followed over the socket. */
  unfinished(): MessageItem[] {
    return this.items.value
      .map((m) => m.value)
      .filter((m) => m.role === "assistant" && !m.local && (m.status === "pending" || m.status === "streaming"));
  }

  totals(): Totals {
    const t: Totals = { input_tokens: 0, output_tokens: 0, cost_micros: 0 };
    for (const s of this.items.value) {
      const u: Usage | null | undefined = s.value.usage;
      if (!u) continue;
      t.input_tokens += u.input_tokens;
      t.output_tokens += u.output_tokens;
      t.cost_micros = t.cost_micros === null || u.cost_micros == null ? null : t.cost_micros + u.cost_micros;
    }
    return t;
  }
}

/** Every conversation this tab has opened, by id. */
export class MessageStore {
  private readonly conversations = new Map<string, ConversationMessages>();

  constructor(private readonly schedule?: Schedule) {}

  of(conversationId: string): ConversationMessages {
    let c = this.conversations.get(conversationId);
    if (!c) {
      c = new ConversationMessages(conversationId, this.schedule);
      this.conversations.set(conversationId, c);
    }
    return c;
  }

  /** Routes a server event to its conversation. */
  apply(event: ServerEvent): void {
    const id = conversationOf(event);
    if (id) this.conversations.get(id)?.apply(event);
  }

  forget(conversationId: string): void {
    this.conversations.delete(conversationId);
  }
}

export function conversationOf(event: ServerEvent): string | undefined {
  switch (event.type) {
    case "message.created":
    case "message.updated":
      return event.message.conversation_id;
    case "conversation.created":
    case "conversation.updated":
      return event.conversation.id;
    case "pong":
    case "file.updated":
      return undefined;
    default:
      return event.conversation_id ?? undefined;
  }
}
