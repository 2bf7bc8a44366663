// The WebSocket connection: reconnects with backoff, re-subscribes, resumes every streaming
// message from the last seq it applied, and drops duplicate deltas. Sends go over HTTP (see
// stores/outbox.ts), whose answer is the acknowledgement a WebSocket frame cannot give.

import type { ClientAction, ServerEvent } from "../api/types";

/** What the client needs of a WebSocket: the browser's, or a fake in tests. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export type ConnectionState = "connecting" | "open" | "closed";

export interface ChatSocketOptions {
  /** The ws(s) URL without the token. */
  url: string;
  /** Asked at each (re)connect, so a refreshed token is used. */
  token: () => Promise<string | null>;
  socket?: SocketFactory;
  timers?: Timers;
  /** Backoff: first delay, cap, and the random share added so devices do not reconnect in step. */
  backoff?: { initialMs: number; maxMs: number; jitter: number };
  /** A ping this often keeps idle connections open through proxies and API Gateway. */
  pingMs?: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 15_000, jitter: 0.3 };
export const DEFAULT_PING_MS = 5 * 60_000;
const OPEN = 1;

type Listener = (event: ServerEvent) => void;

export class ChatSocket {
  private socket: SocketLike | null = null;
  private attempt = 0;
  private retry: unknown = null;
  private ping: unknown = null;
  private stopped = false;
  /** message id -> last seq applied. The source of truth for dedupe and resume. */
  private readonly seqs = new Map<string, number>();
  private readonly subscriptions = new Set<string>();
  /** Messages with a gap asked for, so a burst of early deltas asks once. */
  private readonly gaps = new Set<string>();
  private readonly listeners = new Set<Listener>();
  private readonly stateListeners = new Set<(s: ConnectionState) => void>();
  private readonly factory: SocketFactory;
  private readonly timers: Timers;
  private readonly backoff: { initialMs: number; maxMs: number; jitter: number };
  private readonly random: () => number;
  state: ConnectionState = "closed";

  constructor(private readonly options: ChatSocketOptions) {
    this.factory = options.socket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    this.timers = options.timers ?? {
      set: (fn, ms) => setTimeout(fn, ms),
      clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.random = options.random ?? Math.random;
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onState(listener: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.timers.clear(this.retry);
    this.timers.clear(this.ping);
    this.socket?.close(1000);
    this.socket = null;
    this.setState("closed");
  }

  /** Follow a conversation's events on this connection, now and after every reconnect. */
  subscribe(conversationId: string): void {
    this.subscriptions.add(conversationId);
    this.send({ action: "subscribe", conversation_id: conversationId });
  }

  /**
   * Track a streaming message from `afterSeq` (0: from its first delta) and ask for what this
   * device has not seen.
   */
  follow(messageId: string, afterSeq: number): void {
    const known = this.seqs.get(messageId);
    if (known !== undefined && known >= afterSeq) return;
    this.seqs.set(messageId, afterSeq);
    this.send({ action: "resume", message_id: messageId, after_seq: afterSeq });
  }

  /** Follow a message again from its first delta, whatever was seen of it before. */
  refollow(messageId: string): void {
    this.seqs.set(messageId, 0);
    this.gaps.delete(messageId);
    this.send({ action: "resume", message_id: messageId, after_seq: 0 });
  }

  /** The network is back (the browser's `online`): try now rather than at the next backoff. */
  reconnectNow(): void {
    if (this.stopped || this.socket) return;
    this.attempt = 0;
    this.timers.clear(this.retry);
    void this.connect();
  }

  lastSeq(messageId: string): number | undefined {
    return this.seqs.get(messageId);
  }

  cancel(messageId: string): void {
    this.send({ action: "cancel", message_id: messageId });
  }

  decide(toolExecutionId: string, decision: "approve" | "deny"): void {
    this.send({ action: "approveTool", tool_execution_id: toolExecutionId, decision });
  }

  /** Sends when open; otherwise the reconnect replays subscriptions and resumes. */
  private send(action: ClientAction): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(action));
    return true;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState("connecting");
    let token: string | null = null;
    try {
      token = await this.options.token();
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (!token) {
      this.scheduleReconnect();
      return;
    }
    const separator = this.options.url.includes("?") ? "&" : "?";
    let socket: SocketLike;
    try {
      socket = this.factory(`${this.options.url}${separator}token=${encodeURIComponent(token)}`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.setState("open");
      this.replay();
      this.keepAlive();
    };
    socket.onmessage = (ev) => {
      if (this.socket === socket && typeof ev.data === "string") this.receive(ev.data);
    };
    socket.onerror = () => {};
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.timers.clear(this.ping);
      this.scheduleReconnect();
    };
  }

  /** After (re)connecting: the subscriptions and a resume per streaming message. */
  private replay(): void {
    for (const id of this.subscriptions) this.send({ action: "subscribe", conversation_id: id });
    for (const [id, seq] of this.seqs) this.send({ action: "resume", message_id: id, after_seq: seq });
    this.gaps.clear();
  }

  private keepAlive(): void {
    this.timers.clear(this.ping);
    this.ping = this.timers.set(() => {
      this.send({ action: "ping" });
      this.keepAlive();
    }, this.options.pingMs ?? DEFAULT_PING_MS);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.setState("closed");
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt);
    const delay = base * (1 + this.backoff.jitter * this.random());
    this.attempt += 1;
    this.timers.clear(this.retry);
    this.retry = this.timers.set(() => void this.connect(), delay);
  }

  private receive(data: string): void {
    let event: ServerEvent;
    try {
      event = JSON.parse(data) as ServerEvent;
    } catch {
      return;
    }
    switch (event.type) {
      case "message.delta": {
        const last = this.seqs.get(event.message_id) ?? 0;
        if (event.seq <= last) return; // already applied: a replay overlapping the live stream
        if (event.seq > last + 1) {
          // A gap: ask for it again rather than show text out of order.
          if (!this.gaps.has(event.message_id)) {
            this.gaps.add(event.message_id);
            this.send({ action: "resume", message_id: event.message_id, after_seq: last });
          }
          return;
        }
        this.gaps.delete(event.message_id);
        this.seqs.set(event.message_id, event.seq);
        break;
      }
      case "message.created": {
        const m = event.message;
        if (m.role === "assistant" && (m.status === "pending" || m.status === "streaming")) {
          if (!this.seqs.has(m.id)) this.seqs.set(m.id, 0);
        }
        break;
      }
      case "message.updated":
        // A failed answer run again: its deltas count from 1 once more.
        if (event.message.status === "pending") {
          this.seqs.set(event.message.id, 0);
          this.gaps.delete(event.message.id);
        }
        break;
      case "message.completed":
        this.seqs.delete(event.message_id);
        this.gaps.delete(event.message_id);
        break;
      case "message.error":
        if (event.message_id) this.seqs.delete(event.message_id);
        break;
      default:
        break;
    }
    for (const listener of this.listeners) listener(event);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
