// What every browser test needs: bestchat-local on a free port with its own data, the fake
// provider, Debian's Chromium driven by playwright-core, and typed-enough API helpers.
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
export const ARTIFACTS = process.env.BESTCHAT_WEB_ARTIFACTS ?? join(here, "..", "test-results");
/** Longest a gateway may take to print its address. */
const STARTUP_TIMEOUT_MS = 60_000;

export function chromiumPath() {
  const candidates = [process.env.BESTCHAT_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error("Chromium is needed: apt-get install chromium chromium-driver, or set BESTCHAT_CHROMIUM");
  return found;
}

export function gatewayBinary() {
  const explicit = process.env.BESTCHAT_LOCAL_BIN;
  if (explicit) return explicit;
  const target = process.env.CARGO_TARGET_DIR ?? join(here, "..", "..", "target");
  return join(target, "debug", "bestchat-local");
}

/** Starts bestchat-local (SQLite, dev auth) and resolves with its base URL once it listens. */
export async function startGateway(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "bestchat-e2e-"));
  const child = spawn(gatewayBinary(), [], {
    env: {
      ...process.env,
      DATABASE_URL: "",
      REDIS_URL: "",
      BESTCHAT_ADDR: "127.0.0.1:0",
      BESTCHAT_DATA_DIR: dataDir,
      BESTCHAT_DEV_AUTH: "1",
      // The suite drives one user harder than a person would.
      BESTCHAT_RATE_READ_PER_MINUTE: "0",
      BESTCHAT_RATE_WRITE_PER_MINUTE: "0",
      BESTCHAT_RATE_TURN_PER_MINUTE: "0",
      BESTCHAT_RATE_CONNECT_PER_MINUTE: "0",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("bestchat-local did not start")), STARTUP_TIMEOUT_MS);
    let buffer = "";
    child.stdout.on("data", (d) => {
      buffer += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(buffer);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`bestchat-local exited with ${code}`)));
  });
  return {
    url,
    stop: () => {
      child.kill("SIGTERM");
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** The HTTP API as a user: a dev token for `name`, then JSON calls that throw on failure. */
export async function apiAs(base, name) {
  const res = await fetch(`${base}/dev/token`, { method: "POST", body: JSON.stringify({ user: name }) });
  const { token } = await res.json();
  const call = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return { token, get: (p) => call("GET", p), post: (p, b) => call("POST", p, b), put: (p, b) => call("PUT", p, b), raw: call };
}

/** The user's custom provider `fake`, pointed at the fake server, with a priced tool model. */
export async function useFakeProvider(api, fakeUrl) {
  await api.put("/api/provider-configs/fake", {
    protocol: "openai",
    base_url: `${fakeUrl}/v1`,
    api_key: "sk-fake-provider-key-0001",
    default_model: "fake-model",
    models: [
      {
        id: "fake-model",
        context_window: 128000,
        max_output_tokens: 4096,
        input_price_per_mtok: 1_000_000,
        output_price_per_mtok: 2_000_000,
        supports_tools: true,
      },
      // A small window, so a few turns need the context planner.
      { id: "tiny-model", context_window: 1500, max_output_tokens: 300, supports_tools: false },
    ],
  });
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** Signs in on the dev form as `name`. */
export async function signIn(page, base, name) {
  await page.goto(base);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "+ New conversation" }).first().waitFor();
}

/** The text of the assistant message `id` as the page shows it. */
export function messageText(page, id) {
  return page.locator(`[data-message-id="${id}"] .content`).innerText();
}

/** Waits until the message `id` has `status`. */
export async function waitForStatus(page, id, status, timeout = 30_000) {
  await page.locator(`[data-message-id="${id}"][data-status="${status}"]`).waitFor({ timeout });
}

/** Waits until the page shows message `id` with at least `minWords` words. */
export async function waitForWords(page, id, minWords, timeout = 30_000) {
  await page.waitForFunction(
    ({ id, min }) => {
      const text = document.querySelector(`[data-message-id="${id}"] .content`)?.textContent ?? "";
      return text.split(/\s+/).filter(Boolean).length >= min;
    },
    { id, min: minWords },
    { timeout },
  );
}

/** The id of the answer the server starts after this call, once it exists. */
export async function nextAnswer(api, conversationId, start, timeout = 30_000) {
  const list = async () => (await api.get(`/api/conversations/${conversationId}/messages?limit=200`)).items;
  const known = new Set((await list()).map((m) => m.id));
  await start();
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const fresh = (await list()).filter((m) => m.role === "assistant" && !known.has(m.id));
    if (fresh.length) return fresh[0].id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("no answer started");
}

/** Fails on any axe-core violation of the page as it is now (every impact, not only serious). */
export async function axe(page, label) {
  // Evaluated, not injected as a <script>: the page's CSP rightly refuses inline scripts.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  assert.deepEqual(result, [], `${label}: ${JSON.stringify(result, null, 1)}`);
}
