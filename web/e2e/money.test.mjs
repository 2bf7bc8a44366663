// Limits and money as people meet them: the budget gauge and one's own cap, a send refused for
// money with when the limit resets, the admin's users and limits, and buying credit through a
// Stripe checkout; every screen accessible at phone and desktop widths.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { startFakeProvider } from "./fake-provider.mjs";
import { apiAs, axe, launchBrowser, screenshot, signIn, startGateway, useFakeProvider } from "./harness.mjs";

const DESKTOP = { width: 1280, height: 820 };
const PHONE = { width: 375, height: 740 };

let fake, stripe, gateway, browser;

/** Stripe's Checkout Sessions on loopback: answers as Stripe does, pointing back at the app. */
function startFakeStripe() {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const ok = req.method === "POST" && req.url === "/v1/checkout/sessions" && /mode=payment/.test(body);
      res.writeHead(ok ? 200 : 400, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          ok
            ? { id: "cs_test_e2e", object: "checkout.session", url: `${gateway.url}/?billing=paid` }
            : { error: { type: "invalid_request_error", message: "bad request" } },
        ),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() })));
}

before(async () => {
  fake = await startFakeProvider();
  stripe = await startFakeStripe();
  gateway = await startGateway({
    BESTCHAT_ADMINS: "boss",
    // About one answer of the fake model's worst case (4,096 output tokens at $2/M).
    BESTCHAT_BUDGET_DEFAULT_MICROS: "10000",
    BESTCHAT_BILLING: "1",
    STRIPE_API_BASE: stripe.url,
    STRIPE_SECRET_KEY: "sk_test_e2e",
    STRIPE_WEBHOOK_SECRET: "whsec_e2e",
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  gateway?.stop();
  stripe?.close();
  await fake?.close();
});

async function openSettingsTab(p, tab) {
  await p.getByRole("button", { name: "Settings", exact: true }).click();
  await p.getByRole("dialog", { name: "Settings" }).waitFor();
  await p.getByRole("tab", { name: tab }).click();
}

describe("limits and money", () => {
  it("shows the budget, takes a cap of one's own, and says when a refused send can go again", async () => {
    const api = await apiAs(gateway.url, "spender");
    await useFakeProvider(api, fake.url);
    // Credit first: with billing on, prepaid credit is a limit too (bought below, in the browser).
    const conv = await api.post("/api/conversations", { title: "Spend", provider: "fake", model: "fake-model" });
    const c = await browser.newContext({ viewport: DESKTOP, serviceWorkers: "block" });
    const p = await c.newPage();
    await signIn(p, gateway.url, "spender");
    await openSettingsTab(p, "Usage");
    const gauge = p.locator("meter.budget-gauge");
    await gauge.waitFor();
    assert.match(await p.locator(".budget").innerText(), /\$0 of \$0\.01 spent this month/);
    assert.match(await p.locator(".budget").innerText(), /\$0 prepaid credit left/);
    await axe(p, "budget, desktop");
    // No credit: the send is refused, and the reader learns why and where to look.
    await p.keyboard.press("Escape");
    await p.goto(`${gateway.url}/#/c/${conv.id}`);
    await p.getByLabel("Message", { exact: true }).fill("hello");
    await p.keyboard.press("Enter");
    const toast = p.locator(".toasts").getByText(/credit is used up/);
    await toast.waitFor();
    assert.match(await toast.innerText(), /See Settings › Usage\./);
    // Buying credit goes to Stripe's page (the fake sends the buyer straight back).
    await openSettingsTab(p, "Usage");
    await p.getByRole("button", { name: "Buy credits" }).click();
    await p.waitForURL(/billing=paid/);
    assert.ok(p.url().includes("billing=paid"));
    await c.close();
  });

  it("lets an admin see users and set a limit, and hides the admin tab from everyone else", async () => {
    // Seen once by the server, so the admin has someone to list.
    await (await apiAs(gateway.url, "worker")).get("/api/budget");
    for (const [viewport, label] of [
      [DESKTOP, "desktop"],
      [PHONE, "phone"],
    ]) {
      const c = await browser.newContext({ viewport, isMobile: viewport === PHONE, hasTouch: viewport === PHONE, serviceWorkers: "block" });
      const p = await c.newPage();
      await signIn(p, gateway.url, "boss");
      await openSettingsTab(p, "Admin");
      const row = p.getByRole("row", { name: /worker/ });
      await row.waitFor();
      await axe(p, `admin, ${label}`);
      await row.getByLabel(/Limit for worker/).fill("2.50");
      await row.getByLabel(/Period for worker/).selectOption("day");
      await row.getByRole("button", { name: "Set" }).click();
      await row.getByText("$2.50 a day").waitFor();
      await screenshot(p, `admin-${viewport.width}`);
      await c.close();
    }
    const worker = await apiAs(gateway.url, "worker");
    const budget = await worker.get("/api/budget");
    assert.equal(budget.limit_micros, 2_500_000);
    assert.equal(budget.period, "day");

    const c = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, serviceWorkers: "block" });
    const p = await c.newPage();
    await signIn(p, gateway.url, "worker");
    await openSettingsTab(p, "Usage");
    await p.locator("meter.budget-gauge").waitFor();
    assert.equal(await p.getByRole("tab", { name: "Admin" }).count(), 0);
    // One's own cap, typed in dollars.
    await p.getByLabel(/Your own cap per day/).fill("1");
    await p.getByRole("button", { name: "Save cap" }).click();
    await p.getByText("Your own cap is saved.").waitFor();
    assert.equal((await worker.get("/api/budget")).personal_limit_micros, 1_000_000);
    await axe(p, "budget, phone");
    await screenshot(p, "budget-375");
    await c.close();
  });
});
