// Measures the web client in Debian's Chromium against bestchat-local and the fake provider:
// time to interactive on a local load, time to render a 2,000-message conversation, and the
// main thread while a 10,000-token answer streams, and the newcomer flow at both widths. Prints
// a Markdown table for BENCHMARKS.md.
//   BESTCHAT_LOCAL_BIN=…/bestchat-local node bench/run.mjs
import { startFakeProvider } from "../e2e/fake-provider.mjs";
import { apiAs, launchBrowser, nextAnswer, startGateway, useFakeProvider, waitForStatus } from "../e2e/harness.mjs";

const LOADS = Number(process.env.BENCH_LOADS ?? 15);
const RENDERS = Number(process.env.BENCH_RENDERS ?? 8);
const STREAM_TOKENS = 10_000;

const sorted = (xs) => xs.filter(Number.isFinite).sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
const p95 = (xs) => sorted(xs)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)];
const ms = (x) => `${x.toFixed(0)} ms`;

// Long tasks are observed from the very start of every page.
const OBSERVE = () => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: "longtask", buffered: true });
};

const fake = await startFakeProvider();
const gateway = await startGateway({ BESTCHAT_STREAM_BUFFER_MAX_FRAMES: "20000" });
const api = await apiAs(gateway.url, "bench");
await useFakeProvider(api, fake.url);
const browser = await launchBrowser();
const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
await context.addInitScript(OBSERVE);
// Signed in as the API user: the session the dev form would store.
const exp = JSON.parse(Buffer.from(api.token.split(".")[1], "base64url").toString()).exp;
await context.addInitScript(
  ([token, exp]) => localStorage.setItem("bestchat.session", JSON.stringify({ token, expiresAt: exp, name: "bench" })),
  [api.token, exp],
);

// A little history so the list has something to show.
for (let i = 0; i < 30; i++) await api.post("/api/conversations", { title: `Conversation ${i}`, provider: "fake", model: "fake-model" });

// --- time to interactive -------------------------------------------------------------------
const loads = { fcp: [], ready: [], quiet: [] };
for (let i = 0; i < LOADS; i++) {
  const page = await context.newPage();
  await page.goto(gateway.url);
  const t = await page.evaluate(async () => {
    const ready = await new Promise((resolve) => {
      const check = () =>
        document.querySelectorAll(".conversation-list .row").length > 0 ? resolve(performance.now()) : requestAnimationFrame(check);
      check();
    });
    // Interactive: the list is there and no long task follows for 500 ms.
    await new Promise((r) => setTimeout(r, 600));
    const fcp = performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN;
    const lastLong = Math.max(0, ...window.__longTasks.map((l) => l.start + l.duration));
    return { fcp, ready, quiet: Math.max(ready, lastLong) };
  });
  loads.fcp.push(t.fcp);
  loads.ready.push(t.ready);
  loads.quiet.push(t.quiet);
  await page.close();
}

