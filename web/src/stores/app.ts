// The client's state and the use cases the screens call: conversations, the open conversation's
// messages, sends, approvals, providers. Screens read signals; nothing else writes them.

import { computed, signal } from "@preact/signals";
import { ApiError, type Api } from "../api/client";
import type {
  Conversation,
  Attachment,
  CreateConversation,
  FileLimits,
  ModelInfo,
  ModelRef,
  ProviderConfigView,
  ProviderView,
  ServerEvent,
  SentPair,
  ToolExecution,
} from "../api/types";
import type { KeyValue } from "../auth/session";
import type { ChatSocket, ConnectionState } from "../ws/client";
import { Drafts } from "./drafts";
import { MESSAGES_LOADED_MAX, MessageStore, type MessageItem } from "./messages";
import { Outbox, type Outgoing } from "./outbox";
import { SettingsStore } from "./settings";
import { Uploads, sha256Hex, xhrPut } from "./uploads";
import { refusalText, sentence } from "../ui/format";

export interface Toast {
  id: number;
  text: string;
  kind: "error" | "info";
}

/** How long a toast stays. */
export const TOAST_MS = 6_000;

export class ChatApp {
  readonly conversations = signal<Conversation[]>([]);
  readonly conversationsCursor = signal<string | null>(null);
  readonly query = signal("");
  readonly selectedId = signal<string | null>(null);
  readonly loadingMessages = signal(false);
  readonly providers = signal<ProviderView[]>([]);
  readonly models = signal<ModelInfo[]>([]);
  readonly configs = signal<ProviderConfigView[]>([]);
  /** The providers have been read once: before that, nothing can be said of what is usable. */
  readonly providersLoaded = signal(false);
  readonly approvals = signal<ToolExecution[]>([]);
  readonly connection = signal<ConnectionState>("closed");
  /** The browser's own view of the network (`online`/`offline` events). */
  readonly online = signal(typeof navigator === "undefined" ? true : navigator.onLine);
  /** False while what is shown came from the offline copy, until the server answers again. */
  readonly reachable = signal(true);
  /** Said once to screen readers (an answer that failed), then cleared. */
  readonly announcement = signal("");
  /** The model a conversation gets when it names none, as the server says. */
  readonly serverDefault = signal<ModelRef | null>(null);
  /** What a new conversation starts with: the server's default when usable, else the first
   * usable provider's first model; null when nothing is usable. */
  readonly defaultChoice = computed<ModelRef | null>(() => {
    const usable = this.providers.value.filter((p) => p.usable && p.models.length > 0);
    const wanted = this.serverDefault.value;
    const match = wanted && usable.find((p) => p.id === wanted.provider)?.models.find((m) => m.id === wanted.model);
    if (wanted && match) return wanted;
    const first = usable[0];
    return first ? { provider: first.id, model: first.models[0]!.id } : null;
  });
  readonly toasts = signal<Toast[]>([]);
  readonly messages: MessageStore;
  readonly outbox: Outbox;
  readonly drafts: Drafts;
  /** The open conversation; kept apart from the list, which a search may filter it out of. */
  readonly selected = signal<Conversation | null>(null);
  private toastId = 0;
  private searchSeq = 0;

  /** The settings screens' use cases and lists. */
  readonly settings: SettingsStore;
  /** What this user may upload (read at start; null until then or if it could not be read). */
  readonly fileLimits = signal<FileLimits | null>(null);
  private readonly uploads = new Map<string, Uploads>();

