// The offline shell. The app's page and its runtime config come from the network when it
// answers and from the cache when it does not; the hashed assets, named by their content, from
// the cache first; the API's GET answers from the network, kept per user so a reload without a
// network still shows that user's conversations as last read (marked `x-bestchat-cached`, so
// the page knows it is offline). Nothing else is touched: sends, the WebSocket and sign-in go
// to the network. Signing out deletes the API cache (src/offline.ts).

const SHELL = "bestchat-shell-v1";
const API = "bestchat-api-v1";
/** The page's own routes: only these navigations are answered with the app. */
const APP_ROUTES = new Set(["/", "/auth/callback"]);
/** Most API answers kept; the oldest go first. */
const API_ENTRIES_MAX = 200;
/** A page that is slower than this counts as offline, when the cache has the app. */
const NETWORK_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name !== SHELL && name !== API) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

/** The page, its config, and every asset the page names (read from the page itself, so the
 * list is always the build's own). */
async function precache() {
  const page = await fetch("/", { cache: "no-store" });
  if (!isPage(page)) return;
  await keepPage(page);
  const cache = await caches.open(SHELL);
  await Promise.all(
    ["/config.json", "/manifest.webmanifest"].map(async (path) => {
      try {
        const response = await fetch(path, { cache: "no-store" });
        if (response.ok) await cache.put(path, response);
      } catch {
        // Cached on first use instead.
      }
    }),
  );
}

const isPage = (response) => response.ok && (response.headers.get("content-type") ?? "").startsWith("text/html");

/** Keeps a new copy of the page and the assets it names, and drops assets no page names. */
async function keepPage(response) {
  const cache = await caches.open(SHELL);
  const html = await response.clone().text();
  await cache.put("/", response);
  const named = new Set([...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]));
  for (const path of named) {
    if (!(await cache.match(path))) {
      try {
        const asset = await fetch(path);
        if (asset.ok) await cache.put(path, asset);
      } catch {
        // Fetched when the page asks for it.
      }
    }
  }
  for (const key of await cache.keys()) {
    const path = new URL(key.url).pathname;
    if (path.startsWith("/assets/") && !named.has(path)) await cache.delete(key);
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  const own = url.origin === self.location.origin;
  if (request.mode === "navigate") {
    if (own && APP_ROUTES.has(url.pathname)) event.respondWith(page(event));
  } else if (own && url.pathname.startsWith("/assets/")) {
    event.respondWith(cacheFirst(request));
  } else if (own && (url.pathname === "/config.json" || url.pathname === "/manifest.webmanifest")) {
    event.respondWith(networkFirst(event, SHELL, url.pathname));
  } else if (url.pathname.startsWith("/api/") && url.pathname !== "/api/openapi.json") {
    const user = subjectOf(request.headers.get("Authorization"));
    // Without a user there is nothing to keep apart, so nothing is kept.
    if (user) event.respondWith(networkFirst(event, API, `/__user/${user}${url.pathname}${url.search}`));
  }
});

/** The app's page: the network's (kept), or the cache's when the network fails or is slow. */
async function page(event) {
  const cache = await caches.open(SHELL);
  const network = fetch(event.request);
  network.catch(() => undefined); // awaited below when it matters
  const slow = new Promise((resolve) => setTimeout(() => resolve("slow"), NETWORK_TIMEOUT_MS));
  try {
    const first = await Promise.race([network, slow]);
    const response = first === "slow" ? ((await cache.match("/")) ?? (await network)) : first;
    if (response !== first) return response;
    if (isPage(response)) event.waitUntil(keepPage(response.clone()));
    return response;
  } catch (error) {
    const cached = await cache.match("/");
    if (cached) return cached;
    throw error;
  }
}

/** The network's answer, kept for later; the kept one, marked, only when the network fails. A
 * slow network is waited for: a stale list beside live events would show a gap. */
async function networkFirst(event, name, key) {
  try {
    const response = await fetch(event.request);
    if (response.ok) event.waitUntil(keep(name, key, response.clone()));
    return response;
  } catch (error) {
    const cached = await (await caches.open(name)).match(key);
    if (!cached) throw error;
    const headers = new Headers(cached.headers);
    headers.set("x-bestchat-cached", "1");
    return new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers });
  }
}

async function keep(name, key, response) {
  const cache = await caches.open(name);
  await cache.put(key, response);
  if (name !== API) return;
  const keys = await cache.keys();
  for (const old of keys.slice(0, Math.max(0, keys.length - API_ENTRIES_MAX))) await cache.delete(old);
}

async function cacheFirst(request) {
  const cache = await caches.open(SHELL);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

/** The `sub` of a bearer JWT: only a name for this browser's own cache, not a check of it. */
function subjectOf(authorization) {
  const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
  const part = token?.split(".")[1];
  if (!part) return "";
  try {
    const sub = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))).sub;
    return typeof sub === "string" ? encodeURIComponent(sub) : "";
  } catch {
    return "";
  }
}
