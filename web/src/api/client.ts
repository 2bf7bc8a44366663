// The HTTP API, typed by the generated contract. Every failure becomes an ApiError carrying the
// server's public code and sentence; a network failure is `network_error`, retryable.

import { PAGE_MAX, RETRYABLE_CODES } from "./limits";
import type { paths } from "./schema";
import type {
  AutoApproval,
  Conversation,
  CreateConversation,
  Message,
  ModelInfo,
  Paged,
  ProviderConfigView,
  ProviderList,
  PutProviderConfig,
  PutServer,
  Retried,
  SendMessage,
  SentPair,
  ServerView,
  ToolExecution,
  ToolView,
  UpdateConversation,
  UsageReport,
  AdminUser,
  Billing,
  BudgetView,
  Period,
  Announced,
  FileLimits,
  FileRecord,
} from "./types";

/** What `GET /api/usage` groups by (an admin's report may also group by user). */
export type UsageGroup = "day" | "model" | "provider" | "conversation";
export type AdminUsageGroup = UsageGroup | "user";

/** Without one of the server's codes (the network failed, or a gateway answered in our
 * place), these statuses are worth another try; 0 stands for no answer at all. */
const RETRYABLE_STATUSES = new Set([0, 408, 429, 502, 503, 504]);
/** Codes the client makes up itself for answers that carry none of the server's. */
const LOCAL_CODES = new Set(["network_error", "http_error"]);

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }

  /** Worth sending again with the same idempotency key: what the server's code says (its
   * table, shared through the contract), or, for an answer without one, the network or a
   * gateway being briefly unavailable. A 500 `internal` is a fault the same request would meet
   * again. */
  get retryable(): boolean {
    return LOCAL_CODES.has(this.code) ? RETRYABLE_STATUSES.has(this.status) : RETRYABLE_CODES.has(this.code);
  }
}

type Method = "get" | "post" | "put" | "patch" | "delete";
type Success<R> = R[keyof R & (200 | 201 | 202)];
/** The JSON a path and method answer with on success, from the contract; void for 204. */
type Answer<P extends keyof paths, M extends Method> = paths[P][M] extends { responses: infer R }
  ? [Success<R>] extends [never]
    ? void
    : Success<R> extends { content: { "application/json": infer J } }
      ? J
      : void
  : never;

export interface ApiOptions {
  base: string;
  token: () => Promise<string | null>;
  fetch?: typeof fetch;
  /** An answer came from the service worker's copy, not the server: this device is offline. */
  onCachedAnswer?: () => void;
}

/** Conversations per page of the sidebar. */
export const CONVERSATIONS_PAGE = 50;

/** Longest wait for any one request before it counts as a network failure. */
export const REQUEST_TIMEOUT_MS = 30_000;

export class Api {
  private readonly fetcher: typeof fetch;

  constructor(private readonly options: ApiOptions) {
    this.fetcher = options.fetch ?? ((...args) => fetch(...args));
  }