  constructor(
    readonly api: Api,
    readonly socket: ChatSocket,
    storage: KeyValue,
    /** The signed-in user (the token's `sub`): what this device keeps is kept per user. */
    owner: string,
    messages = new MessageStore(),
  ) {
    this.messages = messages;
    this.settings = new SettingsStore(api, () => this.loadProviders());
    this.drafts = new Drafts(storage, owner);
    this.outbox = new Outbox(api, storage, owner, {
      sent: (entry, pair) => this.acknowledged(entry, pair),
      refused: (entry, error) => this.refused(entry, error),
      retrying: (entry) => this.markLocal(entry, "sending"),
    });
    socket.onEvent((e) => this.receive(e));
    let opened = false;
    socket.onState((s) => {
      this.connection.value = s;
      if (s !== "open") return;
      this.reachable.value = true;
      // Back online: whatever waited is sent now rather than at its next retry.
      this.outbox.flush();
      // What happened while this device was away (decisions, steps that went on, renames)
      // came as events it missed: read it again.
      if (opened) void this.catchUp();
      opened = true;
    });
  }

  async start(): Promise<void> {
    this.socket.start();
    await Promise.all([this.loadConversations(), this.loadProviders(), this.loadApprovals(), this.loadFileLimits()]);
    this.outbox.flush();
  }

  async loadFileLimits(): Promise<void> {
    try {
      this.fileLimits.value = await this.api.fileLimits();
    } catch {
      // Said by the server at upload time instead.
    }
  }

  /** A file's bytes, for a thumbnail or to open it. */
  fileBlob(id: string): Promise<Blob> {
    return this.api.fileContent(id);
  }

  /** The files being attached in a conversation's composer (or a new conversation's). */
  uploadsOf(key: string): Uploads {
    let uploads = this.uploads.get(key);
    if (!uploads) {
      uploads = new Uploads({ api: this.api, put: xhrPut, sha256: sha256Hex }, () => this.fileLimits.value);
      this.uploads.set(key, uploads);
    }
    return uploads;
  }

  /** After a reconnect: the lists and the open conversation as the server has them now. */
  private async catchUp(): Promise<void> {
    await Promise.all([this.loadConversations(), this.loadApprovals()]);
    const open = this.selectedId.value;
    if (open) await this.select(open);
  }

  /** The browser says the network went or came back: the badge says so at once, and what
   * waited (the socket, the outbox) goes now rather than at its next backoff. */
  setOnline(online: boolean): void {
    this.online.value = online;
    if (online) {
      this.socket.reconnectNow();
      this.outbox.flush();
    }
  }

  /** Signing out: nothing of this user's is left to send or to read on this device. */
  signOut(): void {
    this.socket.stop();
    this.outbox.clear();
    this.drafts.clearAll();
  }

  toast(text: string, kind: Toast["kind"] = "error"): void {
    const id = ++this.toastId;
    this.toasts.value = [...this.toasts.value, { id, text: sentence(text), kind }];
    setTimeout(() => (this.toasts.value = this.toasts.value.filter((t) => t.id !== id)), TOAST_MS);
  }

  /** Tells screen readers once (a failure inside the message list would not be read). */
  announce(text: string): void {
    this.announcement.value = text;
    setTimeout(() => {
      if (this.announcement.value === text) this.announcement.value = "";
    }, TOAST_MS);
  }

  private fail(e: unknown): void {
    this.toast(e instanceof ApiError || e instanceof Error ? e.message : String(e));
  }

  // --- conversations -------------------------------------------------------------------------

  async loadConversations(): Promise<void> {
    const seq = ++this.searchSeq;
    try {
      const page = await this.api.listConversations(this.query.value.trim() || undefined);
      if (seq !== this.searchSeq) return; // a newer search answered first
      this.conversations.value = page.items;
      this.conversationsCursor.value = page.next_cursor ?? null;
    } catch (e) {
      this.fail(e);
    }
  }

  async moreConversations(): Promise<void> {
    const cursor = this.conversationsCursor.value;
    if (!cursor) return;
    try {
      const page = await this.api.listConversations(this.query.value.trim() || undefined, cursor);
      const known = new Set(this.conversations.value.map((c) => c.id));
      this.conversations.value = [...this.conversations.value, ...page.items.filter((c) => !known.has(c.id))];
      this.conversationsCursor.value = page.next_cursor ?? null;
    } catch (e) {
      this.fail(e);
    }
  }

