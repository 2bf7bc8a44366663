// Markdown from a model, rendered safely: marked parses, DOMPurify removes anything that could
// run or load (raw HTML is escaped before that, so a model's HTML shows as text), highlight.js
// colours code. A streaming answer is split into blocks and finished blocks are cached, so each
// frame re-renders only the block still growing.

import DOMPurify from "dompurify";
import { Marked, type Tokens } from "marked";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const languages = { bash, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);
hljs.registerAliases(["sh", "shell", "zsh"], { languageName: "bash" });
hljs.registerAliases(["js", "jsx"], { languageName: "javascript" });
hljs.registerAliases(["ts", "tsx"], { languageName: "typescript" });
hljs.registerAliases(["html", "svg"], { languageName: "xml" });
hljs.registerAliases(["py"], { languageName: "python" });
hljs.registerAliases(["rs"], { languageName: "rust" });
hljs.registerAliases(["yml"], { languageName: "yaml" });

/** Code blocks larger than this are shown without colour: highlighting them would stall. */
export const HIGHLIGHT_MAX_CHARS = 20_000;
/** Rendered blocks kept per process; old entries go first. */
export const BLOCK_CACHE_MAX = 4_000;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // A model's HTML is text, never markup.
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code) {
      const language = (lang ?? "").trim().split(/\s/)[0]?.toLowerCase() ?? "";
      const known = language && hljs.getLanguage(language);
      const body =
        known && text.length <= HIGHLIGHT_MAX_CHARS
          ? hljs.highlight(text, { language, ignoreIllegals: true }).value
          : escapeHtml(text);
      const label = escapeHtml(language || "text");
      return `<div class="code"><div class="code-head"><span>${label}</span><button type="button" class="copy" data-copy>Copy</button></div><pre tabindex="0" aria-label="${label} code"><code class="hljs">${body}</code></pre></div>`;
    },
    link({ href, title, tokens }: Tokens.Link) {
      const text = this.parser.parseInline(tokens);
      const safe = /^(https?:|mailto:)/i.test(href) ? href : "#";
      const t = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(safe)}"${t} target="_blank" rel="noopener noreferrer nofollow">${text}</a>`;
    },
    image({ href, text }: Tokens.Image) {
      // Images from a model would load from anywhere: show the link instead.
      return `<a href="${escapeHtml(/^https?:/i.test(href) ? href : "#")}" target="_blank" rel="noopener noreferrer nofollow">${escapeHtml(text || href)}</a>`;
    },
  },
});

const cache = new Map<string, string>();

function renderBlock(source: string): string {
  const hit = cache.get(source);
  if (hit !== undefined) return hit;
  const raw = marked.parse(source, { async: false });
  const html = DOMPurify.sanitize(raw, {
    // A code block scrolls sideways, so the keyboard must reach it (tabindex).
    ADD_ATTR: ["target", "data-copy", "tabindex"],
    FORBID_TAGS: ["style", "form", "input", "img", "iframe", "object", "embed"],
  });
  if (cache.size >= BLOCK_CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(source, html);
  return html;
}

/**
 * Splits markdown at blank lines outside fenced code, keeping list and quote runs together
 * loosely enough that each piece parses alone as it would in the whole.
 */
export function blocks(source: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let fence: string | null = null;
  for (const line of source.split("\n")) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker) {
      if (fence === null) fence = marker[0] ?? null;
      else if (marker[0] === fence) fence = null;
    }
    current.push(line);
    if (fence === null && line.trim() === "") {
      const next = current.join("\n");
      if (next.trim()) out.push(next);
      current = [];
    }
  }
  const rest = current.join("\n");
  if (rest.trim()) out.push(rest);
  return out;
}

/** The sanitized HTML of `source`. */
export function renderMarkdown(source: string): string {
  return blocks(source).map(renderBlock).join("");
}
