// The web client end to end: Debian's Chromium against bestchat-local and a fake provider on
// loopback. Each test drives the page as a person would and checks what the server stored.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeProvider, words } from "./fake-provider.mjs";
import {
  apiAs,
  axe,
  launchBrowser,
  messageText,
  nextAnswer,
  screenshot,
  signIn,
  startGateway,
  useFakeProvider,
  waitForStatus,
  waitForWords,
} from "./harness.mjs";


let gateway, fake, browser, context, page, api;
/** The conversation most tests continue in. */
let firstSteps;
const USER = "ada";

async function newConversation(p, title) {
  await p.getByRole("button", { name: "+ New conversation" }).first().click();
  const dialog = p.getByRole("dialog", { name: "New conversation" });
  await dialog.getByLabel("Title").fill(title);
  await dialog.getByLabel("Model: provider").selectOption("fake");
  await dialog.getByRole("button", { name: "Create" }).click();
  await p.getByRole("heading", { level: 1, name: title }).waitFor();
  return p.evaluate(() => location.hash.slice("#/c/".length));
}

async function type(p, text) {
  await p.getByLabel("Message", { exact: true }).fill(text);
  await p.keyboard.press("Enter");
}

const openConversation = (p) => p.evaluate(() => location.hash.slice("#/c/".length));

/** Sends `text` from the page; the id of the answer it starts, once the page shows `minWords`. */
async function send(p, text, minWords = 1) {
  const id = await nextAnswer(api, await openConversation(p), () => type(p, text));
  await waitForWords(p, id, minWords);
  return id;
}

async function stored(conversationId) {
  return (await api.get(`/api/conversations/${conversationId}/messages?limit=200`)).items;
}

before(async () => {
  fake = await startFakeProvider();
  gateway = await startGateway();
  api = await apiAs(gateway.url, USER);
  await useFakeProvider(api, fake.url);
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 820 }, colorScheme: "light" });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  gateway?.stop();
  await fake?.close();
});