  async createConversation(body: CreateConversation): Promise<Conversation | null> {
    try {
      const c = await this.api.createConversation(body);
      this.added(c);
      await this.select(c.id);
      return c;
    } catch (e) {
      this.fail(e);
      return null;
    }
  }

  async rename(id: string, title: string): Promise<void> {
    try {
      this.changed(await this.api.updateConversation(id, { title }));
    } catch (e) {
      this.fail(e);
    }
  }

  /** A conversation created here or on another device: at the top, once. */
  private added(c: Conversation): void {
    if (this.query.value.trim()) return; // a title search shows only what matched
    this.conversations.value = [c, ...this.conversations.value.filter((x) => x.id !== c.id)];
  }

  /** A changed conversation takes its place again: the list is newest-updated first. */
  private changed(c: Conversation): void {
    this.conversations.value = this.conversations.value
      .map((x) => (x.id === c.id ? c : x))
      .sort((a, b) => (a.updated_at < b.updated_at ? 1 : a.updated_at > b.updated_at ? -1 : 0));
    if (this.selected.value?.id === c.id) this.selected.value = c;
  }

  /** A conversation deleted here or on another device. */
  private removed(id: string): void {
    this.conversations.value = this.conversations.value.filter((c) => c.id !== id);
    this.messages.forget(id);
    this.drafts.clear(id);
    this.approvals.value = this.approvals.value.filter((a) => a.conversation_id !== id);
    if (this.selectedId.value === id) {
      this.selectedId.value = null;
      this.selected.value = null;
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.api.deleteConversation(id);
      this.removed(id);
    } catch (e) {
      this.fail(e);
    }
  }

  /** The title of a conversation this tab knows of. */
  titleOf(id: string): string | undefined {
    return this.conversations.value.find((c) => c.id === id)?.title ?? (this.selected.value?.id === id ? this.selected.value.title : undefined);
  }

  /** Opens a conversation: every page of its messages, then its live events. */
  async select(id: string | null): Promise<void> {
    this.selectedId.value = id;
    if (!id) {
      this.selected.value = null;
      return;
    }
    const view = this.messages.of(id);
    view.beginLoad();
    this.socket.subscribe(id);
    this.loadingMessages.value = true;
    try {
      // Opened from the list, or by its address (it may be older than the list's first page).
      const conversation = this.conversations.value.find((c) => c.id === id) ?? (await this.api.getConversation(id));
      if (this.selectedId.value === id) this.selected.value = conversation;
      const all = [];
      let cursor: string | undefined;
      do {
        const page = await this.api.listMessages(id, cursor);
        all.push(...page.items);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && all.length < MESSAGES_LOADED_MAX);
      // An answer still streaming (another device's, or this tab's before a reload) is
      // replayed from its first delta, then continues live: no gap, no duplicate.
      for (const m of view.finishLoad(all)) {
        view.restart(m.id);
        this.socket.refollow(m.id);
      }
      if (this.selectedId.value !== id) return;
      for (const e of this.outbox.list(id)) this.showLocal(e, "sending");
    } catch (e) {
      view.finishLoad(view.items.value.map((m) => m.value).filter((m) => !m.local));
      if (e instanceof ApiError && e.code === "conversation_not_found") {
        this.selectedId.value = null;
        this.selected.value = null;
        this.conversations.value = this.conversations.value.filter((c) => c.id !== id);
      }
      this.fail(e);
    } finally {
      if (this.selectedId.value === id) this.loadingMessages.value = false;
    }
  }

  // --- sending -------------------------------------------------------------------------------

