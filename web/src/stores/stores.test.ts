import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import type { Message, SentPair, ServerEvent } from "../api/types";
import { MemoryStorage } from "../testing";
import { ConversationMessages, MessageStore } from "./messages";
import { Outbox, retryDelay, type Outgoing } from "./outbox";

const CONV = "0190f0c2-0000-7000-8000-00000000000a";

function message(id: string, over: Partial<Message> = {}): Message {
  return {
    id,
    conversation_id: CONV,
    role: "assistant",
    content: "",
    status: "streaming",
    token_count: 0,
    tool_calls: [],
    created_at: `2026-12-02T00:00:0${id.slice(-1)}Z`,
    updated_at: "2026-12-02T00:00:00Z",
    ...over,
  } as Message;
}

/** Deltas are flushed by hand, as a frame would. */
function view() {
  const flushes: (() => void)[] = [];
  const v = new ConversationMessages(CONV, (f) => flushes.push(f));
  return { v, frame: () => flushes.splice(0).forEach((f) => f()) };
}

function delta(id: string, seq: number, text: string, channel: "text" | "reasoning" = "text"): ServerEvent {
  return { type: "message.delta", conversation_id: CONV, message_id: id, seq, text, channel } as ServerEvent;
}


describe("ConversationMessages", () => {
  it("applies a frame's deltas at once, text and reasoning apart", () => {
    const { v, frame } = view();
    v.apply({ type: "message.created", message: message("m1", { status: "pending" }) } as ServerEvent);
    v.apply(delta("m1", 1, "Hel"));
    v.apply(delta("m1", 2, "thinking", "reasoning"));
    v.apply(delta("m1", 3, "lo"));
    expect(v.get("m1")!.value.content).toBe(""); // not before the frame
    frame();
    const m = v.get("m1")!.value;
    expect(m.content).toBe("Hello");
    expect(m.reasoning).toBe("thinking");
    expect(m.status).toBe("streaming");
  });

  it("takes the completed message as final, keeping the streamed text when the frame omitted it", () => {
    const { v, frame } = view();
    v.upsert(message("m1"));
    v.apply(delta("m1", 1, "partial"));
    frame();
    v.apply({
      type: "message.completed",
      conversation_id: CONV,
      message_id: "m1",
      message: message("m1", { status: "complete", content: "", content_omitted: true }),
      usage: { input_tokens: 10, output_tokens: 2, cached_tokens: 0, cost_micros: 30 },
    } as ServerEvent);
    const m = v.get("m1")!.value;
    expect(m.status).toBe("complete");
    expect(m.content).toBe("partial");
    expect(m.usage?.cost_micros).toBe(30);
  });

  it("replaces a local send with the server's copy, by client_message_id", () => {
    const { v } = view();
    v.upsert({ ...message("local:c1", { role: "user", client_message_id: "c1", status: "pending" }), local: "sending" });
    v.upsert(message("u1", { role: "user", client_message_id: "c1", status: "complete", content: "hi" }));
    expect(v.items.value.map((s) => s.value.id)).toEqual(["u1"]);
    expect(v.get("local:c1")).toBeUndefined();
  });

  it("keeps messages in creation order when one arrives late", () => {
    const { v } = view();
    v.upsert(message("m1"));
    v.upsert(message("m3"));
    v.upsert(message("m2"));
    expect(v.items.value.map((s) => s.value.id)).toEqual(["m1", "m2", "m3"]);
  });

  it("restarts a message so a replay from seq 1 does not double its text", () => {
    const { v, frame } = view();
    v.reset([message("m1", { content: "stale partial" })]);
    v.restart("m1");
    v.apply(delta("m1", 1, "stale "));
    v.apply(delta("m1", 2, "partial and more"));
    frame();
    expect(v.get("m1")!.value.content).toBe("stale partial and more");
    expect(v.unfinished().map((m) => m.id)).toEqual(["m1"]);
  });

  it("sums usage, and says the cost is unknown when one price is", () => {
    const { v } = view();
    v.upsert(message("m1", { status: "complete", usage: { input_tokens: 5, output_tokens: 1, cached_tokens: 0, cost_micros: 10 } }));
    v.upsert(message("m2", { status: "complete", usage: { input_tokens: 7, output_tokens: 3, cached_tokens: 0, cost_micros: 5 } }));
    expect(v.totals()).toEqual({ input_tokens: 12, output_tokens: 4, cost_micros: 15 });
    v.upsert(message("m3", { status: "complete", usage: { input_tokens: 1, output_tokens: 1, cached_tokens: 0, cost_micros: null } }));
    expect(v.totals().cost_micros).toBeNull();
  });

  it("marks an errored message with the server's public sentence", () => {
    const { v } = view();
    v.upsert(message("m1"));
    v.apply({ type: "message.error", conversation_id: CONV, message_id: "m1", code: "provider_error", message: "The provider failed." } as ServerEvent);
    expect(v.get("m1")!.value.status).toBe("error");
    expect(v.get("m1")!.value.error?.message).toBe("The provider failed.");
  });
});

