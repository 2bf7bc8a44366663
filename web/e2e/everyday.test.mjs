// The first hour and everyday use, as a newcomer and a phone user meet them: defaults that work,
// every screen accessible at both widths and in both themes, sends that survive a failing
// server, live updates across devices, and the offline shell.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeProvider } from "./fake-provider.mjs";
import {
  apiAs,
  axe,
  launchBrowser,
  nextAnswer,
  screenshot,
  signIn,
  startGateway,
  useFakeProvider,
  waitForStatus,
} from "./harness.mjs";

const DESKTOP = { width: 1280, height: 820 };
const PHONE = { width: 375, height: 740 };
/** A phone: narrow, touch first. */
const PHONE_CONTEXT = { viewport: PHONE, isMobile: true, hasTouch: true };

let gateway, fake, browser;

before(async () => {
  fake = await startFakeProvider();
  gateway = await startGateway();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  gateway?.stop();
  await fake?.close();
});

/** A browser context without the service worker, so a test's own request routing sees every
 * request (the offline shell has its own test). */
async function context(options = {}) {
  return browser.newContext({ viewport: DESKTOP, colorScheme: "light", serviceWorkers: "block", ...options });
}

const focusedId = (p) => p.evaluate(() => document.activeElement?.id ?? "");
const openId = (p) => p.evaluate(() => location.hash.slice("#/c/".length));

async function type(p, text) {
  await p.getByLabel("Message", { exact: true }).fill(text);
  await p.keyboard.press("Enter");
}

async function stored(api, conversationId) {
  return (await api.get(`/api/conversations/${conversationId}/messages?limit=200`)).items;
}

async function until(check, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the first hour", () => {
  for (const [width, options] of [
    ["desktop", { viewport: DESKTOP }],
    ["phone", PHONE_CONTEXT],
  ]) {
    it(`a newcomer signs in, creates a conversation with the offered defaults and gets an answer (${width})`, async () => {
      const c = await context(options);
      const p = await c.newPage();
      const name = `newcomer-${width}`;
      await signIn(p, gateway.url, name);
      assert.equal(await focusedId(p), "composer", "signed in: the message box has the keyboard");
      if (width === "phone") await p.getByRole("button", { name: "Conversations" }).click();
      await p.getByRole("navigation").getByRole("button", { name: "+ New conversation" }).click();
      const dialog = p.getByRole("dialog", { name: "New conversation" });
      // The server's default, preselected: what the dialog shows is what it creates.
      const provider = await dialog.getByLabel("Model: provider").inputValue();
      const model = await dialog.getByLabel("Model: model").inputValue();
      assert.deepEqual([provider, model], ["echo", "echo-1"]);
      await dialog.getByRole("button", { name: "Create" }).click();
      await p.getByRole("heading", { level: 1, name: "New conversation" }).waitFor();
      await until(async () => (await focusedId(p)) === "composer");
      const id = await openId(p);
      const api = await apiAs(gateway.url, name);
      const created = await api.get(`/api/conversations/${id}`);
      assert.deepEqual([created.provider, created.model], [provider, model]);
      const answer = await nextAnswer(api, id, async () => {
        await p.getByLabel("Message", { exact: true }).fill("hello");
        await p.getByRole("button", { name: "Send" }).click();
      });
      await waitForStatus(p, answer, "complete");
      assert.equal(await p.locator(`[data-message-id="${answer}"] .content`).innerText(), "Echo (echo-1): hello");
      // The user's own message is on screen at this width.
      const mine = p.locator("article.message.user").last();
      assert.ok(await mine.isVisible(), "own message visible");
      const box = await mine.boundingBox();
      assert.ok(box && box.width > 100 && box.height > 10, `own message has a size: ${JSON.stringify(box)}`);
      assert.equal(await mine.locator(".content").innerText(), "hello");
      await screenshot(p, `newcomer-${width}`);
      await c.close();
    });
  }

  it("starts a conversation from the first message, with the default model", async () => {
    const c = await context();
    const p = await c.newPage();
    await signIn(p, gateway.url, "quick");
    await type(p, "hi from the welcome screen");
    await p.getByRole("heading", { level: 1, name: "New conversation" }).waitFor();
    const api = await apiAs(gateway.url, "quick");
    const id = await openId(p);
    await until(async () => (await stored(api, id)).some((m) => m.role === "assistant" && m.status === "complete"));
    const messages = await stored(api, id);
    assert.deepEqual(messages.map((m) => m.role), ["user", "assistant"]);
    assert.equal(messages[0].content, "hi from the welcome screen");
    await c.close();
  });
});

