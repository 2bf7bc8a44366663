// What the user has typed but not sent, per conversation (and for a new one), kept in
// localStorage so a reload or a switch loses nothing. One signal per conversation, so the
// composer of the open one re-renders alone.

import { signal, type Signal } from "@preact/signals";
import type { KeyValue } from "../auth/session";

const KEY = "bestchat.drafts";
/** The draft of the composer that starts a new conversation. */
export const NEW_CONVERSATION = "new";
/** Writes to storage wait for typing to pause this long. */
export const DRAFT_SAVE_MS = 300;
/** Most drafts kept; the oldest go first. */
export const DRAFTS_MAX = 50;

export class Drafts {
  private readonly texts = new Map<string, Signal<string>>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  private readonly key: string;

  /** `owner`: the signed-in user, so one browser never shows one user's drafts to another. */
  constructor(
    private readonly storage: KeyValue,
    owner: string,
  ) {
    this.key = `${KEY}:${owner}`;
    // Typing just before a reload or a closed tab is kept too.
    if (typeof addEventListener === "function") addEventListener("pagehide", () => this.save());
    try {
      const saved = JSON.parse(storage.getItem(this.key) ?? "{}") as Record<string, unknown>;
      for (const [id, text] of Object.entries(saved)) {
        if (typeof text === "string") this.texts.set(id, signal(text));
      }
    } catch {
      storage.removeItem(this.key);
    }
  }

  of(conversationId: string): Signal<string> {
    let text = this.texts.get(conversationId);
    if (!text) {
      text = signal("");
      this.texts.set(conversationId, text);
    }
    return text;
  }

  set(conversationId: string, text: string): void {
    const draft = this.of(conversationId);
    draft.value = text;
    // Most recently written last, so the oldest are the ones dropped past the cap.
    this.texts.delete(conversationId);
    this.texts.set(conversationId, draft);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), DRAFT_SAVE_MS);
  }

  /** Puts text back into a draft (a send the server refused), before what is there now. */
  restore(conversationId: string, text: string): void {
    const now = this.of(conversationId).value;
    this.set(conversationId, now.trim() ? `${text}\n\n${now}` : text);
    this.save();
  }

  clear(conversationId: string): void {
    this.set(conversationId, "");
    this.save();
  }

  /** Forgets every draft (signing out). */
  clearAll(): void {
    clearTimeout(this.timer);
    this.texts.clear();
    this.storage.removeItem(this.key);
  }

  save(): void {
    clearTimeout(this.timer);
    const kept = [...this.texts].filter(([, text]) => text.value.trim()).slice(-DRAFTS_MAX);
    try {
      this.storage.setItem(this.key, JSON.stringify(Object.fromEntries(kept.map(([id, text]) => [id, text.value]))));
    } catch {
      // Storage full: the drafts still live in memory for this tab.
    }
  }
}