  /** Whether the conversation's previous turn is still going: the server refuses a new
   * message until it ends (so the transcript stays in turn order). */
  busy(conversationId: string): boolean {
    if (this.approvals.value.some((a) => a.conversation_id === conversationId)) return true;
    const items = this.messages.of(conversationId).items.value;
    const open = items.some((s) => {
      const m = s.value;
      return m.local === "sending" || (m.role === "assistant" && (m.status === "pending" || m.status === "streaming" || m.status === "awaiting_approval"));
    });
    // A step that asked for tools is followed by its results and the next step: until an
    // answer comes after it, its calls still run.
    const lastAnswer = [...items].reverse().find((s) => s.value.role === "assistant")?.value;
    return open || (lastAnswer?.status === "complete" && (lastAnswer.tool_calls?.length ?? 0) > 0);
  }

  /** A first message with no conversation open: one is created with the default model. */
  async startConversation(content: string, attachments: Attachment[] = []): Promise<boolean> {
    const choice = this.defaultChoice.value;
    const created = await this.createConversation(choice ? { provider: choice.provider, model: choice.model } : {});
    if (!created) return false;
    this.send(content, attachments);
    return true;
  }

  send(content: string, attachments: Attachment[] = [], clientMessageId: string = crypto.randomUUID()): void {
    const conversation = this.selected.value;
    if (!conversation || (!content.trim() && attachments.length === 0)) return;
    const entry: Outgoing = {
      conversation_id: conversation.id,
      client_message_id: clientMessageId,
      content,
      attachments: attachments.length ? attachments : undefined,
      queued_at: new Date().toISOString(),
    };
    this.showLocal(entry, "sending");
    void this.outbox.send(entry);
  }