describe("every screen is accessible", () => {
  it("has no axe-core violation on any screen, light and dark, at 1280 and 375 px", async () => {
    const name = "una";
    const api = await apiAs(gateway.url, name);
    await useFakeProvider(api, fake.url);
    const scan = await api.post("/api/conversations", { title: "Scan", provider: "fake", model: "fake-model" });
    for (const [i, text] of ["hello there", "fail please"].entries()) {
      await api.post(`/api/conversations/${scan.id}/messages`, { client_message_id: `scan-${i}`, content: text });
      await until(async () => (await stored(api, scan.id)).every((m) => !["pending", "streaming"].includes(m.status)));
    }
    const tools = await api.post("/api/conversations", { title: "Scan tools", provider: "fake", model: "fake-model" });
    await api.post(`/api/conversations/${tools.id}/messages`, { client_message_id: "scan-tool", content: "tool:1+1" });
    const pending = await until(async () => (await api.get("/api/tool-executions?status=pending")).items[0]);
    for (const [viewport, scheme] of [
      [DESKTOP, "light"],
      [DESKTOP, "dark"],
      [PHONE, "light"],
      [PHONE, "dark"],
    ]) {
      const label = `${viewport.width}px ${scheme}`;
      const c = await context({ viewport, colorScheme: scheme, isMobile: viewport === PHONE, hasTouch: viewport === PHONE });
      const p = await c.newPage();
      await p.goto(gateway.url);
      await p.getByLabel("Your name").waitFor();
      await axe(p, `sign-in, ${label}`);
      await signIn(p, gateway.url, name);
      await axe(p, `empty state, ${label}`);
      await p.goto(`${gateway.url}/#/c/${scan.id}`);
      await p.getByRole("heading", { level: 1, name: "Scan" }).waitFor();
      await p.locator(".message-error").waitFor();
      await axe(p, `chat, ${label}`);
      await p.getByRole("button", { name: "Settings", exact: true }).click();
      await p.getByRole("dialog", { name: "Settings" }).waitFor();
      await axe(p, `settings, ${label}`);
      for (const tab of ["Auto-approval", "Tools", "MCP servers", "Usage"]) {
        await p.getByRole("tab", { name: tab }).click();
        if (tab === "Usage") await p.locator(".usage").getByText(/calls?,|Nothing used yet/).first().waitFor();
        await axe(p, `settings ${tab}, ${label}`);
      }
      await p.keyboard.press("Escape");
      if (viewport === PHONE) await p.getByRole("button", { name: "Conversations" }).click();
      await p.getByRole("navigation").getByRole("button", { name: "+ New conversation" }).click();
      await p.getByRole("dialog", { name: "New conversation" }).waitFor();
      await axe(p, `new conversation dialog, ${label}`);
      await p.keyboard.press("Escape");
      await p.goto(`${gateway.url}/#/c/${tools.id}`);
      const card = p.locator(`[data-execution="${pending.id}"]`).first();
      await card.waitFor();
      // The card is in view, not below the fold.
      assert.ok(await card.isVisible());
      const box = await card.boundingBox();
      assert.ok(box && box.y >= 0 && box.y < viewport.height, `approval in view: ${JSON.stringify(box)}`);
      await axe(p, `approval, ${label}`);
      await screenshot(p, `approval-${viewport.width}-${scheme}`);
      await c.close();
    }
    await api.post(`/api/tool-executions/${pending.id}/deny`, {});
  });

  it("lets the keyboard reach the message box by the skip link, and code blocks scroll by keyboard", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "keys");
    await useFakeProvider(api, fake.url);
    const conv = await api.post("/api/conversations", { title: "Keys", provider: "fake", model: "fake-model" });
    await signIn(p, gateway.url, "keys");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByRole("heading", { level: 1, name: "Keys" }).waitFor();
    const answer = await nextAnswer(api, conv.id, () => type(p, "show me code"));
    await waitForStatus(p, answer, "complete");
    // The skip link is the first stop of the keyboard, and it goes where it says.
    const first = await p.evaluate(() => document.querySelector("a[href], button, input, textarea, select, [tabindex]")?.textContent);
    assert.equal(first, "Skip to the message box");
    await p.getByRole("link", { name: "Skip to the message box" }).focus();
    await p.keyboard.press("Enter");
    assert.equal(await focusedId(p), "composer");
    const code = p.locator(`[data-message-id="${answer}"] pre`).first();
    assert.equal(await code.getAttribute("tabindex"), "0", "a code block takes the keyboard, so it can scroll");
    await c.close();
  });
});

