import { effect } from "@preact/signals";
import { render } from "preact";
import { Api } from "./api/client";
import { Auth, SESSION_KEY, session, subjectOf } from "./auth/session";
import { loadConfig, websocketUrl } from "./config";
import { forgetCachedAnswers, registerServiceWorker } from "./offline";
import { ChatApp } from "./stores/app";
import { initTheme } from "./stores/theme";
import { ChatSocket } from "./ws/client";
import { App } from "./ui/App";
import { SignIn } from "./ui/SignIn";
import "./styles.css";

async function main(): Promise<void> {
  initTheme();
  registerServiceWorker();
  const root = document.getElementById("app")!;
  let config;
  try {
    config = await loadConfig();
  } catch (e) {
    root.textContent = `BestChat cannot start: ${e instanceof Error ? e.message : String(e)}`;
    return;
  }
  const auth = new Auth(config.auth, localStorage);
  if (location.pathname === "/auth/callback") {
    try {
      await auth.completeSignIn(location.search, location.origin, sessionStorage);
    } catch (e) {
      alert(e instanceof Error ? e.message : String(e));
    }
    history.replaceState(null, "", "/");
  }
  let current: ChatApp | null = null;
  let owner = "";
  window.addEventListener("storage", (e) => {
    if (e.key === SESSION_KEY) auth.syncFromStorage();
  });
  // One app per signed-in user: signing out (by the button, an expired session or another
  // tab) tears it down with everything it kept on this device; signing in builds a fresh one.
  effect(() => {
    const s = session.value;
    const user = s ? subjectOf(s.token) : "";
    if (current && user !== owner) {
      current.signOut();
      void forgetCachedAnswers();
      current = null;
    }
    if (s && !current) {
      owner = user;
      const token = () => auth.token();
      let app: ChatApp | null = null;
      const api = new Api({ base: config.api_base, token, onCachedAnswer: () => app && (app.reachable.value = false) });
      const socket = new ChatSocket({ url: websocketUrl(config, location), token });
      current = app = new ChatApp(api, socket, localStorage, user);
      void current.start();
      render(<App app={current} auth={auth} />, root);
    } else if (!s) {
      render(<SignIn auth={auth} />, root);
    }
  });
}

void main();
