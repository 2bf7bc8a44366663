import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { UsageGroup } from "../api/client";
import type { UsageItem } from "../api/types";
import type { ChatApp } from "../stores/app";
import { Budget } from "./Budget";
import { Choice } from "./Choice";
import { money, sentence } from "./format";

const GROUPS: [UsageGroup, string][] = [
  ["day", "By day"],
  ["model", "By model"],
  ["provider", "By provider"],
  ["conversation", "By conversation"],
];

/** One bar per group, as a share of the largest: cost when any has one, else calls. */
export function bars(items: UsageItem[]): { key: string; share: number; label: string }[] {
  const byCost = items.some((i) => i.cost_micros > 0);
  const value = (i: UsageItem) => (byCost ? i.cost_micros : i.turns);
  const top = Math.max(1, ...items.map(value));
  return items.map((i) => ({
    key: i.key,
    share: value(i) / top,
    label: byCost ? money(i.cost_micros) : `${i.turns} ${i.turns === 1 ? "call" : "calls"}`,
  }));
}

const BAR = 22;

/** What the user's calls used, in tokens and money, from the server's usage rows. */
export function Usage({ app }: { app: ChatApp }) {
  const group = useSignal<UsageGroup>("day");
  const status = useSignal("");
  useEffect(() => {
    status.value = "";
    app.settings.loadUsage(group.value).catch((e: Error) => (status.value = sentence(e.message)));
  }, [group.value]);
  // Only an answer to the grouping shown now; until it comes (or when it failed) nothing else.
  const answer = app.settings.usage.value;
  const report = answer?.group === group.value && !status.value ? answer.report : undefined;
  const loading = !report && !status.value;
  const items = report?.items ?? [];
  const total = report?.total;
  // The latest month of days; the costliest groups otherwise.
  const shown = bars(group.value === "day" ? items.slice(-31) : items.slice(0, 31));
  return (
    <div class="stack usage" aria-busy={loading}>
      <Budget app={app} />
      <h3>Usage</h3>
      <Choice label="Group" value={group.value} options={GROUPS} onChange={(g) => (group.value = g)} />
      {total && (
        <p>
          <strong>{money(total.cost_micros)}</strong> for {total.turns} {total.turns === 1 ? "call" : "calls"},{" "}
          {total.input_tokens.toLocaleString()} tokens in and {total.output_tokens.toLocaleString()} out.
        </p>
      )}
      {status.value && <p role="alert">{status.value}</p>}
      {loading && <p class="muted">Loading…</p>}
      {report && items.length === 0 && <p class="muted">Nothing used yet.</p>}
      {shown.length > 0 && (
        <svg
          role="img"
          aria-label={`Usage ${GROUPS.find(([g]) => g === group.value)?.[1].toLowerCase()}; the table below has the numbers`}
          viewBox={`0 0 100 ${shown.length * BAR}`}
          preserveAspectRatio="none"
          style={{ width: "100%", height: `${shown.length * 1.6}rem` }}
        >
          {shown.map((b, n) => (
            <rect key={b.key} x="0" y={n * BAR + 3} width={Math.max(0.5, b.share * 100)} height={BAR - 6} class="usage-bar">
              <title>{`${b.key}: ${b.label}`}</title>
            </rect>
          ))}
        </svg>
      )}
      {items.length > 0 && (
        <div class="table-scroll">
          <table>
            <caption class="sr-only">Usage per group</caption>
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Calls</th>
                <th scope="col">Tokens in / out</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.key}>
                  <th scope="row">{i.key}</th>
                  <td>{i.turns}</td>
                  <td>
                    {i.input_tokens.toLocaleString()} / {i.output_tokens.toLocaleString()}
                  </td>
                  <td>{money(i.cost_micros)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