describe("everyday use", () => {
  it("keeps a send through a 503 and sends it once the server recovers", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "ada");
    await useFakeProvider(api, fake.url);
    const conv = await api.post("/api/conversations", { title: "Flaky server", provider: "fake", model: "fake-model" });
    await signIn(p, gateway.url, "ada");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByRole("heading", { level: 1, name: "Flaky server" }).waitFor();
    let refusals = 0;
    await p.route("**/api/conversations/*/messages", async (route) => {
      if (route.request().method() === "POST" && refusals < 2) {
        refusals++;
        await route.fulfill({
          status: 503,
          contentType: "application/json",
          body: JSON.stringify({ error: { code: "unavailable", message: "the service is briefly unavailable; retry shortly" } }),
        });
      } else {
        await route.continue();
      }
    });
    await type(p, "through the storm");
    await p.locator("article.message.user .status-badge", { hasText: "Sending…" }).waitFor();
    await until(async () => (await stored(api, conv.id)).some((m) => m.role === "assistant" && m.status === "complete"));
    assert.equal(refusals, 2);
    const users = (await stored(api, conv.id)).filter((m) => m.role === "user");
    assert.deepEqual(users.map((m) => m.content), ["through the storm"], "sent once");
    await p.locator("article.message.user", { hasText: "through the storm" }).locator(".status-badge").waitFor({ state: "detached" });
    await c.close();
  });

  it("shows a conversation created, renamed and deleted on one device on the other", async () => {
    const a = await context();
    const b = await context();
    const pa = await a.newPage();
    const pb = await b.newPage();
    await signIn(pa, gateway.url, "twin");
    await signIn(pb, gateway.url, "twin");
    await pb.getByRole("status", { name: "Connection open" }).waitFor();
    await pa.getByRole("navigation").getByRole("button", { name: "+ New conversation" }).click();
    const dialog = pa.getByRole("dialog", { name: "New conversation" });
    await dialog.getByLabel("Title").fill("Shared plans");
    await dialog.getByRole("button", { name: "Create" }).click();
    await pb.getByRole("link", { name: /Shared plans/ }).waitFor();
    await pb.getByRole("button", { name: "Rename Shared plans" }).click();
    await pb.getByLabel("New title").fill("Shared plans, renamed");
    await pb.keyboard.press("Enter");
    await pa.getByRole("link", { name: /Shared plans, renamed/ }).waitFor();
    await pa.getByRole("heading", { level: 1, name: "Shared plans, renamed" }).waitFor();
    pa.once("dialog", (d) => d.accept());
    await pa.getByRole("button", { name: "Delete Shared plans, renamed" }).click();
    await pb.getByRole("link", { name: /Shared plans/ }).waitFor({ state: "detached" });
    await a.close();
    await b.close();
  });

  it("keeps drafts per conversation across a switch and a reload", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "drafter");
    const one = await api.post("/api/conversations", { title: "Draft one" });
    const two = await api.post("/api/conversations", { title: "Draft two" });
    await signIn(p, gateway.url, "drafter");
    await p.getByRole("link", { name: /Draft one/ }).click();
    await p.getByLabel("Message", { exact: true }).fill("half a thought");
    await p.getByRole("link", { name: /Draft two/ }).click();
    await p.getByRole("heading", { level: 1, name: "Draft two" }).waitFor();
    assert.equal(await focusedId(p), "composer", "switching puts the keyboard in the message box");
    assert.equal(await p.getByLabel("Message", { exact: true }).inputValue(), "");
    await p.getByLabel("Message", { exact: true }).fill("another");
    await p.getByRole("link", { name: /Draft one/ }).click();
    await p.getByRole("heading", { level: 1, name: "Draft one" }).waitFor();
    assert.equal(await p.getByLabel("Message", { exact: true }).inputValue(), "half a thought");
    await new Promise((r) => setTimeout(r, 400));
    await p.reload();
    await p.getByRole("heading", { level: 1, name: "Draft one" }).waitFor();
    assert.equal(await p.getByLabel("Message", { exact: true }).inputValue(), "half a thought");
    await p.goto(`${gateway.url}/#/c/${two.id}`);
    await p.getByRole("heading", { level: 1, name: "Draft two" }).waitFor();
    assert.equal(await p.getByLabel("Message", { exact: true }).inputValue(), "another");
    assert.ok(one.id);
    await c.close();
  });

  it("offers a jump to the latest message when scrolled up, and a send scrolls to it", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "scroller");
    await useFakeProvider(api, fake.url);
    const conv = await api.post("/api/conversations", { title: "Long answers", provider: "fake", model: "fake-model" });
    for (let i = 0; i < 3; i++) {
      await api.post(`/api/conversations/${conv.id}/messages`, { client_message_id: `long-${i}`, content: "slow:400:0" });
      await until(async () => (await stored(api, conv.id)).every((m) => m.status === "complete"));
    }
    await signIn(p, gateway.url, "scroller");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.locator("article.message").first().waitFor();
    const jump = p.getByRole("button", { name: /Jump to latest/ });
    assert.equal(await jump.count(), 0, "at the end, no jump");
    await p.locator(".messages").evaluate((el) => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event("scroll"));
    });
    await jump.waitFor();
    await jump.click();
    await jump.waitFor({ state: "detached" });
    const atEnd = () => p.locator(".messages").evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 100);
    assert.ok(await atEnd());
    await p.locator(".messages").evaluate((el) => {
      el.scrollTop = 0;
      el.dispatchEvent(new Event("scroll"));
    });
    await jump.waitFor();
    const answer = await nextAnswer(api, conv.id, () => type(p, "slow:5:0 and now?"));
    await waitForStatus(p, answer, "complete");
    await until(atEnd);
    await c.close();
  });

  it("retries a failed answer as the same turn, and links a refused key to its settings", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "retrier");
    await useFakeProvider(api, fake.url);
    const conv = await api.post("/api/conversations", { title: "Retries", provider: "fake", model: "fake-model" });
    await signIn(p, gateway.url, "retrier");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByRole("heading", { level: 1, name: "Retries" }).waitFor();
    const failed = await nextAnswer(api, conv.id, () => type(p, "flaky:once"));
    await waitForStatus(p, failed, "error");
    const article = p.locator(`[data-message-id="${failed}"]`);
    // The sentence reads as one (a capital, a full stop); the code is there, secondary.
    const sentence = await article.locator(".error-text").innerText();
    assert.match(sentence, /^The model provider refused the request\./);
    assert.equal(await article.locator(".error-code").innerText(), "provider_error");
    await article.getByRole("button", { name: "Retry" }).click();
    await waitForStatus(p, failed, "complete");
    assert.equal(await article.locator(".content").innerText(), "Recovered.");
    const messages = await stored(api, conv.id);
    assert.deepEqual(messages.map((m) => [m.role, m.status]), [["user", "complete"], ["assistant", "complete"]], "the question was not asked twice");

    const refused = await nextAnswer(api, conv.id, () => type(p, "unauthorized please"));
    await waitForStatus(p, refused, "error");
    const bad = p.locator(`[data-message-id="${refused}"]`);
    assert.equal(await bad.locator(".error-code").innerText(), "provider_key_refused");
    await bad.getByRole("button", { name: "Open the fake settings" }).click();
    const card = p.getByRole("dialog", { name: "Settings" }).locator('[data-provider="fake"]');
    await card.waitFor();
    assert.equal(await card.evaluate((el) => el.open), true, "that provider's card is open");
    await p.keyboard.press("Escape");
    await c.close();
  });

  it("says when a message is past the limit, and shows what a stopped answer cost", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "paster");
    await useFakeProvider(api, fake.url);
    const conv = await api.post("/api/conversations", { title: "Limits", provider: "fake", model: "fake-model" });
    await signIn(p, gateway.url, "paster");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByRole("heading", { level: 1, name: "Limits" }).waitFor();
    const box = p.getByLabel("Message", { exact: true });
    await box.evaluate((el) => {
      // As a paste would put it in: all at once.
      el.value = "x".repeat(200_001);
      el.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await p.getByText(/This message is 200,001 characters; at most 200,000 can be sent\./).waitFor();
    assert.ok(await p.getByRole("button", { name: "Send" }).isDisabled());
    await box.fill("");
    const answer = await nextAnswer(api, conv.id, () => type(p, "slow:2000:20"));
    await p.locator(`[data-message-id="${answer}"][data-status="streaming"]`).waitFor();
    await p.getByRole("button", { name: "Stop" }).click();
    await waitForStatus(p, answer, "cancelled");
    const usage = p.locator(`[data-message-id="${answer}"] .usage`);
    await usage.waitFor();
    assert.match(await usage.innerText(), /\$\d/);
    await c.close();
  });

  it("signing out forgets the sends still waiting", async () => {
    const c = await context();
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "leaver");
    const conv = await api.post("/api/conversations", { title: "Leaving" });
    await signIn(p, gateway.url, "leaver");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByRole("heading", { level: 1, name: "Leaving" }).waitFor();
    await p.route("**/api/conversations/*/messages", (route) =>
      route.request().method() === "POST" ? route.fulfill({ status: 503, body: "{}" }) : route.continue(),
    );
    await type(p, "never to be sent");
    await p.getByLabel("Message", { exact: true }).fill("a draft too");
    const kept = () => p.evaluate(() => Object.keys(localStorage).filter((k) => /^bestchat\.(outbox|drafts)/.test(k)).map((k) => localStorage.getItem(k)).join(" "));
    await until(async () => (await kept()).includes("never to be sent") && (await kept()).includes("a draft too"));
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.getByLabel("Your name").waitFor();
    assert.equal(await kept(), "", "nothing of the user's sends or drafts is left");
    await p.unroute("**/api/conversations/*/messages");
    await signIn(p, gateway.url, "leaver");
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await stored(api, conv.id), [], "nothing was sent after signing out");
    await c.close();
  });
});