describe("MessageStore", () => {
  it("routes events to their conversation only", () => {
    const store = new MessageStore(() => {});
    const a = store.of(CONV);
    store.of("other");
    store.apply({ type: "message.created", message: message("m1") } as ServerEvent);
    expect(a.items.value.length).toBe(1);
    expect(store.of("other").items.value.length).toBe(0);
  });
});

describe("Outbox", () => {
  const entry = (id: string): Outgoing => ({
    conversation_id: CONV,
    client_message_id: id,
    content: "hello",
    queued_at: "2026-12-02T00:00:00Z",
  });
  const pair = { user_message: message("u1"), assistant_message: message("a1") } as SentPair;

  /** Short real delays: the retries go through the browser's own setTimeout, called as the
   * outbox calls it (a fake timer injected here once hid that it threw "Illegal invocation"). */
  const quick = { initialMs: 5, maxMs: 20, jitter: 0.5 };
  const until = async (done: () => boolean, ms = 2_000) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 2));
    }
  };

  it("retries a network failure, a 503 and a 429 with the same client_message_id until acknowledged", async () => {
    const calls: string[] = [];
    const failures = [
      new ApiError(0, "network_error", "down"),
      new ApiError(503, "unavailable", "briefly unavailable"),
      new ApiError(429, "rate_limited", "slow down", 10),
    ];
    const sent: string[] = [];
    const retrying: string[] = [];
    const outbox = new Outbox(
      {
        sendMessage: async (_c, body) => {
          calls.push(body.client_message_id);
          const failure = failures.shift();
          if (failure) throw failure;
          return pair;
        },
      },
      new MemoryStorage(),
      "u1",
      { sent: (e) => sent.push(e.client_message_id), refused: () => {}, retrying: (_e, err) => retrying.push(err.code) },
      quick,
    );
    await outbox.send(entry("c1"));
    await until(() => sent.length > 0);
    expect(calls).toEqual(["c1", "c1", "c1", "c1"]);
    expect(retrying).toEqual(["network_error", "unavailable", "rate_limited"]);
    expect(sent).toEqual(["c1"]);
    expect(outbox.list()).toEqual([]);
  });

  it("backs off: each delay doubles up to the cap, with jitter on top", () => {
    const backoff = { initialMs: 100, maxMs: 1_000, jitter: 0.5 };
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, backoff, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(retryDelay(2, backoff, () => 1)).toBe(300);
  });

  it("does not retry what the server refused as not worth retrying (500 internal, 4xx)", async () => {
    for (const error of [new ApiError(500, "internal", "an internal error"), new ApiError(422, "validation_failed", "bad")]) {
      const refused: string[] = [];
      let calls = 0;
      const outbox = new Outbox(
        {
          sendMessage: async () => {
            calls++;
            throw error;
          },
        },
        new MemoryStorage(),
        "u1",
        { sent: () => {}, refused: (_e, err) => refused.push(err.code), retrying: () => {} },
        quick,
      );
      await outbox.send(entry("c9"));
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(1);
      expect(refused).toEqual([error.code]);
    }
  });

  it("forgets waiting sends when cleared (signing out), and sends nothing more", async () => {
    const storage = new MemoryStorage();
    let calls = 0;
    const outbox = new Outbox(
      {
        sendMessage: async () => {
          calls++;
          throw new ApiError(503, "unavailable", "down");
        },
      },
      storage,
      "u1",
      { sent: () => {}, refused: () => {}, retrying: () => {} },
      quick,
    );
    await outbox.send(entry("c8"));
    outbox.clear();
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toBe(1);
    expect(outbox.list()).toEqual([]);
    expect(storage.getItem("bestchat.outbox:u1")).toBeNull();
  });

  it("survives a reload: what was not acknowledged is sent again from storage", async () => {
    const storage = new MemoryStorage();
    const never = new Outbox(
      { sendMessage: () => new Promise<SentPair>(() => {}) },
      storage,
      "u1",
      { sent: () => {}, refused: () => {}, retrying: () => {} },
    );
    void never.send(entry("c2"));
    const calls: string[] = [];
    const reloaded = new Outbox(
      {
        sendMessage: async (_c, body) => {
          calls.push(body.client_message_id);
          return pair;
        },
      },
      storage,
      "u1",
      { sent: () => {}, refused: () => {}, retrying: () => {} },
    );
    expect(reloaded.list().map((e) => e.client_message_id)).toEqual(["c2"]);
    reloaded.flush();
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual(["c2"]);
    expect(reloaded.list()).toEqual([]);
  });

  it("ends a refused send and says why, without retrying", async () => {
    const refused: string[] = [];
    const outbox = new Outbox(
      {
        sendMessage: async () => {
          throw new ApiError(409, "conflict", "A tool call waits for your decision.");
        },
      },
      new MemoryStorage(),
      "u1",
      { sent: () => {}, refused: (_e, err) => refused.push(err.message), retrying: () => {} },
      quick,
    );
    await outbox.send(entry("c3"));
    expect(refused).toEqual(["A tool call waits for your decision."]);
    expect(outbox.list()).toEqual([]);
  });
});

