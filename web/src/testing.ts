// Test doubles shared by the unit tests.

import type { KeyValue } from "./auth/session";

/** localStorage without a browser. */
export class MemoryStorage implements KeyValue {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
  removeItem(k: string) {
    this.data.delete(k);
  }
}
