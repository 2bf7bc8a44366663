import { effect } from "@preact/signals";
import { render } from "preact";
import { Api } from "./api/client";
import { Auth, session } from "./auth/session";
import { loadConfig, websocketUrl } from "./config";
import { registerServiceWorker } from "./offline";
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
  // One app per signed-in session: signing out tears it down, signing in builds a fresh one.
  effect(() => {
    const signedIn = session.value !== null;
    if (signedIn && !current) {
      const token = () => auth.token();
      const api = new Api({ base: config.api_base, token });
      const socket = new ChatSocket({ url: websocketUrl(config, location), token });
      current = new ChatApp(api, socket, localStorage);
      void current.start();
      render(<App app={current} auth={auth} />, root);
    } else if (!signedIn) {
      current?.socket.stop();
      current = null;
      render(<SignIn auth={auth} />, root);
    }
  });
}

void main();
