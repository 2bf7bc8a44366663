// Light, dark, or whatever the system says; the choice is kept per browser.

import { signal } from "@preact/signals";

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "bestchat.theme";
const ORDER: ThemeChoice[] = ["system", "light", "dark"];

export const theme = signal<ThemeChoice>("system");

export function initTheme(): void {
  const saved = localStorage.getItem(KEY);
  theme.value = ORDER.includes(saved as ThemeChoice) ? (saved as ThemeChoice) : "system";
  apply();
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", apply);
}

/** The theme in effect: the choice, or the system's when the choice is "system". */
export function effectiveTheme(): "light" | "dark" {
  if (theme.value !== "system") return theme.value;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function apply(): void {
  document.documentElement.dataset.theme = effectiveTheme();
}

export function cycleTheme(): void {
  theme.value = ORDER[(ORDER.indexOf(theme.value) + 1) % ORDER.length]!;
  localStorage.setItem(KEY, theme.value);
  apply();
}
