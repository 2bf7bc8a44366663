// Numbers as people read them.

import type { MessageStatus } from "../api/types";

/** Micro-dollars as dollars: cents once it is more than a cent, else enough digits to see it. */
export function money(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return "cost unknown";
  const dollars = micros / 1_000_000;
  if (dollars === 0) return "$0";
  if (dollars >= 0.01) return `$${dollars.toFixed(2)}`;
  return `$${dollars.toPrecision(2)}`;
}

export function tokens(n: number): string {
  if (n < 1000) return `${n}`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** What a status means to the reader; complete says nothing. */
export function statusLabel(status: MessageStatus): string | null {
  switch (status) {
    case "pending":
      return "Waiting for the model…";
    case "streaming":
      return "Answering…";
    case "complete":
      return null;
    case "cancelled":
      return "Stopped";
    case "error":
      return "Failed";
    case "incomplete":
      return "Incomplete: the answer was cut off";
    case "awaiting_approval":
      return "Waiting for your approval";
  }
}

export function relativeTime(iso: string, now = Date.now()): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** A server's sentence as a person reads it: capitalized, ending with a full stop. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?…)]$/.test(first) ? first : `${first}.`;
}

/** Dollars as typed ("5", "2.50", "$3") in micro-dollars; null for anything else. */
export function dollarsToMicros(text: string): number | null {
  const t = text.trim().replace(/^\$/, "");
  if (!/^\d{1,9}(\.\d{1,6})?$/.test(t)) return null;
  return Math.round(Number(t) * 1_000_000);
}

/** When a time comes, as a person reads it ("at 00:00 on 1 Jan" in their own zone). */
export function untilText(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return `at ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} on ${at.toLocaleDateString([], { day: "numeric", month: "short" })}`;
}

/** Why a send or an answer was refused, as a person reads it: a rate limit says when to try
 * again; a spending limit says when it resets (the server's time shown in the reader's zone). */
export function refusalText(code: string, message: string, retryAfterMs?: number | null): string {
  if (code === "rate_limited") {
    const seconds = Math.max(1, Math.ceil((retryAfterMs ?? 1000) / 1000));
    return `Too many requests for now. You can go on in ${seconds} s.`;
  }
  if (code === "budget_exceeded") {
    const shown = message.replace(/resets at (\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))/, (_, iso: string) => `resets ${untilText(iso)}`);
    return `${sentence(shown)} See Settings › Usage.`;
  }
  return sentence(message);
}