describe("the web client", () => {
  it("serves itself and its runtime config from the gateway", async () => {
    const html = await (await fetch(gateway.url)).text();
    assert.match(html, /<div id="app">/);
    const config = await (await fetch(`${gateway.url}/config.json`)).json();
    assert.equal(config.auth.mode, "dev");
    const csp = (await fetch(gateway.url)).headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/);
  });

  it("signs in with a name, and the sign-in page is accessible", async () => {
    await page.goto(gateway.url);
    await page.getByLabel("Your name").waitFor();
    await axe(page, "sign-in");
    await screenshot(page, "sign-in");
    await signIn(page, gateway.url, USER);
  });

  it("creates a conversation and streams a markdown answer with highlighted code, usage and cost", async () => {
    const id = await newConversation(page, "First steps");
    firstSteps = id;
    const answer = await send(page, "hello there");
    await waitForStatus(page, answer, "complete");
    const article = page.locator(`[data-message-id="${answer}"]`);
    assert.equal(await article.locator("strong").innerText(), "bold");
    assert.ok((await article.locator("code.hljs .hljs-keyword").count()) > 0, "code is highlighted");
    await article.getByRole("button", { name: "Copy" }).waitFor();
    assert.match(await article.locator(".usage").innerText(), /30 in · 20 out · \$/);
    const messages = await stored(id);
    assert.equal(messages.length, 2);
    assert.equal(messages[1].status, "complete");
    assert.match(await page.locator(".totals").innerText(), /30 in · 20 out/);
    await screenshot(page, "chat");
  });

  it("escapes raw HTML from a model instead of rendering it", async () => {
    // A user's own text is never markup either.
    const answer = await send(page, "<img src=x onerror=alert(1)> <b>bold?</b>");
    await waitForStatus(page, answer, "complete");
    assert.equal(await page.locator("article img").count(), 0);
    assert.equal(await page.locator("article.user b").count(), 0);
  });

  it("shows visible reasoning collapsed, and a failure with its public sentence only", async () => {
    const thought = await send(page, "think");
    await waitForStatus(page, thought, "complete");
    const reasoning = page.locator(`[data-message-id="${thought}"] details.reasoning`);
    assert.equal(await reasoning.getAttribute("open"), null, "collapsed");
    await reasoning.locator("summary").click();
    assert.match(await reasoning.innerText(), /Let me think\./);
    const failed = await nextAnswer(api, await openConversation(page), () => type(page, "fail please"));
    await waitForStatus(page, failed, "error");
    const text = await page.locator(`[data-message-id="${failed}"]`).innerText();
    assert.match(text, /Failed/);
    assert.match(text, /provider_error/);
    assert.ok(!text.includes("secret internal detail"), "the provider's detail stays in the log");
  });

  it("regenerates: the last question is asked again as a new turn", async () => {
    const id = await openConversation(page);
    const ok = await send(page, "again please");
    await waitForStatus(page, ok, "complete");
    const again = await nextAnswer(api, id, () => page.getByRole("button", { name: "Regenerate" }).click());
    await waitForStatus(page, again, "complete");
    const users = (await stored(id)).filter((m) => m.role === "user").map((m) => m.content);
    assert.deepEqual(users.slice(-2), ["again please", "again please"]);
  });

  it("stops an answer: it ends cancelled, here and in the store", async () => {
    const id = await openConversation(page);
    const answer = await send(page, "slow:2000:20", 5);
    await page.getByRole("button", { name: "Stop" }).click();
    await waitForStatus(page, answer, "cancelled");
    assert.match(await page.locator(`[data-message-id="${answer}"] .status-badge`).innerText(), /Stopped/);
    const saved = (await stored(id)).find((m) => m.id === answer);
    assert.equal(saved.status, "cancelled");
    assert.ok(saved.content.split(" ").length < 2000);
  });

  it("continues an answer after a reload mid-stream, with no gap and no duplicate", async () => {
    const answer = await send(page, "slow:300:15", 20);
    await page.reload();
    await waitForStatus(page, answer, "complete");
    assert.equal(await messageText(page, answer), words(300));
  });

  it("says quietly when the context was optimized to fit the model's window", async () => {
    const fit = await api.post("/api/conversations", { title: "Small window", provider: "fake", model: "tiny-model" });
    await page.goto(`${gateway.url}/#/c/${fit.id}`);
    await page.getByRole("heading", { level: 1, name: "Small window" }).waitFor();
    for (let i = 0; i < 4; i++) {
      const answer = await send(page, `slow:300:0 turn ${i}`);
      await waitForStatus(page, answer, "complete");
    }
    const notice = page.getByRole("status").filter({ hasText: "Context optimized" });
    await notice.waitFor();
    assert.match(await notice.innerText(), /→ .* tokens/);
    await page.goto(`${gateway.url}/#/c/${firstSteps}`);
    await page.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
  });

  it("reconnects after a dropped connection and resumes the answer exactly", async () => {
    const p = await context.newPage();
    // Keep a handle on the page's sockets so the test can cut one, as a network drop would.
    await p.addInitScript(() => {
      const Native = window.WebSocket;
      window.__sockets = [];
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          window.__sockets.push(this);
        }
      };
    });
    await p.goto(page.url());
    await p.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    await p.getByRole("status", { name: "Connection open" }).waitFor();
    const answer = await send(p, "slow:400:10", 30);
    for (let cut = 0; cut < 2; cut++) {
      await p.evaluate(() => window.__sockets.at(-1).close());
      await p.getByRole("status", { name: /Connection (closed|connecting)/ }).waitFor();
      await p.getByRole("status", { name: "Connection open" }).waitFor();
    }
    await waitForStatus(p, answer, "complete");
    assert.equal(await messageText(p, answer), words(400));
    assert.ok((await p.evaluate(() => window.__sockets.length)) >= 3, "it reconnected");
    await p.close();
  });

  it("shows the same stream live in a second tab", async () => {
    const other = await context.newPage();
    await other.goto(page.url());
    await other.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    const answer = await send(page, "slow:150:15");
    // The second tab sees it while it streams, not only at the end.
    await other.locator(`[data-message-id="${answer}"][data-status="streaming"]`).waitFor();
    await waitForStatus(other, answer, "complete");
    await waitForStatus(page, answer, "complete");
    assert.equal(await messageText(other, answer), words(150));
    assert.equal(await messageText(page, answer), words(150));
    await other.close();
  });

  it("asks for approval on every device; a decision on one updates the other at once", async () => {
    // Another device: a browser of its own (its own storage and socket), signed in as the user.
    const device = await browser.newContext({ viewport: { width: 1280, height: 820 } });
    const other = await device.newPage();
    await signIn(other, gateway.url, USER);
    await other.goto(page.url());
    await other.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    // A third, on another conversation: the banner says which conversation asks, and links it.
    const elsewhere = await device.newPage();
    await elsewhere.goto(gateway.url);
    await elsewhere.getByRole("navigation").waitFor();
    await type(page, "tool:6*7");
    const card = (p) => p.getByRole("region", { name: "Approve run_javascript?" });
    await card(page).waitFor();
    await card(other).waitFor();
    const banner = elsewhere.getByRole("complementary", { name: "Waiting for your approval elsewhere" });
    await banner.waitFor();
    await banner.getByRole("link", { name: "First steps" }).click();
    await elsewhere.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    await card(elsewhere).waitFor();
    await elsewhere.close();
    assert.match(await card(page).innerText(), /exec/);
    assert.match(await card(page).locator(".arguments").innerText(), /6\*7/);
    await card(page).scrollIntoViewIfNeeded();
    await screenshot(page, "approval");
    const step = await page.locator('article.message.assistant[data-status="awaiting_approval"]').last().getAttribute("data-message-id");
    await card(other).getByRole("button", { name: "Approve" }).click();
    await card(page).waitFor({ state: "detached" });
    // Live on the first device, with no reload: the step goes on, its result and the answer
    // appear.
    await waitForStatus(page, step, "complete");
    assert.ok(!(await page.locator(`[data-message-id="${step}"]`).innerText()).includes("Waiting for your approval"));
    await page.locator("article.message.tool", { hasText: "Tool result" }).last().waitFor();
    await page.getByText(/The tool answered: .*42/).waitFor();
    await other.getByText(/The tool answered: .*42/).waitFor();
    const executions = await api.get("/api/tool-executions?limit=10");
    assert.equal(executions.items[0].status, "succeeded");
    assert.equal(executions.items[0].decision.by, "user");
    await device.close();
  });

  it("keeps a message refused while the previous turn goes on as the draft it was", async () => {
    // The server's 409 (its own tests show when it answers so): the text returns to the box.
    await page.route("**/api/conversations/*/messages", (route) =>
      route.request().method() === "POST"
        ? route.fulfill({
            status: 409,
            contentType: "application/json",
            body: JSON.stringify({ error: { code: "conflict", message: "the previous answer in this conversation is still going" } }),
          })
        : route.continue(),
    );
    await type(page, "not yet, please");
    await page.getByText("The previous answer in this conversation is still going.").first().waitFor();
    assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "not yet, please");
    assert.equal(await page.locator("article.message.user", { hasText: "not yet, please" }).count(), 0, "no stray message");
    await page.unroute("**/api/conversations/*/messages");
    await page.getByLabel("Message", { exact: true }).fill("");
  });

  it("takes an API key and never shows it again", async () => {
    const secret = "sk-live-never-shown-7f3a9c1d";
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Settings" });
    const card = dialog.locator('[data-provider="openai"]');
    await card.locator("summary").click();
    await card.getByLabel(/API key/).fill(secret);
    await card.getByRole("button", { name: "Save" }).click();
    await card.getByText("Saved.").waitFor();
    await axe(page, "settings");
    await screenshot(page, "settings");
    await page.reload();
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const again = page.getByRole("dialog", { name: "Settings" }).locator('[data-provider="openai"]');
    await again.locator("summary").click();
    assert.equal(await again.getByLabel(/API key/).inputValue(), "");
    assert.match(await again.innerText(), /…9c1d/);
    assert.ok(!(await page.content()).includes(secret), "the key is not in the page");
    const configs = JSON.stringify(await api.get("/api/provider-configs"));
    assert.ok(!configs.includes(secret) && configs.includes("9c1d"));
    await page.keyboard.press("Escape");
  });

  it("adds a custom provider and uses it as a conversation's fallback", async () => {
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Settings" });
    const custom = dialog.locator("details.card", { hasText: "+ Custom provider" });
    await custom.locator("summary").click();
    await custom.getByLabel("Id", { exact: true }).fill("mine");
    await custom.getByLabel("Base URL").fill(`${fake.url}/v1`);
    await custom.getByLabel("Model id").fill("mine-model");
    await custom.getByRole("button", { name: "Add provider" }).click();
    await dialog.locator('[data-provider="mine"]').waitFor();
    await page.keyboard.press("Escape");
    await page.getByRole("button", { name: "+ New conversation" }).first().click();
    const create = page.getByRole("dialog", { name: "New conversation" });
    await create.getByLabel("Title").fill("With a fallback");
    await create.getByLabel("Model: provider").selectOption("fake");
    await create.getByRole("button", { name: "+ Add fallback" }).click();
    await create.getByLabel("Fallback 1: provider").selectOption("mine");
    await create.getByLabel("Fallback 1: model").selectOption("mine-model");
    await create.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { level: 1, name: "With a fallback" }).waitFor();
    assert.match(await page.locator(".chat-title").innerText(), /→ mine-model/);
    const id = await openConversation(page);
    const saved = await api.get(`/api/conversations/${id}`);
    assert.deepEqual(saved.settings.fallbacks, [{ provider: "mine", model: "mine-model" }]);
    await page.goto(`${gateway.url}/#/c/${firstSteps}`);
    await page.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
  });

  it("sets auto-approval rules per risk and per tool", async () => {
    await page.getByRole("button", { name: "Settings", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Settings" });
    await dialog.getByRole("tab", { name: "Auto-approval" }).click();
    await dialog.getByLabel("Rule for network tools").selectOption("deny");
    await dialog.getByText("Saved.").waitFor();
    await dialog.getByLabel("Rule for calculator").selectOption("ask");
    let rules;
    for (let i = 0; i < 50; i++) {
      rules = await api.get("/api/settings/auto-approval");
      if (rules.tools.calculator === "ask") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(rules.risk.network, "deny");
    assert.equal(rules.tools.calculator, "ask");
    // Destructive can never be auto: the choice is not offered.
    const options = await dialog.getByLabel("Rule for destructive tools").locator("option").allInnerTexts();
    assert.deepEqual(options, ["ask", "deny"]);
    await page.keyboard.press("Escape");
  });

  it("renames, searches by title and deletes conversations", async () => {
    await newConversation(page, "Trip to Rome");
    await newConversation(page, "Groceries");
    await page.getByRole("button", { name: "Rename Groceries" }).click();
    await page.getByLabel("New title").fill("Weekly groceries");
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: /Weekly groceries/ }).waitFor();
    await page.keyboard.press("Control+k");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "search");
    await page.keyboard.type("rome");
    await page.waitForFunction(() => document.querySelectorAll(".conversation-list .row").length === 1);
    assert.match(await page.locator(".conversation-list").innerText(), /Trip to Rome/);
    await page.getByLabel("Search titles").fill("");
    const all = (await api.get("/api/conversations")).items.length;
    await page.waitForFunction((n) => document.querySelectorAll(".conversation-list .row").length === n, all);
    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Delete Trip to Rome" }).click();
    await page.waitForFunction(() => !document.querySelector(".conversation-list")?.textContent?.includes("Trip to Rome"));
    const titles = (await api.get("/api/conversations")).items.map((c) => c.title);
    assert.ok(!titles.includes("Trip to Rome") && titles.includes("Weekly groceries"));
  });

  it("switches theme, and the dark theme is accessible too", async () => {
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "light");
    const button = page.getByRole("button", { name: /^Theme:/ });
    await button.click(); // system -> light
    await button.click(); // light -> dark
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    await page.getByRole("link", { name: /First steps/ }).click();
    await page.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    await axe(page, "chat, dark");
    await screenshot(page, "chat-dark");
    await page.reload();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
    await button.click(); // dark -> system (light here)
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "light");
  });

  it("works at phone width: the list is a drawer, the composer stays in view", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    await signIn(p, gateway.url, USER);
    const drawer = p.getByRole("button", { name: "Conversations" });
    await drawer.click();
    await p.getByRole("link", { name: /First steps/ }).click();
    await p.getByRole("heading", { level: 1, name: "First steps" }).waitFor();
    const box = await p.getByLabel("Message", { exact: true }).boundingBox();
    assert.ok(box && box.y + box.height <= 844, "composer is on screen");
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scroll (${overflow}px)`);
    await screenshot(p, "phone");
    await phone.close();
  });

  it("scrolls a 2,000-message conversation with only the visible rows in the page", async () => {
    const big = await api.post("/api/conversations", { title: "Long history", provider: "fake", model: "fake-model" });
    // 1,000 turns of short answers: 2,000 messages. A turn waits for the one before it (409
    // until then), so each is sent again until the server takes it.
    for (let n = 0; n < 1000; n++) {
      for (;;) {
        const r = await fetch(`${gateway.url}/api/conversations/${big.id}/messages`, {
          method: "POST",
          headers: { Authorization: `Bearer ${api.token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ client_message_id: `bulk-${n}`, content: `slow:3:0 question ${n}` }),
        });
        await r.text();
        if (r.status === 202 || r.status === 200) break;
        assert.equal(r.status, 409, "only the previous turn holds a send back");
        await new Promise((done) => setTimeout(done, 2));
      }
    }
    // Every answer has ended before the page opens it.
    for (;;) {
      const all = [];
      let cursor = "";
      do {
        const page = await api.get(`/api/conversations/${big.id}/messages?limit=200${cursor ? `&cursor=${cursor}` : ""}`);
        all.push(...page.items);
        cursor = page.next_cursor ?? "";
      } while (cursor);
      if (all.length === 2000 && all.every((m) => m.status === "complete")) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.goto(`${gateway.url}/#/c/${big.id}`);
    await page.getByRole("heading", { level: 1, name: "Long history" }).waitFor();
    await page.locator('article.message').first().waitFor();
    const count = await page.evaluate(async () => {
      const el = document.querySelector(".messages");
      // The newest message is in view first.
      const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 200;
      let maxRows = 0;
      // Scroll to the top in steps, as a reader flicking up would.
      while (el.scrollTop > 0) {
        el.scrollTop = Math.max(0, el.scrollTop - el.clientHeight * 2);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        maxRows = Math.max(maxRows, document.querySelectorAll("article.message").length);
      }
      await new Promise((r) => setTimeout(r, 100));
      const top = [...document.querySelectorAll("[data-index]")].slice(0, 3).map((e) => `${e.dataset.index}:${e.querySelector("article")?.dataset.messageId}`);
      return { atEnd, maxRows, first: document.querySelector('[data-index="0"] article')?.dataset.messageId, top };
    });
    assert.ok(count.atEnd, "opens at the newest message");
    assert.ok(count.maxRows < 80, `only visible rows are in the page (${count.maxRows})`);
    const first = (await api.get(`/api/conversations/${big.id}/messages?limit=1`)).items[0];
    assert.equal(count.first, first.id, `the top is the first message (${count.top})`);
  });
});
