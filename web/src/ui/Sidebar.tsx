import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { TITLE_MAX_CHARS } from "../api/limits";
import type { Conversation } from "../api/types";
import type { ChatApp } from "../stores/app";
import { relativeTime } from "./format";

/** Typing pauses this long before the title search asks the server. */
export const SEARCH_DEBOUNCE_MS = 250;

export function Sidebar({ app, onNew, onPick }: { app: ChatApp; onNew: () => void; onPick: () => void }) {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const onSearch = (value: string) => {
    app.query.value = value;
    clearTimeout(timer.current);
    timer.current = setTimeout(() => void app.loadConversations(), SEARCH_DEBOUNCE_MS);
  };
  const list = app.conversations.value;
  return (
    <nav class="sidebar" id="sidebar" aria-label="Conversations">
      <div class="sidebar-top">
        <button type="button" class="primary wide" onClick={onNew} title="New conversation (Ctrl+Shift+O)">
          + New conversation
        </button>
        <label class="sr-only" for="search">
          Search titles
        </label>
        <input
          id="search"
          type="search"
          placeholder="Search titles (Ctrl+K)"
          value={app.query.value}
          onInput={(e) => onSearch(e.currentTarget.value)}
        />
      </div>
      <ul class="conversation-list" role="list">
        {list.map((c) => (
          <ConversationRow key={c.id} app={app} conversation={c} onPick={onPick} />
        ))}
      </ul>
      {list.length === 0 && <p class="muted pad">{app.query.value ? "No titles match." : "No conversations yet."}</p>}
      {app.conversationsCursor.value && (
        <button type="button" class="ghost wide" onClick={() => void app.moreConversations()}>
          Show older
        </button>
      )}
    </nav>
  );
}

/** A line icon (no icon font: the glyphs must not depend on what fonts a device has). */
function Icon({ path }: { path: string }) {
  return (
    <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
      <path d={path} />
    </svg>
  );
}

function ConversationRow({ app, conversation, onPick }: { app: ChatApp; conversation: Conversation; onPick: () => void }) {
  const editing = useSignal(false);
  const input = useRef<HTMLInputElement>(null);
  const active = app.selectedId.value === conversation.id;
  useEffect(() => {
    if (editing.value) input.current?.select();
  }, [editing.value]);
  const commit = (title: string) => {
    editing.value = false;
    const t = title.trim();
    if (t && t !== conversation.title) void app.rename(conversation.id, t);
  };
  return (
    <li class={active ? "row active" : "row"}>
      {editing.value ? (
        <input
          ref={input}
          class="rename"
          aria-label="New title"
          defaultValue={conversation.title}
          maxLength={TITLE_MAX_CHARS}
          onKeyDown={(e) => {
            if (e.key === "Enter") commit(e.currentTarget.value);
            if (e.key === "Escape") editing.value = false;
          }}
          onBlur={(e) => commit(e.currentTarget.value)}
        />
      ) : (
        <a
          href={`#/c/${conversation.id}`}
          class="row-link"
          aria-current={active ? "page" : undefined}
          onClick={onPick}
        >
          <span class="row-title">{conversation.title}</span>
          <span class="row-meta">
            {conversation.model} · {relativeTime(conversation.updated_at)}
          </span>
        </a>
      )}
      <div class="row-actions">
        <button type="button" class="icon" aria-label={`Rename ${conversation.title}`} onClick={() => (editing.value = true)}>
          <Icon path="M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4" />
        </button>
        <button
          type="button"
          class="icon"
          aria-label={`Delete ${conversation.title}`}
          onClick={() => {
            if (confirm(`Delete “${conversation.title}” and all its messages?`)) void app.remove(conversation.id);
          }}
        >
          <Icon path="M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13M10 11v6M14 11v6" />
        </button>
      </div>
    </li>
  );
}
