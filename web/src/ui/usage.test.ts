import { describe, expect, it } from "vitest";
import { bars } from "./Usage";

const item = (key: string, turns: number, cost_micros: number) => ({
  key,
  turns,
  input_tokens: 10 * turns,
  output_tokens: turns,
  cached_tokens: 0,
  cost_micros,
});

describe("usage bars", () => {
  it("scales by cost against the costliest group", () => {
    const b = bars([item("a", 1, 2_000_000), item("b", 4, 500_000)]);
    expect(b.map((x) => x.share)).toEqual([1, 0.25]);
    expect(b[0]!.label).toBe("$2.00");
  });

  it("counts calls when nothing has a price", () => {
    const b = bars([item("echo/echo-1", 2, 0), item("local/llama", 1, 0)]);
    expect(b.map((x) => x.share)).toEqual([1, 0.5]);
    expect(b.map((x) => x.label)).toEqual(["2 calls", "1 call"]);
  });

  it("draws nothing for no groups", () => {
    expect(bars([])).toEqual([]);
  });
});
