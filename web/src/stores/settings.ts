// The settings screens' use cases: provider keys, auto-approval rules, the user's tools and MCP
// servers. Their lists live here as signals; the screens read them and call these, never the
// API, so a change made here is what every screen shows.

import { signal } from "@preact/signals";
import type { Api, UsageGroup } from "../api/client";
import type { AutoApproval, PutProviderConfig, PutServer, ServerView, ToolView, UsageReport } from "../api/types";

export class SettingsStore {
  readonly rules = signal<AutoApproval | null>(null);
  readonly tools = signal<ToolView[]>([]);
  readonly servers = signal<ServerView[]>([]);
  /** The last usage asked for, with the grouping it answers (null while none has come). */
  readonly usage = signal<{ group: UsageGroup; report: UsageReport } | null>(null);
  private usageAsked = 0;

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
