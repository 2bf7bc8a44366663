import { describe, expect, it } from "vitest";
import { blocks } from "./markdown";

describe("blocks", () => {
  it("splits at blank lines but never inside a fenced code block", () => {
    const source = "# Title\n\nPara one.\n\n```js\nconst a = 1;\n\nconst b = 2;\n```\n\nEnd";
    const parts = blocks(source);
    expect(parts.length).toBe(4);
    expect(parts[2]).toContain("const a = 1;\n\nconst b = 2;");
    expect(parts.join("\n")).toBe(source);
  });

  it("keeps a still-open fence as one growing block", () => {
    expect(blocks("intro\n\n```\ncode\n\nmore code").length).toBe(2);
  });
});