  async call<P extends keyof paths, M extends Method>(
    method: M,
    template: P,
    params: Record<string, string> = {},
    body?: unknown,
    query?: Record<string, string | number | undefined>,
  ): Promise<Answer<P, M>> {
    let path = String(template).replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(params[name] ?? ""),
    );
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") search.set(k, String(v));
    if ([...search].length) path += `?${search}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = await this.options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetcher(`${this.options.base}${path}`, {
        method: method.toUpperCase(),
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch {
      throw new ApiError(0, "network_error", "The server could not be reached.");
    }
    if (response.headers.get("x-bestchat-cached")) this.options.onCachedAnswer?.();
    if (response.status === 204) return undefined as Answer<P, M>;
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw new ApiError(
        response.status,
        error?.code ?? "http_error",
        error?.message ?? `The server answered ${response.status}.`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      );
    }
    return json as Answer<P, M>;
  }

  listConversations(q?: string, cursor?: string): Promise<Paged<Conversation>> {
    return this.call("get", "/api/conversations", {}, undefined, { q, cursor, limit: CONVERSATIONS_PAGE });
  }
  getConversation(id: string): Promise<Conversation> {
    return this.call("get", "/api/conversations/{id}", { id });
  }
  createConversation(body: CreateConversation): Promise<Conversation> {
    return this.call("post", "/api/conversations", {}, body);
  }
  updateConversation(id: string, body: UpdateConversation): Promise<Conversation> {
    return this.call("patch", "/api/conversations/{id}", { id }, body);
  }
  deleteConversation(id: string): Promise<void> {
    return this.call("delete", "/api/conversations/{id}", { id });
  }
  listMessages(id: string, cursor?: string): Promise<Paged<Message>> {
    return this.call("get", "/api/conversations/{id}/messages", { id }, undefined, { cursor, limit: PAGE_MAX });
  }
  sendMessage(id: string, body: SendMessage): Promise<SentPair> {
    return this.call("post", "/api/conversations/{id}/messages", { id }, body);
  }
  fileLimits(): Promise<FileLimits> {
    return this.call("get", "/api/files/limits");
  }
  announceFile(body: { name: string; content_type: string; size_bytes: number; sha256: string }): Promise<Announced> {
    return this.call("post", "/api/files", {}, body);
  }
  completeFile(id: string): Promise<FileRecord> {
    return this.call("post", "/api/files/{id}/complete", { id }, {});
  }
  getFile(id: string): Promise<FileRecord> {
    return this.call("get", "/api/files/{id}", { id });
  }
  deleteFile(id: string): Promise<void> {
    return this.call("delete", "/api/files/{id}", { id });
  }
  /** The file's bytes: the API redirects to a short-lived presigned URL (the token is not
   * sent on to it: a browser drops it on a redirect to another origin). */
  async fileContent(id: string): Promise<Blob> {
    const headers: Record<string, string> = {};
    const token = await this.options.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await this.fetcher(`${this.options.base}/api/files/${encodeURIComponent(id)}/content`, {
        headers,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch {
      throw new ApiError(0, "network_error", "The file could not be fetched.");
    }
    if (!response.ok) throw new ApiError(response.status, "http_error", `The file could not be fetched (${response.status}).`);
    return response.blob();
  }
  retryAnswer(id: string, messageId: string): Promise<Retried> {
    return this.call("post", "/api/conversations/{id}/messages/{message_id}/retry", { id, message_id: messageId }, {});
  }
  providers(): Promise<ProviderList> {
    return this.call("get", "/api/providers");
  }
  models(): Promise<{ items: ModelInfo[] }> {
    return this.call("get", "/api/models");
  }
  providerConfigs(): Promise<{ items: ProviderConfigView[] }> {
    return this.call("get", "/api/provider-configs");
  }
  putProviderConfig(provider: string, body: PutProviderConfig): Promise<ProviderConfigView> {
    return this.call("put", "/api/provider-configs/{provider}", { provider }, body);
  }
  deleteProviderConfig(provider: string): Promise<void> {
    return this.call("delete", "/api/provider-configs/{provider}", { provider });
  }
  autoApproval(): Promise<AutoApproval> {
    return this.call("get", "/api/settings/auto-approval");
  }
  putAutoApproval(body: AutoApproval): Promise<AutoApproval> {
    return this.call("put", "/api/settings/auto-approval", {}, body);
  }
  tools(): Promise<{ items: ToolView[] }> {
    return this.call("get", "/api/tools");
  }
  registerTool(manifest: unknown, module: string): Promise<ToolView> {
    return this.call("post", "/api/tools", {}, { manifest, module });
  }
  deleteTool(id: string): Promise<void> {
    return this.call("delete", "/api/tools/{id}", { id });
  }
  pendingExecutions(): Promise<Paged<ToolExecution>> {
    return this.call("get", "/api/tool-executions", {}, undefined, { status: "pending", limit: PAGE_MAX });
  }
  decide(id: string, decision: "approve" | "deny"): Promise<ToolExecution> {
    return decision === "approve"
      ? this.call("post", "/api/tool-executions/{id}/approve", { id }, {})
      : this.call("post", "/api/tool-executions/{id}/deny", { id }, {});
  }
  usage(groupBy: UsageGroup): Promise<UsageReport> {
    return this.call("get", "/api/usage", {}, undefined, { group_by: groupBy });
  }
  budget(): Promise<BudgetView> {
    return this.call("get", "/api/budget");
  }
  putBudget(personalLimitMicros: number | null): Promise<BudgetView> {
    return this.call("put", "/api/budget", {}, { personal_limit_micros: personalLimitMicros });
  }
  billing(): Promise<Billing> {
    return this.call("get", "/api/billing");
  }
  checkout(amountMicros: number): Promise<{ url: string }> {
    return this.call("post", "/api/billing/checkout", {}, { amount_micros: amountMicros });
  }
  adminUsers(cursor?: string): Promise<Paged<AdminUser>> {
    return this.call("get", "/api/admin/users", {}, undefined, { cursor, limit: PAGE_MAX });
  }
  putUserBudget(id: string, limitMicros: number | null, period: Period): Promise<BudgetView> {
    return this.call("put", "/api/admin/users/{id}/budget", { id }, { limit_micros: limitMicros, period });
  }
  adminUsage(groupBy: AdminUsageGroup): Promise<UsageReport> {
    return this.call("get", "/api/admin/usage", {}, undefined, { group_by: groupBy });
  }
  mcpServers(): Promise<{ items: ServerView[] }> {
    return this.call("get", "/api/mcp-servers");
  }
  putMcpServer(id: string, body: PutServer): Promise<ServerView> {
    return this.call("put", "/api/mcp-servers/{id}", { id }, body);
  }
  deleteMcpServer(id: string): Promise<void> {
    return this.call("delete", "/api/mcp-servers/{id}", { id });
  }
}
