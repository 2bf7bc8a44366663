// The generated types must be those of the committed contract (which a Rust test keeps equal
// to what the server's types generate): regenerate into a temporary file and compare.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

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
});
