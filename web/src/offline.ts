// The offline shell: a service worker (public/sw.js) keeps the app and the answers it last
// read, so a reload without a network shows the app, its conversations and the offline badge
// rather than the browser's error page.

/** The cache the service worker keeps API answers in; must match public/sw.js. */
export const API_CACHE = "bestchat-api-v1";

export function registerServiceWorker(): void {
  if (!("serviceWorker" in navigator)) return;
  // Not controlling the page is the same app, only without the offline shell.
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}

/** Signing out: what the service worker kept of this user's answers goes too. */
export async function forgetCachedAnswers(): Promise<void> {
  if (typeof caches === "undefined") return;
  await caches.delete(API_CACHE).catch(() => false);
}
