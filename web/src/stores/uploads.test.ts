import { describe, expect, it } from "vitest";
import type { FileLimits, FileRecord } from "../api/types";
import { ApiError } from "../api/client";
import { Uploads, bytes, type UploadPorts } from "./uploads";

const LIMITS: FileLimits = { max_bytes: 1000, per_message: 2, storage_bytes: 10_000, stored_bytes: 0, formats: ["text"] };

function record(id: string, status: FileRecord["status"], extra: Partial<FileRecord> = {}): FileRecord {
  return {
    id, name: "a.txt", content_type: "text/plain", size_bytes: 3, sha256: "0".repeat(64), kind: "text",
    status, created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", ...extra,
  } as FileRecord;
}

function ports(over: Partial<UploadPorts["api"]> = {}, put = async () => 200): UploadPorts & { puts: number } {
  const p = {
    puts: 0,
    api: {
      announceFile: async () => ({ file: record("f1", "uploading"), upload: { url: "http://s3/x", method: "PUT", headers: {}, expires_at: "" } }),
      completeFile: async () => record("f1", "processing"),
      getFile: async () => record("f1", "ready"),
      ...over,
    } as UploadPorts["api"],
    put: async (...args: Parameters<UploadPorts["put"]>) => {
      p.puts++;
      args[2](0.5);
      return put();
    },
    sha256: async () => "0".repeat(64),
  };
  return p;
}

const file = (name: string, size: number) => new File(["x".repeat(size)], name, { type: "text/plain" });
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("Uploads", () => {
  it("says why a file cannot go before sending anything", () => {
    const p = ports();
    const u = new Uploads(p, () => LIMITS);
    u.add([file("big.txt", 1001), file("empty.txt", 0)]);
    expect(u.items.value.map((i) => i.status)).toEqual(["failed", "failed"]);
    expect(u.items.value[0]?.error).toContain("1000 B");
    expect(p.puts).toBe(0);
    u.add([file("a.txt", 3), file("b.txt", 3), file("c.txt", 3)]);
    expect(u.items.value.filter((i) => i.status === "failed").length).toBe(3);
    expect(u.items.value.at(-1)?.error).toContain("at most 2 files");
  });

  it("uploads, completes and follows processing to ready, then is sent as an attachment", async () => {
    const p = ports();
    const u = new Uploads(p, () => LIMITS);
    u.add([file("a.txt", 3)]);
    await settle();
    await settle();
    await settle();
    expect(p.puts).toBe(1);
    expect(u.items.value[0]?.status).toBe("processing");
    expect(u.settled.value).toBe(false);
    u.updated(record("f1", "ready", { pages: 2 }));
    expect(u.items.value[0]?.status).toBe("ready");
    expect(u.settled.value).toBe(true);
    expect(u.attachments()).toEqual([{ file_id: "f1", name: "a.txt", content_type: "text/plain", kind: "text" }]);
  });

  it("the same bytes again need no upload; a refusal is said", async () => {
    const held = ports({ announceFile: async () => ({ file: record("f2", "ready"), upload: null }) });
    const u = new Uploads(held, () => LIMITS);
    u.add([file("a.txt", 3)]);
    await settle();
    await settle();
    expect(held.puts).toBe(0);
    expect(u.items.value[0]?.status).toBe("ready");
    const refused = ports({
      announceFile: async () => {
        throw new ApiError(403, "storage_quota_exceeded", "this file would pass the storage this user may use");
      },
    });
    const v = new Uploads(refused, () => LIMITS);
    v.add([file("a.txt", 3)]);
    await settle();
    await settle();
    expect(v.items.value[0]?.status).toBe("failed");
    expect(v.items.value[0]?.error).toMatch(/storage/);
    v.remove(v.items.value[0]!.key);
    expect(v.items.value).toEqual([]);
  });

  it("reads sizes as people do", () => {
    expect(bytes(52_428_800)).toBe("50 MB");
    expect(bytes(1536)).toBe("2 KB");
  });
});
