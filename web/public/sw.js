// The offline shell. The page and its runtime config come from the network when it answers and
// from the cache when it does not; the hashed assets, named by their content, from the cache
// first; the API's GET answers from the network, kept so a reload without one still shows the
// conversations last read. Nothing else is touched: sends, the WebSocket and sign-in always go
// to the network. Signing out deletes the API cache (src/offline.ts).

const SHELL = "bestchat-shell-v1";
const API = "bestchat-api-v1";
/** Most API answers kept; the oldest go first. */
const API_ENTRIES_MAX = 200;
/** A page that never answers counts as offline after this. */
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
  const cache = await caches.open(SHELL);
  const page = await fetch("/", { cache: "no-store" });
  if (!page.ok) return;
  const html = await page.clone().text();
  await cache.put("/", page);
  const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]);
  await Promise.all(
    [...new Set([...assets, "/config.json", "/manifest.webmanifest"])].map(async (path) => {
      try {
        const response = await fetch(path, { cache: "no-store" });
        if (response.ok) await cache.put(path, response);
      } catch {
        // Cached on first use instead.
      }
    }),
  );
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate") {
    event.respondWith(networkFirst(SHELL, request, "/", NETWORK_TIMEOUT_MS));
  } else if (url.origin === self.location.origin && url.pathname.startsWith("/assets/")) {
    event.respondWith(cacheFirst(request));
  } else if (url.origin === self.location.origin && (url.pathname === "/config.json" || url.pathname === "/manifest.webmanifest")) {
    event.respondWith(networkFirst(SHELL, request, url.pathname));
  } else if (url.pathname.startsWith("/api/") && url.pathname !== "/api/openapi.json") {
    event.respondWith(networkFirst(API, request, url.pathname + url.search));
  }
});

/** The network's answer (kept for later); the cache's when the network fails. The page may
 * also take the cache's when the network is slower than NETWORK_TIMEOUT_MS (`patience`); API
 * answers never do: a stale list next to live events would show a gap. */
async function networkFirst(name, request, key, patience = null) {
  const cache = await caches.open(name);
  const network = fetch(request).then(async (response) => {
    if (response.ok) {
      await cache.put(key, response.clone());
      if (name === API) await trim(cache);
    }
    return response;
  });
  network.catch(() => undefined); // awaited below when it matters
  try {
    if (patience !== null) {
      const slow = new Promise((resolve) => setTimeout(() => resolve("slow"), patience));
      const first = await Promise.race([network, slow]);
      if (first !== "slow") return first;
      return (await cache.match(key)) ?? (await network);
    }
    return await network;
  } catch (error) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(SHELL);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function trim(cache) {
  const keys = await cache.keys();
  for (const key of keys.slice(0, Math.max(0, keys.length - API_ENTRIES_MAX))) await cache.delete(key);
}
