// Names for the generated OpenAPI types (schema.d.ts is written by `npm run gen:types` from
// openapi.json, which the Rust server generates; a test fails when either is stale).

import type { components } from "./schema";

type S = components["schemas"];

export type Conversation = S["Conversation"];
export type CreateConversation = S["CreateConversation"];
export type UpdateConversation = S["UpdateConversation"];
export type Message = S["Message"];
export type MessageStatus = S["MessageStatus"];
export type Usage = S["Usage"];
export type SentPair = S["SentPair"];
export type SendMessage = S["SendMessage"];
export type ProviderView = S["ProviderView"];
export type ProviderList = S["ProviderList"];
export type ModelRef = S["ModelRef"];
export type Retried = S["Retried"];
export type ModelInfo = S["ModelInfo"];
export type ProviderConfigView = S["ProviderConfigView"];
export type PutProviderConfig = S["PutProviderConfig"];
export type AutoApproval = S["AutoApproval"];
export type Rule = S["Rule"];
export type Risk = S["Risk"];
export type ToolView = S["ToolView"];
export type ToolExecution = S["ToolExecution"];
export type ServerView = S["ServerView"];
export type PutServer = S["PutServer"];
export type ErrorBody = S["ErrorBody"];
export type ClientAction = S["ClientAction"];
export type ServerEvent = S["ServerEvent"];

export type EventOf<T extends ServerEvent["type"]> = Extract<ServerEvent, { type: T }>;

export interface Paged<T> {
  items: T[];
  next_cursor?: string | null;
}
export type UsageReport = S["UsageReport"];
export type UsageItem = S["UsageItem"];
export type BudgetView = S["BudgetView"];
export type Period = S["Period"];
export type AdminUser = S["AdminUser"];
export type Billing = S["Billing"];
export type Payment = S["Payment"];
export type FileRecord = S["FileRecord"];
export type Announced = S["Announced"];
export type FileLimits = S["FileLimits"];
export type Attachment = S["Attachment"];
