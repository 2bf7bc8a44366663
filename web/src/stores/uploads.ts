// Files a user attaches before sending: each is hashed, announced, uploaded straight to the
// store by the presigned request the server answers with (with progress), completed, and
// followed until processing ends (file.updated events, and a slow poll in case one is missed).
// Limits are checked before anything is sent, and said.

import { computed, signal } from "@preact/signals";
import { ApiError, type Api } from "../api/client";
import type { Attachment, FileLimits, FileRecord } from "../api/types";
import { sentence } from "../ui/format";

export type UploadStatus = "hashing" | "uploading" | "processing" | "ready" | "failed";

export interface Upload {
  key: string;
  name: string;
  size: number;
  type: string;
  status: UploadStatus;
  /** 0 to 1 while uploading. */
  progress: number;
  file?: FileRecord;
  error?: string;
  /** A local preview of an image, while it is composed. */
  preview?: string;
}

/** A presigned request, as `POST /api/files` answers it. */
export interface Presigned {
  url: string;
  method: string;
  headers: Record<string, string>;
}

export interface UploadPorts {
  api: Pick<Api, "announceFile" | "completeFile" | "getFile">;
  /** Sends `body` as the presigned request says; the HTTP status. */
  put(request: Presigned, body: Blob, progress: (done: number) => void): Promise<number>;
  sha256(body: Blob): Promise<string>;
}

/** How often a file still processing is looked at, in case its event was missed. */
export const PROCESSING_POLL_MS = 2_000;

let next = 0;

export class Uploads {
  readonly items = signal<Upload[]>([]);
  /** Whether every attached file can be sent. */
  readonly settled = computed(() => this.items.value.every((u) => u.status === "ready" || u.status === "failed"));
  readonly readyFiles = computed(() => this.items.value.filter((u) => u.status === "ready" && u.file));

  constructor(
    private readonly ports: UploadPorts,
    private readonly limits: () => FileLimits | null,
  ) {}

  /** Starts each file, or says at once why it cannot go. */
  add(files: File[]): void {
    const limits = this.limits();
    for (const f of files) {
      const item: Upload = { key: `u${++next}`, name: f.name || "pasted", size: f.size, type: f.type, status: "hashing", progress: 0 };
      if (f.type.startsWith("image/") && typeof URL.createObjectURL === "function") item.preview = URL.createObjectURL(f);
      const kept = this.items.value.filter((u) => u.status !== "failed").length;
      if (limits && kept >= limits.per_message) {
        this.items.value = [...this.items.value, { ...item, status: "failed", error: `A message can carry at most ${limits.per_message} files.` }];
        continue;
      }
      if (limits && f.size > limits.max_bytes) {
        this.items.value = [...this.items.value, { ...item, status: "failed", error: `Larger than ${bytes(limits.max_bytes)}, the most a file may be.` }];
        continue;
      }
      if (f.size === 0) {
        this.items.value = [...this.items.value, { ...item, status: "failed", error: "The file is empty." }];
        continue;
      }
      this.items.value = [...this.items.value, item];
      void this.run(item.key, f);
    }
  }

  remove(key: string): void {
    const gone = this.items.value.find((u) => u.key === key);
    if (gone?.preview) URL.revokeObjectURL(gone.preview);
    this.items.value = this.items.value.filter((u) => u.key !== key);
  }

  /** What the message carries: the ready files. */
  attachments(): Attachment[] {
    return this.readyFiles.value.map((u) => ({
      file_id: u.file!.id,
      name: u.file!.name,
      content_type: u.file!.content_type,
      kind: u.file!.kind,
    }));
  }

  clear(): void {
    for (const u of this.items.value) if (u.preview) URL.revokeObjectURL(u.preview);
    this.items.value = [];
  }

  /** A file's new state, from a file.updated event. */
  updated(file: FileRecord): void {
    const item = this.items.value.find((u) => u.file?.id === file.id);
    if (item) this.settle(item.key, file);
  }

  private patch(key: string, change: Partial<Upload>): void {
    this.items.value = this.items.value.map((u) => (u.key === key ? { ...u, ...change } : u));
  }

  private alive(key: string): boolean {
    return this.items.value.some((u) => u.key === key);
  }

  private settle(key: string, file: FileRecord): void {
    const status: UploadStatus = file.status === "ready" ? "ready" : file.status === "failed" ? "failed" : "processing";
    this.patch(key, { file, status, error: file.error ? sentence(file.error.message) : undefined });
  }

  private async run(key: string, f: File): Promise<void> {
    try {
      const sha256 = await this.ports.sha256(f);
      if (!this.alive(key)) return;
      const { file, upload } = await this.ports.api.announceFile({
        name: f.name || "pasted",
        content_type: f.type || "application/octet-stream",
        size_bytes: f.size,
        sha256,
      });
      if (!this.alive(key)) return;
      this.patch(key, { file });
      if (upload) {
        this.patch(key, { status: "uploading" });
        const status = await this.ports.put(upload as Presigned, f, (done) => this.patch(key, { progress: done }));
        if (status < 200 || status >= 300) throw new ApiError(status, "upload_failed", "The upload was refused; try again.");
        if (!this.alive(key)) return;
        this.settle(key, await this.ports.api.completeFile(file.id));
      } else {
        this.settle(key, file);
      }
      while (this.alive(key) && this.items.value.find((u) => u.key === key)?.status === "processing") {
        await new Promise((r) => setTimeout(r, PROCESSING_POLL_MS));
        if (!this.alive(key)) return;
        this.settle(key, await this.ports.api.getFile(file.id));
      }
    } catch (e) {
      if (!this.alive(key)) return;
      const message = e instanceof ApiError ? e.message : "The file could not be uploaded.";
      this.patch(key, { status: "failed", error: sentence(message) });
    }
  }
}

/** A size as people read it. */
export function bytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${+(n / (1024 * 1024 * 1024)).toFixed(1)} GB`;
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KB`;
  return `${n} B`;
}

/** The browser's presigned PUT, with upload progress (fetch has none). */
export function xhrPut(request: Presigned, body: Blob, progress: (done: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method || "PUT", request.url);
    for (const [name, value] of Object.entries(request.headers ?? {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) progress(e.loaded / e.total);
    };
    xhr.onload = () => resolve(xhr.status);
    xhr.onerror = () => reject(new ApiError(0, "network_error", "The upload could not reach the store."));
    xhr.send(body);
  });
}

/** Hex SHA-256 of the file (the store checks the bytes against it). */
export async function sha256Hex(body: Blob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await body.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
