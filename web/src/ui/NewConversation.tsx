import { useSignal } from "@preact/signals";
import { FALLBACKS_MAX, SYSTEM_PROMPT_MAX_CHARS, TITLE_MAX_CHARS } from "../api/limits";
import type { ModelInfo } from "../api/types";
import type { ChatApp } from "../stores/app";
import { Dialog } from "./Dialog";


interface Choice {
  provider: string;
  model: string;
}

export function NewConversation({ app, onClose }: { app: ChatApp; onClose: () => void }) {
  const usable = app.providers.value.filter((p) => p.configured && p.enabled && p.models.length > 0);
  const first = usable[0];
  const title = useSignal("");
  const system = useSignal("");
  const main = useSignal<Choice>({ provider: first?.id ?? "", model: first?.models[0]?.id ?? "" });
  const fallbacks = useSignal<Choice[]>([]);
  const busy = useSignal(false);
  const modelsOf = (provider: string): ModelInfo[] => usable.find((p) => p.id === provider)?.models ?? [];

  const submit = async (e: Event) => {
    e.preventDefault();
    busy.value = true;
    const created = await app.createConversation({
      title: title.value.trim() || undefined,
      system_prompt: system.value.trim() || undefined,
      provider: main.value.provider || undefined,
      model: main.value.model || undefined,
      settings: { fallbacks: fallbacks.value.filter((f) => f.provider && f.model) },
    });
    busy.value = false;
    if (created) onClose();
  };

  return (
    <Dialog title="New conversation" onClose={onClose}>
      <form class="form" onSubmit={submit}>
        <label>
          Title
          <input value={title.value} maxLength={TITLE_MAX_CHARS} placeholder="New conversation" onInput={(e) => (title.value = e.currentTarget.value)} />
        </label>
        <ModelPicker label="Model" choice={main.value} usable={usable.map((p) => p.id)} modelsOf={modelsOf} onChange={(c) => (main.value = c)} />
        <fieldset>
          <legend>Fallbacks (tried in order if the model fails before answering)</legend>
          {fallbacks.value.map((f, i) => (
            <div class="inline" key={i}>
              <ModelPicker
                label={`Fallback ${i + 1}`}
                choice={f}
                usable={usable.map((p) => p.id)}
                modelsOf={modelsOf}
                onChange={(c) => (fallbacks.value = fallbacks.value.map((x, j) => (j === i ? c : x)))}
              />
              <button type="button" class="icon" aria-label={`Remove fallback ${i + 1}`} onClick={() => (fallbacks.value = fallbacks.value.filter((_, j) => j !== i))}>
                ✕
              </button>
            </div>
          ))}
          {fallbacks.value.length < FALLBACKS_MAX && (
            <button
              type="button"
              class="ghost"
              onClick={() => (fallbacks.value = [...fallbacks.value, { provider: first?.id ?? "", model: first?.models[0]?.id ?? "" }])}
            >
              + Add fallback
            </button>
          )}
        </fieldset>
        <label>
          System prompt
          <textarea rows={3} maxLength={SYSTEM_PROMPT_MAX_CHARS} value={system.value} onInput={(e) => (system.value = e.currentTarget.value)} />
        </label>
        <div class="form-actions">
          <button type="button" class="ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy.value}>
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
  choice: Choice;
  usable: string[];
  modelsOf: (p: string) => ModelInfo[];
  onChange: (c: Choice) => void;
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
            <option key={p} value={p}>
              {p}
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
