// The settings use cases keep their lists in step with the server, and the screens reach the
// API only through the stores.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Api } from "../api/client";
import type { AutoApproval, ToolView } from "../api/types";
import { SettingsStore } from "./settings";

function tool(name: string, id: string | null = null): ToolView {
  return { name, id, source: id ? "user" : "builtin", risk: "read", description: "" } as ToolView;
}

/** An API with a server-side list of tools and the rules the server keeps. */
function fakeApi() {
  const calls: string[] = [];
  let tools = [tool("calculator")];
  const api = {
    tools: async () => (calls.push("tools"), { items: tools }),
    registerTool: async (manifest: { name: string }) => {
      calls.push("registerTool");
      tools = [...tools, tool(manifest.name, "t1")];
      return tools[tools.length - 1];
    },
    deleteTool: async (id: string) => {
      calls.push("deleteTool");
      tools = tools.filter((t) => t.id !== id);
    },
    autoApproval: async () => ({ risks: { read: "auto" }, tools: {} }) as unknown as AutoApproval,
    // The server keeps what it may: destructive never runs without asking.
    putAutoApproval: async (next: AutoApproval) => ({ ...next, kept: true }) as unknown as AutoApproval,
    putProviderConfig: async () => calls.push("putProviderConfig"),
    deleteProviderConfig: async () => calls.push("deleteProviderConfig"),
  };
  return { api: api as unknown as Api, calls };
}

describe("SettingsStore", () => {
  it("keeps the usage of the grouping asked last, whatever answers first", async () => {
    const answers: Record<string, (r: unknown) => void> = {};
    const api = {
      usage: (group: string) => new Promise((resolve) => (answers[group] = resolve)),
    } as unknown as Api;
    const store = new SettingsStore(api, async () => {});
    const day = store.loadUsage("day");
    const model = store.loadUsage("model");
    answers.model!({ items: [{ key: "echo/echo-1" }], total: {} });
    await model;
    answers.day!({ items: [{ key: "2026-12-07" }], total: {} });
    await day;
    expect(store.usage.value?.group).toBe("model");
    expect(store.usage.value?.report.items[0]?.key).toBe("echo/echo-1");
  });

  it("shows what the server holds after each change", async () => {
    const { api, calls } = fakeApi();
    const store = new SettingsStore(api, async () => void calls.push("reloadProviders"));
    await store.loadTools();
    expect(store.tools.value.map((t) => t.name)).toEqual(["calculator"]);
    await store.registerTool({ name: "word_count" }, "AGFzbQ==");
    expect(store.tools.value.map((t) => t.name)).toEqual(["calculator", "word_count"]);
    await store.removeTool("t1");
    expect(store.tools.value.map((t) => t.name)).toEqual(["calculator"]);
    await store.saveProviderConfig("openai", { api_key: "k" } as never);
    await store.resetProviderConfig("openai");
    expect(calls.filter((c) => c === "reloadProviders")).toHaveLength(2);
  });

  it("keeps the rules the server answered, not the ones sent", async () => {
    const { api } = fakeApi();
    const store = new SettingsStore(api, async () => {});
    await store.loadApproval();
    await store.saveApproval({ risks: { read: "ask" } } as unknown as AutoApproval);
    expect((store.rules.value as unknown as { kept: boolean }).kept).toBe(true);
  });

  it("is the screens' only way to the API", () => {
    const ui = join(__dirname, "../ui");
    for (const file of readdirSync(ui).filter((f) => f.endsWith(".tsx"))) {
      expect(readFileSync(join(ui, file), "utf8"), file).not.toMatch(/\.api\./);
    }
  });
});
