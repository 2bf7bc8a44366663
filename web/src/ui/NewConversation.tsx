import { useSignal } from "@preact/signals";
import { useRef } from "preact/hooks";
import { FALLBACKS_MAX, SYSTEM_PROMPT_MAX_CHARS, TITLE_MAX_CHARS } from "../api/limits";
import type { ModelInfo, ModelRef, ProviderView } from "../api/types";
import type { ChatApp } from "../stores/app";
import { Dialog } from "./Dialog";
import type { SettingsTarget } from "./Settings";

/** `choice` as it can be made from `usable`: the same when it is there, else the provider's
 * first model, else the first usable model. What the form shows is always what it creates. */
export function fit(choice: ModelRef | null, usable: ProviderView[]): ModelRef | null {
  const provider = usable.find((p) => p.id === choice?.provider) ?? usable[0];
  if (!provider) return null;
  const model = provider.models.find((m) => m.id === choice?.model) ?? provider.models[0];
  return model ? { provider: provider.id, model: model.id } : null;
}

export function NewConversation({
  app,
  onClose,
  openSettings,
}: {
  app: ChatApp;
  onClose: (created: boolean) => void;
  openSettings: (target?: SettingsTarget) => void;
}) {
  const usable = app.providers.value.filter((p) => p.usable && p.models.length > 0);
  const unusable = app.providers.value.filter((p) => !p.usable);
  const title = useSignal("");
  const system = useSignal("");
  const picked = useSignal<ModelRef | null>(null);
  const fallbacks = useSignal<(ModelRef | null)[]>([]);
  const busy = useSignal(false);
  // Created: the keyboard goes to the new conversation's message box, not back to the button.
  const returnFocus = useRef(true);
  // Until the user picks, the server's default (which may arrive after the dialog opened).
  const main = fit(picked.value ?? app.defaultChoice.value, usable);
  const modelsOf = (provider: string): ModelInfo[] => usable.find((p) => p.id === provider)?.models ?? [];

  const submit = async (e: Event) => {
    e.preventDefault();
    busy.value = true;
    const created = await app.createConversation({
      title: title.value.trim() || undefined,
      system_prompt: system.value.trim() || undefined,
      provider: main?.provider,
      model: main?.model,
      settings: {
        fallbacks: fallbacks.value.map((f) => fit(f, usable)).filter((f): f is ModelRef => f !== null),
      },
    });
    busy.value = false;
    if (created) {
      returnFocus.current = false;
      onClose(true);
    }
  };

  return (
    <Dialog title="New conversation" onClose={() => onClose(false)} returnFocus={returnFocus}>
      <form class="form" onSubmit={submit}>
        <label>
          Title
          <input value={title.value} maxLength={TITLE_MAX_CHARS} placeholder="New conversation" onInput={(e) => (title.value = e.currentTarget.value)} />
        </label>
        {main ? (
          <ModelPicker label="Model" choice={main} usable={usable} modelsOf={modelsOf} onChange={(c) => (picked.value = c)} />
        ) : (
          <p class="error-text" role="alert">
            No model can be used yet: add a provider's API key in the settings.
          </p>
        )}
        {unusable.length > 0 && (
          <details class="unusable">
            <summary>Not available: {unusable.length} providers</summary>
            <ul>
              {unusable.map((p) => (
                <li key={p.id}>
                  <button
                    type="button"
                    class="link"
                    onClick={() => {
                      onClose(false);
                      openSettings({ provider: p.id });
                    }}
                  >
                    {p.name}
                  </button>
                  : <span class="muted">{p.unavailable?.message ?? "not usable"}</span>
                </li>
              ))}
            </ul>
          </details>
        )}
        {main && (
          <fieldset>
            <legend>Fallbacks (tried in order if the model fails before answering)</legend>
            {fallbacks.value.map((f, i) => {
              const shown = fit(f, usable);
              return shown ? (
                <div class="inline" key={i}>
                  <ModelPicker
                    label={`Fallback ${i + 1}`}
                    choice={shown}
                    usable={usable}
                    modelsOf={modelsOf}
                    onChange={(c) => (fallbacks.value = fallbacks.value.map((x, j) => (j === i ? c : x)))}
                  />
                  <button type="button" class="icon" aria-label={`Remove fallback ${i + 1}`} onClick={() => (fallbacks.value = fallbacks.value.filter((_, j) => j !== i))}>
                    ✕
                  </button>
                </div>
              ) : null;
            })}
            {fallbacks.value.length < FALLBACKS_MAX && (
              <button type="button" class="ghost" onClick={() => (fallbacks.value = [...fallbacks.value, main])}>
                + Add fallback
              </button>
            )}
          </fieldset>
        )}
        <label>
          System prompt
          <textarea rows={3} maxLength={SYSTEM_PROMPT_MAX_CHARS} value={system.value} onInput={(e) => (system.value = e.currentTarget.value)} />
        </label>
        <div class="form-actions">
          <button type="button" class="ghost" onClick={() => onClose(false)}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy.value || !main}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function ModelPicker({
  label,
  choice,
  usable,
  modelsOf,
  onChange,
}: {
  label: string;
  choice: ModelRef;
  usable: ProviderView[];
  modelsOf: (p: string) => ModelInfo[];
  onChange: (c: ModelRef) => void;
}) {
  return (
    <div class="inline">
      <label>
        {label}: provider
        <select
          value={choice.provider}
          onChange={(e) => {
            const provider = e.currentTarget.value;
            onChange({ provider, model: modelsOf(provider)[0]?.id ?? "" });
          }}
        >
          {usable.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        {label}: model
        <select value={choice.model} onChange={(e) => onChange({ ...choice, model: e.currentTarget.value })}>
          {modelsOf(choice.provider).map((m) => (
            <option key={m.id} value={m.id}>
              {m.id} ({Math.round(m.context_window / 1000)}k)
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}
