// Time from `POST /api/files/{id}/complete` to the file being `ready` (BENCHMARKS.md, "Files"):
// CSV files of each size, announced and uploaded by their presigned PUT first, ten of each,
// through a bestchat-local on the embedded defaults (processing in process).
//
// usage: node bench/files-ready.mjs <path to bestchat-local> [sizes in MB, default 1,10,49]
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [bin, sizes = "1,10,49"] = process.argv.slice(2);
const RUNS = 10;
const dir = mkdtempSync(join(tmpdir(), "files-ready-"));
const child = spawn(bin, [], {
  env: {
    ...process.env,
    DATABASE_URL: "",
    REDIS_URL: "",
    BESTCHAT_ADDR: "127.0.0.1:0",
    BESTCHAT_DATA_DIR: dir,
    BESTCHAT_DEV_AUTH: "1",
    BESTCHAT_RATE_READ_PER_MINUTE: "0",
    BESTCHAT_RATE_WRITE_PER_MINUTE: "0",
    RUST_LOG: "warn",
  },
  stdio: ["ignore", "pipe", "inherit"],
});
const base = await new Promise((resolve) => {
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
});
const { token } = await (await fetch(`${base}/dev/token`, { method: "POST", body: JSON.stringify({ user: "bench" }) })).json();
const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };

function csv(mb, run) {
  const rows = [];
  let size = 0;
  for (let n = 0; size < mb * 1024 * 1024; n++) {
    const row = `${n},row ${run} ${n},${(n * 7) % 1000}\n`;
    rows.push(row);
    size += row.length;
  }
  return Buffer.from(rows.join(""));
}

console.log("| size | complete → ready p50 | max |\n|---|---|---|");
for (const mb of sizes.split(",").map(Number)) {
  const times = [];
  for (let run = 0; run < RUNS; run++) {
    const body = csv(mb, run);
    const sha256 = createHash("sha256").update(body).digest("hex");
    const announced = await (
      await fetch(`${base}/api/files`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: `t${mb}-${run}.csv`, content_type: "text/csv", size_bytes: body.length, sha256 }),
      })
    ).json();
    if (!announced.upload) throw new Error(JSON.stringify(announced));
    await fetch(announced.upload.url, { method: "PUT", headers: announced.upload.headers, body });
    const started = performance.now();
    await fetch(`${base}/api/files/${announced.file.id}/complete`, { method: "POST", headers, body: "{}" });
    for (;;) {
      const file = await (await fetch(`${base}/api/files/${announced.file.id}`, { headers })).json();
      if (file.status === "ready" || file.status === "failed") break;
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(`| ${mb} MB | ${times[RUNS / 2 - 1].toFixed(0)} ms | ${times[RUNS - 1].toFixed(0)} ms |`);
}
child.kill();
rmSync(dir, { recursive: true, force: true });
