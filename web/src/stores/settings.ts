// The settings screens' use cases: provider keys, auto-approval rules, the user's tools and MCP
// servers. Their lists live here as signals; the screens read them and call these, never the
// API, so a change made here is what every screen shows.

import { signal } from "@preact/signals";
import { type AdminUsageGroup, type Api, ApiError, type UsageGroup } from "../api/client";
import type {
  AdminUser,
  AutoApproval,
  Billing,
  BudgetView,
  Period,
  PutProviderConfig,
  PutServer,
  ServerView,
  ToolView,
  UsageReport,
} from "../api/types";

/** Most pages of users the admin screen reads at once (of PAGE_MAX each: 10,000 users). */
export const ADMIN_USER_PAGES = 50;

export class SettingsStore {
  readonly rules = signal<AutoApproval | null>(null);
  readonly tools = signal<ToolView[]>([]);
  readonly servers = signal<ServerView[]>([]);
  /** The last usage asked for, with the grouping it answers (null while none has come). */
  readonly usage = signal<{ group: UsageGroup; report: UsageReport } | null>(null);
  private usageAsked = 0;
  readonly budget = signal<BudgetView | null>(null);
  /** The prepaid balance and payments; null while unknown or when billing is off. */
  readonly billing = signal<Billing | null>(null);
  /** Whether the caller may use the admin routes (null until asked). */
  readonly admin = signal<boolean | null>(null);
  readonly users = signal<AdminUser[]>([]);
  readonly adminUsage = signal<{ group: AdminUsageGroup; report: UsageReport } | null>(null);
  private adminUsageAsked = 0;

  constructor(
    private readonly api: Api,
    /** Reads the providers again: what a key change makes usable or not. */
    private readonly reloadProviders: () => Promise<void>,
  ) {}

  async saveProviderConfig(provider: string, body: PutProviderConfig): Promise<void> {
    await this.api.putProviderConfig(provider, body);
    await this.reloadProviders();
  }

  async resetProviderConfig(provider: string): Promise<void> {
    await this.api.deleteProviderConfig(provider);
    await this.reloadProviders();
  }

  /** The rules with the tools they name. */
  async loadApproval(): Promise<void> {
    const [rules, tools] = await Promise.all([this.api.autoApproval(), this.api.tools()]);
    this.rules.value = rules;
    this.tools.value = tools.items;
  }

  /** Shown at once; the server's answer (what it kept) replaces it. */
  async saveApproval(next: AutoApproval): Promise<void> {
    this.rules.value = next;
    this.rules.value = await this.api.putAutoApproval(next);
  }

  /** The caller's usage grouped as asked; an answer to an earlier question is dropped. */
  async loadUsage(groupBy: UsageGroup): Promise<void> {
    const asked = ++this.usageAsked;
    const report = await this.api.usage(groupBy);
    if (asked === this.usageAsked) this.usage.value = { group: groupBy, report };
  }

  /** The budget, and the balance when billing is on (a 404 `billing_off` leaves it null). */
  async loadBudget(): Promise<void> {
    const [budget, billing] = await Promise.all([
      this.api.budget(),
      this.api.billing().catch((e: unknown) => {
        if (e instanceof ApiError && e.code === "billing_off") return null;
        throw e;
      }),
    ]);
    this.budget.value = budget;
    this.billing.value = billing;
  }

  /** The user's own cap in micro-dollars; null removes it. */
  async savePersonalCap(micros: number | null): Promise<void> {
    this.budget.value = await this.api.putBudget(micros);
  }

  /** Where Stripe takes the payment. */
  async checkout(micros: number): Promise<string> {
    return (await this.api.checkout(micros)).url;
  }

  /** The users with their spending; a 403 means the caller is no admin (and nothing throws). */
  async loadUsers(): Promise<void> {
    try {
      const users: AdminUser[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < ADMIN_USER_PAGES; page++) {
        const answer = await this.api.adminUsers(cursor);
        users.push(...answer.items);
        if (!answer.next_cursor) break;
        cursor = answer.next_cursor;
      }
      this.users.value = users;
      this.admin.value = true;
    } catch (e) {
      if (e instanceof ApiError && e.code === "forbidden") {
        this.admin.value = false;
        return;
      }
      throw e;
    }
  }

  /** An admin sets a user's limit; the list shows it at once. */
  async setUserBudget(id: string, micros: number | null, period: Period): Promise<void> {
    const budget = await this.api.putUserBudget(id, micros, period);
    this.users.value = this.users.value.map((u) =>
      u.id === id ? { ...u, limit_micros: budget.limit_micros, period: budget.period, spent_micros: budget.spent_micros } : u,
    );
  }

  /** Every user's usage as an admin sees it; an answer to an earlier question is dropped. */
  async loadAdminUsage(groupBy: AdminUsageGroup): Promise<void> {
    const asked = ++this.adminUsageAsked;
    const report = await this.api.adminUsage(groupBy);
    if (asked === this.adminUsageAsked) this.adminUsage.value = { group: groupBy, report };
  }

  async loadTools(): Promise<void> {
    this.tools.value = (await this.api.tools()).items;
  }

  /** `module` is the WebAssembly module in base64. */
  async registerTool(manifest: unknown, module: string): Promise<void> {
    await this.api.registerTool(manifest, module);
    await this.loadTools();
  }

  async removeTool(id: string): Promise<void> {
    await this.api.deleteTool(id);
    await this.loadTools();
  }

  async loadServers(): Promise<void> {
    this.servers.value = (await this.api.mcpServers()).items;
  }

  async addServer(id: string, body: PutServer): Promise<void> {
    await this.api.putMcpServer(id, body);
    await this.loadServers();
  }

  async removeServer(id: string): Promise<void> {
    await this.api.deleteMcpServer(id);
    await this.loadServers();
  }
}
