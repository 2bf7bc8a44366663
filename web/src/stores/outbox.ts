// Sends, kept (in localStorage) until the server acknowledges them. A send is POSTed with its
// client_message_id; a network failure or a retryable answer (429, 502, 503, 504) retries with
// the same id, which the server answers with the original pair, so a message is never lost and
// never doubled — across drops and reloads alike. A refusal ends the send and says why.

import { ApiError, type Api } from "../api/client";
import type { Attachment, SentPair } from "../api/types";
import type { KeyValue } from "../auth/session";

export interface Outgoing {
  conversation_id: string;
  client_message_id: string;
  content: string;
  provider?: string;
  model?: string;
  /** The files sent with it (ready, the user's). */
  attachments?: Attachment[];
  queued_at: string;
}

const KEY = "bestchat.outbox";

/** How retries back off: doubling from the first delay to the cap, plus a random share so
 * many devices coming back at once do not retry in step. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
  jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000, jitter: 0.3 };
/** Most sends kept waiting at once; more is a client gone wrong, not a user typing. */
export const OUTBOX_MAX = 100;

export interface OutboxEvents {
  sent(entry: Outgoing, pair: SentPair): void;
  refused(entry: Outgoing, error: ApiError): void;
  retrying(entry: Outgoing, error: ApiError): void;
}

/** The delay before retry number `n` (1, 2, …). */
export function retryDelay(n: number, backoff: Backoff, random: () => number = Math.random): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (n - 1));
  return base * (1 + backoff.jitter * random());
}

export class Outbox {
  private readonly entries = new Map<string, Outgoing>();
  private readonly inFlight = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  private readonly key: string;

  /** `owner`: the signed-in user; one user's waiting sends are never sent as another's. */
  constructor(
    private readonly api: Pick<Api, "sendMessage">,
    private readonly storage: KeyValue,
    owner: string,
    private readonly events: OutboxEvents,
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
  ) {
    this.key = `${KEY}:${owner}`;
    try {
      for (const e of JSON.parse(storage.getItem(this.key) ?? "[]") as Outgoing[]) this.entries.set(e.client_message_id, e);
    } catch {
      storage.removeItem(this.key);
    }
  }

  list(conversationId?: string): Outgoing[] {
    return [...this.entries.values()].filter((e) => !conversationId || e.conversation_id === conversationId);
  }

  private save(): void {
    this.storage.setItem(this.key, JSON.stringify([...this.entries.values()]));
  }

  /** Queues and sends; resolves once the send is acknowledged, refused or scheduled again. */
  send(entry: Outgoing): Promise<void> {
    if (this.entries.size >= OUTBOX_MAX && !this.entries.has(entry.client_message_id)) {
      const error = new ApiError(429, "rate_limited", "Too many messages are waiting to be sent.");
      this.events.refused(entry, error);
      return Promise.resolve();
    }
    this.entries.set(entry.client_message_id, entry);
    this.save();
    return this.attempt(entry.client_message_id);
  }

  /** Sends everything still queued now (after a reload, or when the network is back). */
  flush(): void {
    for (const id of this.entries.keys()) {
      clearTimeout(this.timers.get(id));
      this.timers.delete(id);
      void this.attempt(id);
    }
  }

  /** Forgets every waiting send, here and in storage (signing out). */
  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.entries.clear();
    this.attempts.clear();
    this.storage.removeItem(this.key);
  }

  private async attempt(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry || this.inFlight.has(id)) return;
    this.inFlight.add(id);
    try {
      const pair = await this.api.sendMessage(entry.conversation_id, {
        client_message_id: entry.client_message_id,
        content: entry.content,
        provider: entry.provider,
        model: entry.model,
        attachments: entry.attachments?.map((a) => a.file_id),
      });
      if (!this.entries.has(id)) return; // cleared meanwhile (signed out)
      this.finish(id);
      this.events.sent(entry, pair);
    } catch (e) {
      if (!this.entries.has(id)) return;
      const error = e instanceof ApiError ? e : new ApiError(0, "network_error", String(e));
      if (error.retryable) {
        const n = (this.attempts.get(id) ?? 0) + 1;
        this.attempts.set(id, n);
        const delay = Math.max(error.retryAfterMs ?? 0, retryDelay(n, this.backoff));
        // Called as a plain function: a browser's setTimeout refuses another `this`.
        this.timers.set(
          id,
          setTimeout(() => void this.attempt(id), delay),
        );
        this.events.retrying(entry, error);
      } else {
        this.finish(id);
        this.events.refused(entry, error);
      }
    } finally {
      this.inFlight.delete(id);
    }
  }

  private finish(id: string): void {
    this.entries.delete(id);
    this.attempts.delete(id);
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.save();
  }
}
