import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { session, type Auth } from "../auth/session";
import type { ChatApp } from "../stores/app";
import { cycleTheme, theme } from "../stores/theme";
import { ChatView } from "./ChatView";
import { NewConversation } from "./NewConversation";
import { Settings } from "./Settings";
import { Sidebar } from "./Sidebar";
import { ToolApproval } from "./ToolApproval";

/** The conversation in the address (`#/c/<id>`), so a reload opens the same one. */
function idFromHash(): string | null {
  return /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash)?.[1] ?? null;
}

export function App({ app, auth }: { app: ChatApp; auth: Auth }) {
  const dialog = useSignal<"new" | "settings" | null>(null);
  const drawer = useSignal(false);

  useEffect(() => {
    const open = () => void app.select(idFromHash());
    window.addEventListener("hashchange", open);
    open();
    const keys = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key.toLowerCase() === "k") {
        e.preventDefault();
        document.getElementById("search")?.focus();
      } else if (mod && e.shiftKey && e.key.toLowerCase() === "o") {
        e.preventDefault();
        dialog.value = "new";
      } else if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
        // Next or previous conversation in the list.
        e.preventDefault();
        const list = app.conversations.value;
        const at = list.findIndex((c) => c.id === app.selectedId.value);
        const next = list[Math.min(list.length - 1, Math.max(0, at + (e.key === "ArrowDown" ? 1 : -1)))];
        if (next) location.hash = `#/c/${next.id}`;
      }
    };
    window.addEventListener("keydown", keys);
    return () => {
      window.removeEventListener("hashchange", open);
      window.removeEventListener("keydown", keys);
    };
  }, []);

  useEffect(() => {
    const id = app.selectedId.value;
    if (id && idFromHash() !== id) history.replaceState(null, "", `#/c/${id}`);
  }, [app.selectedId.value]);

  const conversation = app.selected.value;
  const elsewhere = app.approvals.value.filter((a) => a.conversation_id !== conversation?.id);
  const connection = app.connection.value;
  return (
    <div class={drawer.value ? "layout drawer-open" : "layout"}>
      <a class="skip" href="#composer">
        Skip to the message box
      </a>
      <header class="topbar">
        <button type="button" class="icon menu" aria-label="Conversations" aria-expanded={drawer.value} onClick={() => (drawer.value = !drawer.value)}>
          ☰
        </button>
        <span class="brand">BestChat</span>
        <span class={`conn ${connection}`} role="status" aria-label={`Connection ${connection}`}>
          {connection === "open" ? "live" : connection === "connecting" ? "connecting…" : "offline, retrying"}
        </span>
        <span class="spacer" />
        <button type="button" class="ghost" onClick={cycleTheme} aria-label={`Theme: ${theme.value}`} title="Switch theme">
          <span aria-hidden="true">{theme.value === "dark" ? "☾" : theme.value === "light" ? "☀" : "◐"}</span>
          <span class="label"> {theme.value === "dark" ? "Dark" : theme.value === "light" ? "Light" : "System"}</span>
        </button>
        <button type="button" class="ghost" onClick={() => (dialog.value = "settings")}>
          Settings
        </button>
        <span class="muted user">{session.value?.name}</span>
        <button
          type="button"
          class="ghost"
          onClick={() => {
            app.socket.stop();
            auth.signOut();
          }}
        >
          Sign out
        </button>
      </header>
      <Sidebar app={app} onNew={() => (dialog.value = "new")} onPick={() => (drawer.value = false)} />
      <main class="main" id="main">
        {elsewhere.length > 0 && (
          <aside class="approvals-elsewhere" aria-label="Waiting for your approval">
            {elsewhere.map((a) => (
              <div key={a.id}>
                <a href={`#/c/${a.conversation_id}`}>In another conversation:</a>
                <ToolApproval app={app} execution={a} />
              </div>
            ))}
          </aside>
        )}
        {conversation ? (
          <ChatView key={conversation.id} app={app} conversation={conversation} />
        ) : (
          <div class="welcome">
            <h1>Welcome</h1>
            <p class="muted">Pick a conversation, or start a new one.</p>
            <button type="button" class="primary" onClick={() => (dialog.value = "new")}>
              + New conversation
            </button>
          </div>
        )}
      </main>
      {dialog.value === "new" && <NewConversation app={app} onClose={() => (dialog.value = null)} />}
      {dialog.value === "settings" && <Settings app={app} onClose={() => (dialog.value = null)} />}
      <div class="toasts" role="status" aria-live="assertive">
        {app.toasts.value.map((t) => (
          <div key={t.id} class={`toast ${t.kind}`}>
            {t.text}
          </div>
        ))}
      </div>
    </div>
  );
}