describe("on a phone", () => {
  it("closes the drawer on a pick, shows the connection, and sends with the button (Enter is a new line)", async () => {
    const c = await context(PHONE_CONTEXT);
    const p = await c.newPage();
    const api = await apiAs(gateway.url, "mobile");
    const conv = await api.post("/api/conversations", { title: "Pocket" });
    await signIn(p, gateway.url, "mobile");
    const badge = p.locator(".conn");
    assert.ok(await badge.isVisible(), "the connection badge is on a phone too");
    await p.getByRole("status", { name: "Connection open" }).waitFor();
    await c.setOffline(true);
    await p.getByRole("status", { name: "Connection offline" }).waitFor();
    await c.setOffline(false);
    await p.getByRole("status", { name: "Connection open" }).waitFor();
    await p.getByRole("button", { name: "Conversations" }).click();
    await p.getByRole("link", { name: /Pocket/ }).click();
    await p.getByRole("heading", { level: 1, name: "Pocket" }).waitFor();
    assert.equal(await p.locator(".layout.drawer-open").count(), 0, "the drawer closed");
    await p.getByRole("link", { name: /Pocket/ }).waitFor({ state: "hidden" });
    const box = p.getByLabel("Message", { exact: true });
    await box.fill("line one");
    await box.press("Enter");
    await box.pressSequentially("line two");
    assert.equal(await box.inputValue(), "line one\nline two");
    assert.deepEqual(await stored(api, conv.id), [], "Enter sent nothing");
    const answer = await nextAnswer(api, conv.id, () => p.getByRole("button", { name: "Send" }).click());
    await waitForStatus(p, answer, "complete");
    assert.equal((await stored(api, conv.id))[0].content, "line one\nline two");
    await c.close();
  });
});