  /** Runs a failed answer again as the same turn: the question is not asked twice. */
  async retry(item: MessageItem): Promise<void> {
    try {
      const { assistant_message: answer } = await this.api.retryAnswer(item.conversation_id, item.id);
      const view = this.messages.of(item.conversation_id);
      view.upsert(answer);
      view.restart(answer.id);
      this.socket.refollow(answer.id);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Asks again: the last user message's text as a new turn. */
  regenerate(): void {
    const conversation = this.selected.value;
    if (!conversation) return;
    const items = this.messages.of(conversation.id).items.value;
    const lastUser = [...items].reverse().find((m) => m.value.role === "user" && !m.value.local);
    if (lastUser) this.send(lastUser.value.content, (lastUser.value.attachments ?? []).filter((a) => !a.deleted));
  }

  stop(messageId: string): void {
    this.socket.cancel(messageId);
  }

  private showLocal(entry: Outgoing, local: "sending" | "failed", error?: ApiError): void {
    const view = this.messages.of(entry.conversation_id);
    const id = `local:${entry.client_message_id}`;
    const item: MessageItem = {
      id,
      conversation_id: entry.conversation_id,
      role: "user",
      content: entry.content,
      attachments: entry.attachments,
      status: "pending",
      client_message_id: entry.client_message_id,
      token_count: 0,
      created_at: entry.queued_at,
      updated_at: entry.queued_at,
      local,
      failure: error ? sentence(error.message) : undefined,
    };
    const existing = view.get(id);
    if (existing) existing.value = item;
    else if (!view.items.value.some((m) => m.value.client_message_id === entry.client_message_id && !m.value.local)) view.upsert(item);
  }

  private markLocal(entry: Outgoing, local: "sending" | "failed"): void {
    const s = this.messages.of(entry.conversation_id).get(`local:${entry.client_message_id}`);
    if (s) s.value = { ...s.value, local };
  }

  private acknowledged(entry: Outgoing, pair: SentPair): void {
    const view = this.messages.of(entry.conversation_id);
    view.upsert(pair.user_message);
    view.remove(`local:${entry.client_message_id}`);
    view.upsert(pair.assistant_message);
    const a = pair.assistant_message;
    if ((a.status === "pending" || a.status === "streaming") && this.socket.lastSeq(a.id) === undefined) {
      // The socket may have subscribed after the answer began: replay it from the start.
      view.restart(a.id);
      this.socket.follow(a.id, 0);
    }
    this.bump(entry.conversation_id, pair.user_message.created_at);
  }

  private refused(entry: Outgoing, error: ApiError): void {
    if (error.code === "conflict") {
      // The previous turn is still going: the text goes back to the message box, unsent.
      this.messages.of(entry.conversation_id).remove(`local:${entry.client_message_id}`);
      this.drafts.restore(entry.conversation_id, entry.content);
    } else {
      this.showLocal(entry, "failed", error);
    }
    this.toast(refusalText(error.code, error.message, error.retryAfterMs));
  }

  /** Discards a failed send (its text goes back to the composer). */
  discard(item: MessageItem): void {
    this.messages.of(item.conversation_id).remove(item.id);
  }

  private bump(conversationId: string, at: string): void {
    const list = this.conversations.value;
    const c = list.find((x) => x.id === conversationId);
    if (!c) return;
    this.conversations.value = [{ ...c, updated_at: at }, ...list.filter((x) => x !== c)];
  }

  // --- events --------------------------------------------------------------------------------

  private receive(event: ServerEvent): void {
    this.messages.apply(event);
    switch (event.type) {
      case "message.created":
        if (event.message.role === "user") this.bump(event.message.conversation_id, event.message.created_at);
        break;
      case "tool.pending":
        this.approvals.value = [
          ...this.approvals.value.filter((x) => x.id !== event.tool_execution_id),
          event.tool_execution,
        ];
        break;
      case "tool.decided":
        this.approvals.value = this.approvals.value.filter((x) => x.id !== event.tool_execution_id);
        break;
      case "message.error":
        if (!event.message_id) this.toast(refusalText(event.code, event.message, event.retry_after_ms));
        else if (event.conversation_id === this.selectedId.value)
          this.announce(`The answer failed: ${refusalText(event.code, event.message)}`);
        break;
      case "conversation.created":
        void this.conversationEvent(event.conversation, event.omitted ?? false, "created");
        break;
      case "conversation.updated":
        void this.conversationEvent(event.conversation, event.omitted ?? false, "updated");
        break;
      case "conversation.deleted":
        this.removed(event.conversation_id);
        break;
      case "file.updated":
        for (const uploads of this.uploads.values()) uploads.updated(event.file);
        break;
      default:
        break;
    }
  }

  /** Another device created or changed a conversation (this one's own changes come back too). */
  private async conversationEvent(c: Conversation, omitted: boolean, what: "created" | "updated"): Promise<void> {
    let whole = c;
    if (omitted) {
      try {
        whole = await this.api.getConversation(c.id);
      } catch {
        return; // gone meanwhile: its deletion follows
      }
    }
    if (what === "created") this.added(whole);
    else this.changed(whole);
  }

  // --- tools and providers -------------------------------------------------------------------

  async loadApprovals(): Promise<void> {
    try {
      this.approvals.value = (await this.api.pendingExecutions()).items;
    } catch (e) {
      this.fail(e);
    }
  }

  async decide(execution: ToolExecution, decision: "approve" | "deny"): Promise<void> {
    try {
      await this.api.decide(execution.id, decision);
      this.approvals.value = this.approvals.value.filter((x) => x.id !== execution.id);
    } catch (e) {
      // Decided elsewhere first: the list catches up from the server.
      if (e instanceof ApiError && (e.status === 409 || e.status === 404)) await this.loadApprovals();
      this.fail(e);
    }
  }

  async loadProviders(): Promise<void> {
    try {
      const [providers, models, configs] = await Promise.all([
        this.api.providers(),
        this.api.models(),
        this.api.providerConfigs(),
      ]);
      this.providers.value = providers.items;
      this.serverDefault.value = providers.default;
      this.providersLoaded.value = true;
      this.models.value = models.items;
      this.configs.value = configs.items;
    } catch (e) {
      this.fail(e);
    }
  }
}
