import { describe, expect, it } from "vitest";
import type { ServerEvent } from "../api/types";
import { ChatSocket, type SocketLike } from "./client";

/** A WebSocket double: records what the client sends; the test opens, closes and delivers. */
class FakeSocket implements SocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close() {
    this.drop();
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
  deliver(event: ServerEvent | string) {
    this.onmessage?.({ data: typeof event === "string" ? event : JSON.stringify(event) });
  }
}

/** Timers the test runs by hand, recording each delay asked for. */
class ManualTimers {
  delays: number[] = [];
  private queue: { fn: () => void; ms: number; id: number }[] = [];
  private next = 0;
  set(fn: () => void, ms: number) {
    const id = ++this.next;
    this.delays.push(ms);
    this.queue.push({ fn, ms, id });
    return id;
  }
  clear(id: unknown) {
    this.queue = this.queue.filter((t) => t.id !== id);
  }
  /** Runs the earliest reconnect (pings are much longer and stay queued). */
  runReconnect() {
    const t = this.queue.filter((x) => x.ms < 60_000).sort((a, b) => a.ms - b.ms)[0];
    if (!t) throw new Error("no reconnect scheduled");
    this.clear(t.id);
    t.fn();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

async function setup(token: () => Promise<string | null> = async () => "tok") {
  const sockets: FakeSocket[] = [];
  const timers = new ManualTimers();
  const socket = new ChatSocket({
    url: "ws://host/ws",
    token,
    socket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    timers,
    random: () => 0,
  });
  const events: ServerEvent[] = [];
  socket.onEvent((e) => events.push(e));
  socket.start();
  await tick();
  return { socket, sockets, timers, events };
}

const CONV = "0190f0c2-0000-7000-8000-000000000001";
const MSG = "0190f0c2-0000-7000-8000-000000000002";

function delta(seq: number, text = `t${seq} `): ServerEvent {
  return { type: "message.delta", conversation_id: CONV, message_id: MSG, seq, text, channel: "text" } as ServerEvent;
}

describe("ChatSocket", () => {
  it("puts the token in the URL and subscribes after opening", async () => {
    const { socket, sockets } = await setup();
    socket.subscribe(CONV);
    expect(sockets[0]!.url).toBe("ws://host/ws?token=tok");
    expect(sockets[0]!.sent).toEqual([]); // not open yet: nothing is lost, it is replayed on open
    sockets[0]!.open();
    expect(sockets[0]!.sent).toEqual([{ action: "subscribe", conversation_id: CONV }]);
  });

  it("drops repeated deltas and passes each seq once, in order", async () => {
    const { socket, sockets, events } = await setup();
    sockets[0]!.open();
    socket.follow(MSG, 0);
    for (const seq of [1, 2, 2, 1, 3, 3]) sockets[0]!.deliver(delta(seq));
    expect(events.map((e) => (e.type === "message.delta" ? e.seq : -1))).toEqual([1, 2, 3]);
    expect(socket.lastSeq(MSG)).toBe(3);
  });

  it("asks once for a gap instead of applying text out of order", async () => {
    const { socket, sockets, events } = await setup();
    sockets[0]!.open();
    socket.follow(MSG, 0);
    const s = sockets[0]!;
    s.sent = [];
    s.deliver(delta(1));
    s.deliver(delta(4));
    s.deliver(delta(5));
    expect(s.sent).toEqual([{ action: "resume", message_id: MSG, after_seq: 1 }]);
    for (const seq of [2, 3, 4, 5]) s.deliver(delta(seq));
    expect(events.map((e) => (e.type === "message.delta" ? e.seq : -1))).toEqual([1, 2, 3, 4, 5]);
  });

  it("reconnects with growing backoff and resumes every streaming message from its last seq", async () => {
    const { socket, sockets, timers, events } = await setup();
    socket.subscribe(CONV);
    sockets[0]!.open();
    socket.follow(MSG, 0);
    sockets[0]!.deliver(delta(1));
    sockets[0]!.deliver(delta(2));
    sockets[0]!.drop();
    expect(socket.state).toBe("closed");
    timers.runReconnect();
    await tick();
    sockets[1]!.drop(); // the first retry fails too
    timers.runReconnect();
    await tick();
    const s = sockets[2]!;
    s.open();
    expect(s.sent).toEqual([
      { action: "subscribe", conversation_id: CONV },
      { action: "resume", message_id: MSG, after_seq: 2 },
    ]);
    // The replay overlaps what was already shown: only new seqs pass.
    for (const seq of [2, 3]) s.deliver(delta(seq));
    expect(events.filter((e) => e.type === "message.delta").length).toBe(3);
    const reconnects = timers.delays.filter((d) => d < 60_000);
    expect(reconnects[1]).toBeGreaterThan(reconnects[0]!);
  });

  it("stops following a message once it completes", async () => {
    const { socket, sockets } = await setup();
    sockets[0]!.open();
    socket.follow(MSG, 0);
    sockets[0]!.deliver({ type: "message.completed", conversation_id: CONV, message_id: MSG } as unknown as ServerEvent);
    expect(socket.lastSeq(MSG)).toBeUndefined();
    sockets[0]!.drop();
  });

  it("waits for a token rather than connecting without one", async () => {
    let token: string | null = null;
    const { sockets, timers } = await setup(async () => token);
    expect(sockets.length).toBe(0);
    token = "later";
    timers.runReconnect();
    await tick();
    expect(sockets[0]!.url).toContain("token=later");
  });

  it("ignores frames that are not JSON", async () => {
    const { sockets, events } = await setup();
    sockets[0]!.open();
    sockets[0]!.deliver("not json");
    expect(events).toEqual([]);
  });

  it("stop closes for good: no reconnect follows", async () => {
    const { socket, sockets, timers } = await setup();
    sockets[0]!.open();
    socket.stop();
    expect(() => timers.runReconnect()).toThrow();
    expect(socket.state).toBe("closed");
  });
});

describe("ChatSocket.refollow", () => {
  it("resumes from seq 0 even for a message it had seen, and passes the replay again", async () => {
    const { socket, sockets, events } = await setup();
    sockets[0]!.open();
    socket.follow(MSG, 0);
    sockets[0]!.deliver(delta(1));
    sockets[0]!.deliver(delta(2));
    sockets[0]!.sent = [];
    socket.refollow(MSG);
    expect(sockets[0]!.sent).toEqual([{ action: "resume", message_id: MSG, after_seq: 0 }]);
    for (const seq of [1, 2, 3]) sockets[0]!.deliver(delta(seq));
    expect(events.filter((e) => e.type === "message.delta").map((e) => (e as { seq: number }).seq)).toEqual([1, 2, 1, 2, 3]);
  });
});
