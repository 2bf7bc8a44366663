import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { ApiError } from "../api/client";
import type { AutoApproval, ModelInfo, ProviderView, PutProviderConfig, Risk, Rule } from "../api/types";
import type { ChatApp } from "../stores/app";
import { Dialog } from "./Dialog";
import { sentence } from "./format";
import { Admin } from "./Admin";
import { Usage } from "./Usage";

type Tab = "providers" | "approval" | "tools" | "mcp" | "usage" | "admin";
const TABS: [Tab, string][] = [
  ["providers", "Providers"],
  ["approval", "Auto-approval"],
  ["tools", "Tools"],
  ["mcp", "MCP servers"],
  ["usage", "Usage"],
  ["admin", "Admin"],
];
const RISKS: Risk[] = ["read", "write", "network", "exec", "destructive"];
const RULES: Rule[] = ["auto", "ask", "deny"];
function message(e: unknown): string {
  return sentence(e instanceof ApiError || e instanceof Error ? e.message : String(e));
}

/** `scheme://host[:port]` of a URL, as the server binds keys to it; "" when it is not one. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "";
  }
}

/** A provider's state in a word or two. */
const UNAVAILABLE: Record<NonNullable<ProviderView["unavailable"]>["code"], string> = {
  turned_off_by_operator: "turned off by the operator",
  disabled: "turned off",
  needs_key: "needs a key",
  needs_setup: "not set up",
};

/** Runs a change, then `after` (a reload); a failure is shown in `status` instead. */
async function attempt(status: { value: string }, change: () => Promise<unknown>): Promise<void> {
  try {
    await change();
  } catch (e) {
    status.value = message(e);
  }
}

/** The rules a risk may have: destructive never runs without asking. */
function RuleOptions({ risk }: { risk: Risk }) {
  return (
    <>
      {RULES.filter((rule) => !(risk === "destructive" && rule === "auto")).map((rule) => (
        <option key={rule} value={rule}>
          {rule}
        </option>
      ))}
    </>
  );
}

/** Where the settings open: a provider's card (from a refused key, or an unusable provider). */
export interface SettingsTarget {
  provider: string;
}