describe("opening a conversation while its events flow", () => {
  it("keeps what happened during the load: a message created meanwhile is not lost", () => {
    const { v, frame } = view();
    v.beginLoad();
    v.apply({ type: "message.created", message: message("m3", { status: "pending" }) } as ServerEvent);
    v.apply(delta("m3", 1, "new"));
    const unfinished = v.finishLoad([message("m1", { status: "complete", content: "old" })]);
    frame();
    expect(v.items.value.map((s) => s.value.id)).toEqual(["m1", "m3"]);
    expect(v.get("m3")!.value.content).toBe("new");
    expect(unfinished.map((m) => m.id)).toEqual(["m3"]);
  });

  it("never lets an older copy replace the loaded one, and drops deltas the replay will bring", () => {
    const { v, frame } = view();
    v.beginLoad();
    v.apply({ type: "message.created", message: message("m1", { status: "pending", updated_at: "2026-12-02T00:00:00Z" }) } as ServerEvent);
    v.apply(delta("m1", 1, "dup"));
    const unfinished = v.finishLoad([message("m1", { status: "streaming", content: "so far", updated_at: "2026-12-02T00:00:05Z" })]);
    frame();
    expect(v.get("m1")!.value.status).toBe("streaming");
    expect(v.get("m1")!.value.content).toBe("so far");
    expect(unfinished.map((m) => m.id)).toEqual(["m1"]);
  });

  it("takes a completion that came during the load", () => {
    const { v } = view();
    v.beginLoad();
    v.apply({
      type: "message.completed",
      conversation_id: CONV,
      message_id: "m1",
      message: message("m1", { status: "complete", content: "final", updated_at: "2026-12-02T00:00:09Z" }),
    } as ServerEvent);
    const unfinished = v.finishLoad([message("m1", { status: "streaming", content: "part", updated_at: "2026-12-02T00:00:01Z" })]);
    expect(v.get("m1")!.value.content).toBe("final");
    expect(unfinished).toEqual([]);
  });
});
