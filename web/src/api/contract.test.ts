// The generated types must be those of the committed contract (which a Rust test keeps equal
// to what the server's types generate): regenerate into a temporary file and compare.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as limits from "./limits";

describe("the typed contract", () => {
  it("schema.d.ts is what openapi.json generates (npm run gen:types)", () => {
    const out = join(mkdtempSync(join(tmpdir(), "bestchat-types-")), "schema.d.ts");
    const cli = join(__dirname, "../../node_modules/.bin/openapi-typescript");
    execFileSync(cli, [join(__dirname, "openapi.json"), "--default-non-nullable", "false", "-o", out], { stdio: "pipe" });
    const committed = readFileSync(join(__dirname, "schema.d.ts"), "utf8");
    expect(committed === readFileSync(out, "utf8"), "src/api/schema.d.ts is stale: run npm run gen:types").toBe(true);
  });

  it("describes the WebSocket protocol beside the HTTP routes", () => {
    const doc = JSON.parse(readFileSync(join(__dirname, "openapi.json"), "utf8")) as Record<string, any>;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc["x-websocket"].server.$ref).toBe("#/components/schemas/ServerEvent");
    const events = (doc.components.schemas.ServerEvent.oneOf as { properties: { type: { const: string } } }[]).map(
      (v) => v.properties.type.const,
    );
    expect(events).toEqual(expect.arrayContaining(["message.delta", "tool.pending", "context.optimized"]));
  });

  it("states the limits the forms use", () => {
    const s = (JSON.parse(readFileSync(join(__dirname, "openapi.json"), "utf8")) as Record<string, any>).components.schemas;
    expect(limits.TITLE_MAX_CHARS).toBe(s.CreateConversation.properties.title.maxLength);
    expect(limits.SYSTEM_PROMPT_MAX_CHARS).toBe(s.CreateConversation.properties.system_prompt.maxLength);
    expect(limits.MESSAGE_MAX_CHARS).toBe(s.SendMessage.properties.content.maxLength);
    expect(limits.FALLBACKS_MAX).toBe(s.ConversationSettingsInput.properties.fallbacks.maxItems);
    const paths = (JSON.parse(readFileSync(join(__dirname, "openapi.json"), "utf8")) as Record<string, any>).paths;
    const limit = paths["/api/conversations"].get.parameters.find((p: { name: string }) => p.name === "limit");
    expect(limit.description).toContain(`1 to ${limits.PAGE_MAX}`);
  });

  it("retries what the server's table says may be retried", () => {
    const s = (JSON.parse(readFileSync(join(__dirname, "openapi.json"), "utf8")) as Record<string, any>).components.schemas;
    expect([...limits.RETRYABLE_CODES].sort()).toEqual([...s.ErrorCode["x-retryable"]].sort());
  });
});