// --- a 2,000-message conversation ----------------------------------------------------------
const big = await api.post("/api/conversations", { title: "Long history", provider: "fake", model: "fake-model" });
// One turn at a time (the server answers 409 until the previous one has ended).
for (let i = 0; i < 1000; i++) {
  for (;;) {
    const r = await fetch(`${gateway.url}/api/conversations/${big.id}/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${api.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ client_message_id: `b${i}`, content: `slow:40:0 question ${i}` }),
    });
    await r.text();
    if (r.status !== 409) break;
    await new Promise((done) => setTimeout(done, 2));
  }
}
await new Promise((r) => setTimeout(r, 3000));
const small = await api.post("/api/conversations", { title: "Short", provider: "fake", model: "fake-model" });
const renders = [];
const renderLong = [];
// A fresh page each time: nothing of the conversation is cached in the client.
for (let i = 0; i < RENDERS; i++) {
  const fresh = await context.newPage();
  await fresh.goto(`${gateway.url}/#/c/${small.id}`);
  await fresh.getByRole("heading", { level: 1, name: "Short" }).waitFor();
  const r = await fresh.evaluate(async (id) => {
    window.__longTasks = [];
    const start = performance.now();
    location.hash = `#/c/${id}`;
    await new Promise((resolve) => {
      const check = () => {
        const heading = document.querySelector(".chat-title h1")?.textContent;
        const rows = document.querySelectorAll("article.message").length;
        if (heading === "Long history" && rows > 0) requestAnimationFrame(() => resolve());
        else requestAnimationFrame(check);
      };
      check();
    });
    return { ms: performance.now() - start, longest: Math.max(0, ...window.__longTasks.map((l) => l.duration)) };
  }, big.id);
  renders.push(r.ms);
  renderLong.push(r.longest);
  await fresh.close();
}
const page = await context.newPage();

// --- the main thread while a 10,000-token answer streams ------------------------------------
const stream = await api.post("/api/conversations", { title: "Streaming", provider: "fake", model: "fake-model" });
await page.goto(`${gateway.url}/#/c/${stream.id}`);
await page.getByRole("heading", { level: 1, name: "Streaming" }).waitFor();
const cdp = await context.newCDPSession(page);
await cdp.send("Performance.enable");
const taskSeconds = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;
await page.evaluate(() => (window.__longTasks = []));
const before = await taskSeconds();
const started = Date.now();
const answer = await nextAnswer(api, stream.id, async () => {
  await page.getByLabel("Message", { exact: true }).fill(`slow:${STREAM_TOKENS}:1`);
  await page.keyboard.press("Enter");
});
await waitForStatus(page, answer, "complete", 300_000);
const wall = (Date.now() - started) / 1000;
const busy = (await taskSeconds()) - before;
const long = await page.evaluate(() => window.__longTasks.map((l) => l.duration));
const shown = await page.locator(`[data-message-id="${answer}"] .content`).innerText();

// --- the newcomer flow, at both widths -------------------------------------------------------
// A new user on a fresh page: sign in with the form, New conversation, Create with the offered
// defaults (the offline echo model), one message. Interactive = the signed-in screen is there
// and no long task follows for 500 ms; first answer = Send pressed until the answer's first
// words are on screen, and until it is complete.
const NEWCOMERS = Number(process.env.BENCH_NEWCOMERS ?? 8);
const newcomer = {};
for (const [width, options] of [
  ["1280 px", { viewport: { width: 1280, height: 820 } }],
  ["375 px", { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true }],
]) {
  const times = { interactive: [], first: [], complete: [] };
  for (let i = 0; i < NEWCOMERS; i++) {
    const c = await browser.newContext(options);
    await c.addInitScript(OBSERVE);
    const p = await c.newPage();
    await p.goto(gateway.url);
    await p.getByLabel("Your name").fill(`newcomer-${options.viewport.width}-${i}`);
    const signedIn = await p.evaluate(() => performance.now());
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.locator("#composer").waitFor();
    times.interactive.push(
      await p.evaluate(async (from) => {
        const ready = performance.now();
        await new Promise((r) => setTimeout(r, 600));
        const lastLong = Math.max(0, ...window.__longTasks.map((l) => l.start + l.duration));
        return Math.max(ready, lastLong) - from;
      }, signedIn),
    );
    if (width === "375 px") await p.getByRole("button", { name: "Conversations" }).click();
    await p.getByRole("navigation").getByRole("button", { name: "+ New conversation" }).click();
    await p.getByRole("dialog", { name: "New conversation" }).getByRole("button", { name: "Create" }).click();
    await p.getByRole("heading", { level: 1, name: "New conversation" }).waitFor();
    await p.getByLabel("Message", { exact: true }).fill("hello");
    const sent = Date.now();
    await p.getByRole("button", { name: "Send" }).click();
    await p.locator('article.message.assistant .content:not(:empty)').first().waitFor();
    times.first.push(Date.now() - sent);
    await p.locator('article.message.assistant[data-status="complete"]').waitFor();
    times.complete.push(Date.now() - sent);
    await c.close();
  }
  newcomer[width] = times;
}

await browser.close();
gateway.stop();
await fake.close();

console.log(`| measure | median | p95 | n |`);
console.log(`|---|---|---|---|`);
console.log(`| first contentful paint | ${ms(median(loads.fcp))} | ${ms(p95(loads.fcp))} | ${LOADS} |`);
console.log(`| conversation list shown (signed in) | ${ms(median(loads.ready))} | ${ms(p95(loads.ready))} | ${LOADS} |`);
console.log(`| time to interactive (list shown, then 500 ms without a long task) | ${ms(median(loads.quiet))} | ${ms(p95(loads.quiet))} | ${LOADS} |`);
console.log(`| open a 2,000-message conversation (load every page + first render) | ${ms(median(renders))} | ${ms(p95(renders))} | ${RENDERS} |`);
console.log(`| longest task while opening it | ${ms(median(renderLong))} | ${ms(p95(renderLong))} | ${RENDERS} |`);
for (const [width, t] of Object.entries(newcomer)) {
  console.log(`| newcomer at ${width}: sign-in pressed to interactive | ${ms(median(t.interactive))} | ${ms(p95(t.interactive))} | ${NEWCOMERS} |`);
  console.log(`| newcomer at ${width}: Send to the answer's first words (echo) | ${ms(median(t.first))} | ${ms(p95(t.first))} | ${NEWCOMERS} |`);
  console.log(`| newcomer at ${width}: Send to the answer complete (echo, 4 words) | ${ms(median(t.complete))} | ${ms(p95(t.complete))} | ${NEWCOMERS} |`);
}
console.log("");
console.log(`10,000-token answer: ${wall.toFixed(1)} s of streaming, main thread busy ${(busy * 1000).toFixed(0)} ms ` +
  `(${((busy / wall) * 1000).toFixed(0)} ms per second); long tasks: ${long.length}, longest ${ms(Math.max(0, ...long))}; ` +
  `words shown ${shown.split(/\s+/).filter(Boolean).length}`);
