// Files in the composer (being attached: progress, processing, why one failed) and in a sent
// message (chips, image thumbnails; a click opens the file).

import { useEffect, useState } from "preact/hooks";
import type { Attachment } from "../api/types";
import type { ChatApp } from "../stores/app";
import { bytes, type Upload, type Uploads } from "../stores/uploads";

const STATUS: Record<Upload["status"], string> = {
  hashing: "Preparing…",
  uploading: "Uploading",
  processing: "Processing…",
  ready: "Ready",
  failed: "Failed",
};

/** What may be attached, said before anything is. */
export function limitsText(app: ChatApp): string {
  const limits = app.fileLimits.value;
  if (!limits) return "Attach documents, spreadsheets, text, code or images.";
  return `Up to ${limits.per_message} files, ${bytes(limits.max_bytes)} each: documents (PDF, Word, web pages), spreadsheets, text, code and images. ${bytes(limits.stored_bytes)} of ${bytes(limits.storage_bytes)} stored.`;
}

export function ComposerFiles({ uploads }: { uploads: Uploads }) {
  const items = uploads.items.value;
  if (items.length === 0) return null;
  return (
    <ul class="attachments composing" aria-label="Attached files">
      {items.map((u) => (
        <li key={u.key} class={`chip ${u.status}`}>
          {u.preview && <img class="thumb" src={u.preview} alt="" />}
          <span class="chip-name" title={u.name}>
            {u.name}
          </span>
          <span class="chip-status">
            {u.status === "uploading" ? `${STATUS.uploading} ${Math.round(u.progress * 100)}%` : STATUS[u.status]}
            {u.status === "ready" && u.file?.pages ? ` · ${u.file.pages} p.` : ""}
          </span>
          {u.status === "uploading" && (
            <progress max={1} value={u.progress} aria-label={`Uploading ${u.name}`} />
          )}
          {u.error && <span class="chip-error error-text">{u.error}</span>}
          <button type="button" class="chip-remove" aria-label={`Remove ${u.name}`} onClick={() => uploads.remove(u.key)}>
            ×
          </button>
        </li>
      ))}
    </ul>
  );
}

/** Opens a file: shown in a new tab where the browser can (images, PDF), else saved. */
async function open(app: ChatApp, a: Attachment): Promise<void> {
  try {
    const blob = await app.fileBlob(a.file_id);
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    if (a.kind === "image" || a.content_type === "application/pdf") link.target = "_blank";
    else link.download = a.name;
    link.rel = "noopener";
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch {
    app.toast(`${a.name} could not be opened; try again.`);
  }
}

function Thumb({ app, a }: { app: ChatApp; a: Attachment }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let url: string | null = null;
    let live = true;
    app.fileBlob(a.file_id).then(
      (blob) => {
        if (!live) return;
        url = URL.createObjectURL(blob);
        setSrc(url);
      },
      () => undefined,
    );
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [a.file_id]);
  // The button around it says the name: the picture itself is decoration.
  return src ? <img class="thumb" src={src} alt="" /> : <span class="thumb placeholder" aria-hidden="true" />;
}

export function MessageFiles({ app, items }: { app: ChatApp; items: Attachment[] }) {
  return (
    <ul class="attachments" aria-label="Files">
      {items.map((a) =>
        a.deleted ? (
          <li key={a.file_id} class="chip deleted">
            <span class="chip-name">{a.name}</span> <span class="chip-status">deleted</span>
          </li>
        ) : (
          <li key={a.file_id} class={`chip ${a.kind}`}>
            <button type="button" class="chip-open" onClick={() => void open(app, a)} title={`Open ${a.name}`}>
              {a.kind === "image" && <Thumb app={app} a={a} />}
              <span class="chip-name">{a.name}</span>
            </button>
          </li>
        ),
      )}
    </ul>
  );
}
