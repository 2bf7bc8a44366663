// Fails when the first load's JavaScript, gzipped, is over the budget.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** Gzipped JavaScript of the first load, at most (issue 11). */
export const BUDGET_BYTES = 200 * 1024;

const dist = process.argv[2] ?? "dist";
const assets = join(dist, "assets");
let total = 0;
for (const file of readdirSync(assets).filter((f) => f.endsWith(".js"))) {
  const bytes = readFileSync(join(assets, file));
  const gz = gzipSync(bytes, { level: 9 }).length;
  total += gz;
  console.log(`  ${file}: ${(bytes.length / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped`);
}
console.log(`  first-load JavaScript: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)`);
if (total > BUDGET_BYTES) {
  console.error("over the bundle budget");
  process.exit(1);
}
