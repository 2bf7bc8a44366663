import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { session, type Auth } from "../auth/session";
import type { ChatApp } from "../stores/app";
import { cycleTheme, theme } from "../stores/theme";
import { ChatView, Composer, focusComposer } from "./ChatView";
import { NewConversation } from "./NewConversation";
import { Settings, type SettingsTarget } from "./Settings";
import { Sidebar } from "./Sidebar";
import { ToolApproval } from "./ToolApproval";

/** The conversation in the address (`#/c/<id>`), so a reload opens the same one. */
function idFromHash(): string | null {
  return /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash)?.[1] ?? null;
}

export function App({ app, auth }: { app: ChatApp; auth: Auth }) {
  const dialog = useSignal<"new" | "settings" | null>(null);
  const settingsTarget = useSignal<SettingsTarget | undefined>(undefined);
  const drawer = useSignal(false);

  useEffect(() => {
    const open = () => void app.select(idFromHash());
    window.addEventListener("hashchange", open);
    open();
    const keys = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key.toLowerCase() === "k") {
        e.preventDefault();
        drawer.value = true;
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
      } else if (e.key === "Escape" && drawer.value) {
        drawer.value = false;
      }
    };
    const online = () => app.setOnline(true);
    const offline = () => app.setOnline(false);
    window.addEventListener("keydown", keys);
    window.addEventListener("online", online);
    window.addEventListener("offline", offline);
    // Signed in: the message box (of the open conversation, or the one that starts a new one).
    focusComposer();
    return () => {
      window.removeEventListener("hashchange", open);
      window.removeEventListener("keydown", keys);
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
    };
  }, []);

  useEffect(() => {
    const id = app.selectedId.value;
    if (id && idFromHash() !== id) history.replaceState(null, "", `#/c/${id}`);
    // A conversation chosen on a phone: the drawer makes way for it.
    drawer.value = false;
  }, [app.selectedId.value]);

  const openSettings = (target?: SettingsTarget) => {
    settingsTarget.value = target;
    dialog.value = "settings";
  };
  const conversation = app.selected.value;
  const elsewhere = app.approvals.value.filter((a) => a.conversation_id !== conversation?.id);
  const connection = app.online.value && app.reachable.value ? app.connection.value : "offline";
  const user = session.value?.name;
  return (
    <div class={drawer.value ? "layout drawer-open" : "layout"}>
      <a
        class="skip"
        href="#composer"
        onClick={(e) => {
          // The address holds the open conversation: following the fragment would close it.
          e.preventDefault();
          focusComposer();
        }}
      >
        Skip to the message box
      </a>
      <header class="topbar">
        <button type="button" class="icon menu" aria-label="Conversations" aria-expanded={drawer.value} aria-controls="sidebar" onClick={() => (drawer.value = !drawer.value)}>
          ☰
        </button>
        <span class="brand">BestChat</span>
        <span class={`conn ${connection}`} role="status" aria-label={`Connection ${connection}`} title={connectionHelp(connection)}>
          {connection === "open" ? "live" : connection === "connecting" ? "connecting…" : connection === "offline" ? "offline" : "reconnecting…"}
        </span>
        <span class="spacer" />
        <button type="button" class="ghost" onClick={cycleTheme} aria-label={`Theme: ${theme.value}`} title="Switch theme">
          <span aria-hidden="true">{theme.value === "dark" ? "☾" : theme.value === "light" ? "☀" : "◐"}</span>
          <span class="label"> {theme.value === "dark" ? "Dark" : theme.value === "light" ? "Light" : "System"}</span>
        </button>
        <button type="button" class="ghost" onClick={() => openSettings()}>
          Settings
        </button>
        {user && <span class="muted user-name">{user}</span>}
        <button
          type="button"
          class="ghost"
          onClick={() => auth.signOut()}
        >
          Sign out
        </button>
      </header>
      {drawer.value && <div class="backdrop" aria-hidden="true" onClick={() => (drawer.value = false)} />}
      <Sidebar app={app} onNew={() => (dialog.value = "new")} onPick={() => (drawer.value = false)} />
      <main class="main" id="main" tabIndex={-1}>
        {elsewhere.length > 0 && (
          <aside class="approvals-elsewhere" aria-label="Waiting for your approval elsewhere">
            {elsewhere.map((a) => (
              <div key={a.id}>
                <p class="elsewhere-head">
                  In <a href={`#/c/${a.conversation_id}`}>{app.titleOf(a.conversation_id) ?? "another conversation"}</a>:
                </p>
                <ToolApproval app={app} execution={a} />
              </div>
            ))}
          </aside>
        )}
        {conversation ? (
          <ChatView key={conversation.id} app={app} conversation={conversation} openSettings={openSettings} />
        ) : (
          <Welcome app={app} onNew={() => (dialog.value = "new")} openSettings={openSettings} />
        )}
      </main>
      {dialog.value === "new" && (
        <NewConversation
          app={app}
          onClose={(created) => {
            dialog.value = null;
            // The dialog gives focus back to what opened it; a new conversation wants the
            // message box instead, once the dialog is gone.
            if (created) requestAnimationFrame(focusComposer);
          }}
          openSettings={openSettings}
        />
      )}
      {dialog.value === "settings" && <Settings app={app} target={settingsTarget.value} onClose={() => (dialog.value = null)} />}
      <p class="sr-only" role="alert">
        {app.announcement.value}
      </p>
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

function connectionHelp(state: string): string {
  switch (state) {
    case "open":
      return "Connected: answers stream live";
    case "offline":
      return "This device is offline: messages wait and are sent when it is back";
    default:
      return "Connecting to the server; messages wait and are sent once it answers";
  }
}

/** No conversation open: say what happens, and let the first message start one. */
function Welcome({ app, onNew, openSettings }: { app: ChatApp; onNew: () => void; openSettings: (t?: SettingsTarget) => void }) {
  const choice = app.defaultChoice.value;
  return (
    <div class="welcome">
      <div class="welcome-text">
        <h1>Welcome</h1>
        <p class="muted">
          {!app.providersLoaded.value ? (
            "Type a message to start a conversation, or pick one on the left."
          ) : choice ? (
            <>
              Type a message to start a conversation with <strong>{choice.model}</strong> ({choice.provider}), or pick one
              on the left.
            </>
          ) : (
            <>
              No model can be used yet.{" "}
              <button type="button" class="link" onClick={() => openSettings()}>
                Add a provider's API key in Settings
              </button>
              .
            </>
          )}
        </p>
        <button type="button" class="ghost" onClick={onNew}>
          + New conversation with other settings
        </button>
      </div>
      <Composer app={app} conversationId={null} />
    </div>
  );
}