describe("the offline shell", () => {
  it("reloads without a network into the app, its conversations and the offline badge", async () => {
    const own = await startGateway();
    const c = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
    const p = await c.newPage();
    try {
      await signIn(p, own.url, "traveller");
      await type(p, "notes for the road");
      await p.getByRole("heading", { level: 1, name: "New conversation" }).waitFor();
      await p.locator('article.message.assistant[data-status="complete"]').waitFor();
      await p.evaluate(() => navigator.serviceWorker.ready);
      // A load under the service worker keeps the answers it reads.
      await p.reload();
      await until(() => p.evaluate(() => navigator.serviceWorker.controller !== null));
      await p.locator('article.message.assistant[data-status="complete"]').waitFor();
      await until(() => p.evaluate(async () => (await (await caches.open("bestchat-api-v1")).keys()).length > 0));
      own.stop();
      await c.setOffline(true);
      await p.reload();
      await p.getByRole("status", { name: "Connection offline" }).waitFor();
      await p.getByRole("link", { name: /New conversation/ }).waitFor();
      await p.getByText("notes for the road").first().waitFor();
      await screenshot(p, "offline");
      // Installable: a manifest with the icons a browser asks for.
      const manifest = await p.evaluate(async () => (await caches.match("/manifest.webmanifest"))?.json());
      assert.equal(manifest.display, "standalone");
      assert.ok(manifest.icons.some((i) => i.sizes === "512x512"));
    } finally {
      await c.close();
      own.stop();
    }
  });
});