export function Settings({ app, target, onClose }: { app: ChatApp; target?: SettingsTarget; onClose: () => void }) {
  const tab = useSignal<Tab>("providers");
  // The admin tab shows once the server says the caller is an admin (a 403 hides it).
  useEffect(() => {
    if (app.settings.admin.value === null) app.settings.loadUsers().catch(() => undefined);
  }, []);
  const tabs = TABS.filter(([id]) => id !== "admin" || app.settings.admin.value === true);
  return (
    <Dialog title="Settings" onClose={onClose} wide>
      <div class="tabs" role="tablist" aria-label="Settings">
        {tabs.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`tab-${id}`}
            aria-selected={tab.value === id}
            aria-controls={`panel-${id}`}
            tabIndex={tab.value === id ? 0 : -1}
            onClick={() => (tab.value = id)}
            onKeyDown={(e) => {
              const i = tabs.findIndex(([t]) => t === tab.value);
              const next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : null;
              if (next === null) return;
              const t = tabs[(next + tabs.length) % tabs.length]![0];
              tab.value = t;
              document.getElementById(`tab-${t}`)?.focus();
            }}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab.value}`} aria-labelledby={`tab-${tab.value}`} class="panel">
        {tab.value === "providers" && <Providers app={app} open={target?.provider} />}
        {tab.value === "approval" && <Approval app={app} />}
        {tab.value === "tools" && <Tools app={app} />}
        {tab.value === "mcp" && <McpServers app={app} />}
        {tab.value === "usage" && <Usage app={app} />}
        {tab.value === "admin" && <Admin app={app} />}
      </div>
    </Dialog>
  );
}

function Providers({ app, open }: { app: ChatApp; open?: string }) {
  return (
    <div class="stack">
      {app.providers.value.map((p) => (
        <ProviderCard key={p.id} app={app} provider={p} open={p.id === open} />
      ))}
      <CustomProvider app={app} />
    </div>
  );
}

function ProviderCard({ app, provider, open }: { app: ChatApp; provider: ProviderView; open: boolean }) {
  const config = app.configs.value.find((c) => c.provider === provider.id);
  const card = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    if (!open || !card.current) return;
    card.current.open = true;
    card.current.scrollIntoView({ block: "nearest" });
    card.current.querySelector<HTMLElement>("input, select, button")?.focus();
  }, [open]);
  const key = useSignal("");
  const baseUrl = useSignal(config?.base_url ?? provider.base_url ?? "");
  const summary = useSignal(config?.summary_model ?? "");
  const error = useSignal("");
  const saved = useSignal(false);
  const save = async (body: PutProviderConfig) => {
    error.value = "";
    saved.value = false;
    try {
      await app.settings.saveProviderConfig(provider.id, body);
      key.value = "";
      saved.value = true;
    } catch (e) {
      error.value = message(e);
    }
  };
  const state = provider.usable ? "ready" : UNAVAILABLE[provider.unavailable?.code ?? "needs_key"];
  return (
    <details class="card provider" data-provider={provider.id} ref={card}>
      <summary>
        <strong>{provider.name}</strong> <span class={`pill ${provider.usable ? "ok" : ""}`}>{state}</span>
        {config?.key_last4 && <span class="muted"> key …{config.key_last4}</span>}
        {provider.custom && <span class="pill">custom</span>}
      </summary>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          const body: Record<string, unknown> = {};
          if (key.value) body.api_key = key.value;
          if (baseUrl.value !== (config?.base_url ?? provider.base_url ?? "")) body.base_url = baseUrl.value || null;
          if (summary.value !== (config?.summary_model ?? "")) body.summary_model = summary.value || null;
          void save(body);
        }}
      >
        {provider.requires_key && (
          <label>
            API key (write-only: it is never shown again)
            <input
              type="password"
              autocomplete="off"
              name={`key-${provider.id}`}
              placeholder={config?.has_key ? `stored, ends in …${config.key_last4 ?? "?"}` : "paste the key"}
              value={key.value}
              onInput={(e) => (key.value = e.currentTarget.value)}
            />
          </label>
        )}
        <label>
          Base URL
          <input type="url" value={baseUrl.value} onInput={(e) => (baseUrl.value = e.currentTarget.value)} />
        </label>
        {config?.has_key && !key.value && originOf(baseUrl.value) !== originOf(config.base_url ?? provider.base_url ?? "") && (
          <p class="muted" role="status">
            A new address needs the API key again: a stored key is only ever sent where it was given for.
          </p>
        )}
        <label>
          Summary model (writes summaries of long conversations)
          <select value={summary.value} onChange={(e) => (summary.value = e.currentTarget.value)}>
            <option value="">default</option>
            {provider.models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
        </label>
        {provider.unavailable && <p class="muted">{sentence(provider.unavailable.message)}</p>}
        <p class="muted">{provider.models.length} models · protocol {provider.protocol}</p>
        {error.value && <p class="error-text" role="alert">{error.value}</p>}
        {saved.value && <p class="ok-text" role="status">Saved.</p>}
        <div class="form-actions">
          {config?.has_key && (
            <button type="button" class="ghost" onClick={() => void save({ api_key: null })}>
              Remove key
            </button>
          )}
          {provider.unavailable?.code !== "turned_off_by_operator" && (
            <button
              type="button"
              class="ghost"
              onClick={() => void save({ enabled: provider.unavailable?.code === "needs_setup" || !provider.enabled })}
            >
              {provider.enabled && provider.unavailable?.code !== "needs_setup" ? "Turn off" : "Turn on"}
            </button>
          )}
          {config && (
            <button
              type="button"
              class="ghost"
              onClick={() => void attempt(error, () => app.settings.resetProviderConfig(provider.id))}
            >
              Reset
            </button>
          )}
          <button type="submit" class="primary">
            Save
          </button>
        </div>
      </form>
    </details>
  );
}

function CustomProvider({ app }: { app: ChatApp }) {
  const id = useSignal("");
  const protocol = useSignal<"openai" | "anthropic" | "gemini">("openai");
  const baseUrl = useSignal("");
  const key = useSignal("");
  const model = useSignal("");
  const window = useSignal("32768");
  const output = useSignal("4096");
  const error = useSignal("");
  const submit = async (e: Event) => {
    e.preventDefault();
    error.value = "";
    const models: ModelInfo[] = model.value
      ? [
          {
            id: model.value,
            context_window: Number(window.value),
            max_output_tokens: Number(output.value),
            supports_tools: false,
            supports_vision: false,
            supports_reasoning: false,
          },
        ]
      : [];
    try {
      await app.settings.saveProviderConfig(id.value, {
        protocol: protocol.value,
        base_url: baseUrl.value,
        api_key: key.value || undefined,
        models,
        default_model: model.value || undefined,
      });
      id.value = baseUrl.value = key.value = model.value = "";
    } catch (e) {
      error.value = message(e);
    }
  };
  return (
    <details class="card">
      <summary>
        <strong>+ Custom provider</strong> <span class="muted">(self-hosted or any compatible API)</span>
      </summary>
      <form class="form" onSubmit={submit}>
        <label>
          Id
          <input required pattern="[a-z0-9][a-z0-9._\-]*" value={id.value} onInput={(e) => (id.value = e.currentTarget.value)} />
        </label>
        <label>
          Protocol
          <select value={protocol.value} onChange={(e) => (protocol.value = e.currentTarget.value as typeof protocol.value)}>
            <option value="openai">OpenAI-compatible</option>
            <option value="anthropic">Anthropic</option>
            <option value="gemini">Gemini</option>
          </select>
        </label>
        <label>
          Base URL
          <input required type="url" value={baseUrl.value} onInput={(e) => (baseUrl.value = e.currentTarget.value)} />
        </label>
        <label>
          API key (optional, write-only)
          <input type="password" autocomplete="off" value={key.value} onInput={(e) => (key.value = e.currentTarget.value)} />
        </label>
        <div class="inline">
          <label>
            Model id
            <input value={model.value} onInput={(e) => (model.value = e.currentTarget.value)} />
          </label>
          <label>
            Context window
            <input type="number" min={1} value={window.value} onInput={(e) => (window.value = e.currentTarget.value)} />
          </label>
          <label>
            Max output
            <input type="number" min={1} value={output.value} onInput={(e) => (output.value = e.currentTarget.value)} />
          </label>
        </div>
        {error.value && <p class="error-text" role="alert">{error.value}</p>}
        <div class="form-actions">
          <button type="submit" class="primary">
            Add provider
          </button>
        </div>
      </form>
    </details>
  );
}

function Approval({ app }: { app: ChatApp }) {
  const { rules, tools } = app.settings;
  const status = useSignal("");
  useEffect(() => {
    app.settings.loadApproval().catch((e) => (status.value = message(e)));
  }, []);
  const r = rules.value;
  if (!r) return <p class="muted">{status.value || "Loading…"}</p>;
  const save = async (next: AutoApproval) => {
    try {
      await app.settings.saveApproval(next);
      status.value = "Saved.";
    } catch (e) {
      status.value = message(e);
    }
  };
  return (
    <div class="stack">
      <p class="muted">What runs without asking. Destructive tools always ask; MCP hints never decide.</p>
      <table class="rules">
        <caption class="sr-only">Rules per risk class</caption>
        <thead>
          <tr>
            <th scope="col">Risk</th>
            <th scope="col">Rule</th>
          </tr>
        </thead>
        <tbody>
          {RISKS.map((risk) => (
            <tr key={risk}>
              <th scope="row">{risk}</th>
              <td>
                <select
                  aria-label={`Rule for ${risk} tools`}
                  value={r.risk[risk]}
                  onChange={(e) => void save({ ...r, risk: { ...r.risk, [risk]: e.currentTarget.value as Rule } })}
                >
                  <RuleOptions risk={risk} />
                </select>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <label>
        Most calls run without asking in one turn
        <input
          type="number"
          min={0}
          value={r.max_auto_per_turn}
          onChange={(e) => void save({ ...r, max_auto_per_turn: Number(e.currentTarget.value) })}
        />
      </label>
      <table class="rules">
        <caption>Per tool (overrides its risk's rule)</caption>
        <tbody>
          {tools.value.map((t) => (
            <tr key={t.name}>
              <th scope="row">
                {t.name} <span class={`risk-badge ${t.risk}`}>{t.risk}</span>
              </th>
              <td>
                <select
                  aria-label={`Rule for ${t.name}`}
                  value={r.tools?.[t.name] ?? ""}
                  onChange={(e) => {
                    const next = { ...(r.tools ?? {}) };
                    const v = e.currentTarget.value;
                    if (v) next[t.name] = v as Rule;
                    else delete next[t.name];
                    void save({ ...r, tools: next });
                  }}
                >
                  <option value="">by risk</option>
                  <RuleOptions risk={t.risk} />
                </select>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {status.value && <p role="status">{status.value}</p>}
    </div>
  );
}

function Tools({ app }: { app: ChatApp }) {
  const { tools } = app.settings;
  const status = useSignal("");
  useEffect(() => {
    app.settings.loadTools().catch((e) => (status.value = message(e)));
  }, []);
  const register = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const manifestFile = (form.elements.namedItem("manifest") as HTMLInputElement).files?.[0];
    const moduleFile = (form.elements.namedItem("module") as HTMLInputElement).files?.[0];
    if (!manifestFile || !moduleFile) return;
    try {
      const manifest = JSON.parse(await manifestFile.text()) as unknown;
      const bytes = new Uint8Array(await moduleFile.arrayBuffer());
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      await app.settings.registerTool(manifest, btoa(binary));
      status.value = "Registered.";
      form.reset();
    } catch (err) {
      status.value = message(err);
    }
  };
  return (
    <div class="stack">
      <ul class="tool-list">
        {tools.value.map((t) => (
          <li key={`${t.source}:${t.name}`} class="card">
            <div>
              <strong>{t.name}</strong> <span class={`risk-badge ${t.risk}`}>{t.risk}</span> <span class="pill">{t.source}</span>
              <p class="muted">{t.description}</p>
            </div>
            {t.source === "user" && t.id && (
              <button
                type="button"
                class="ghost"
                onClick={() => void attempt(status, () => app.settings.removeTool(t.id!))}
              >
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      <form class="form card" onSubmit={register}>
        <strong>Register a WebAssembly tool</strong>
        <label>
          Manifest (JSON)
          <input name="manifest" type="file" accept="application/json,.json" required />
        </label>
        <label>
          Module (.wasm)
          <input name="module" type="file" accept=".wasm,application/wasm" required />
        </label>
        <div class="form-actions">
          <button type="submit" class="primary">
            Register
          </button>
        </div>
      </form>
      {status.value && <p role="status">{status.value}</p>}
    </div>
  );
}

function McpServers({ app }: { app: ChatApp }) {
  const { servers } = app.settings;
  const status = useSignal("");
  const id = useSignal("");
  const url = useSignal("");
  const headerName = useSignal("");
  const headerValue = useSignal("");
  useEffect(() => {
    app.settings.loadServers().catch((e) => (status.value = message(e)));
  }, []);
  const add = async (e: Event) => {
    e.preventDefault();
    try {
      await app.settings.addServer(id.value, {
        url: url.value,
        headers: headerName.value ? { [headerName.value]: headerValue.value } : undefined,
      });
      id.value = url.value = headerName.value = headerValue.value = "";
      status.value = "Added.";
    } catch (err) {
      status.value = message(err);
    }
  };
  return (
    <div class="stack">
      {servers.value.length === 0 && <p class="muted">No MCP servers yet.</p>}
      {servers.value.map((s) => (
        <div key={s.id} class="card">
          <div>
            <strong>{s.id}</strong> <span class="muted">{s.url}</span> {s.enabled ? null : <span class="pill">disabled</span>}
            <p class="muted">
              {s.tools.length} tools{s.header_names.length ? ` · headers: ${s.header_names.join(", ")} (values hidden)` : ""}
            </p>
          </div>
          <button
            type="button"
            class="ghost"
            onClick={() => void attempt(status, () => app.settings.removeServer(s.id))}
          >
            Remove
          </button>
        </div>
      ))}
      <form class="form card" onSubmit={add}>
        <strong>Add an MCP server (Streamable HTTP)</strong>
        <div class="inline">
          <label>
            Id
            <input required pattern="[a-z0-9][a-z0-9_\-]*" value={id.value} onInput={(e) => (id.value = e.currentTarget.value)} />
          </label>
          <label>
            URL
            <input required type="url" value={url.value} onInput={(e) => (url.value = e.currentTarget.value)} />
          </label>
        </div>
        <div class="inline">
          <label>
            Header name (optional)
            <input value={headerName.value} onInput={(e) => (headerName.value = e.currentTarget.value)} />
          </label>
          <label>
            Header value (write-only)
            <input type="password" autocomplete="off" value={headerValue.value} onInput={(e) => (headerValue.value = e.currentTarget.value)} />
          </label>
        </div>
        <div class="form-actions">
          <button type="submit" class="primary">
            Add server
          </button>
        </div>
      </form>
      {status.value && <p role="status">{status.value}</p>}
    </div>
  );
}
