import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { AdminUsageGroup } from "../api/client";
import type { AdminUser, Period } from "../api/types";
import type { ChatApp } from "../stores/app";
import { Choice } from "./Choice";
import { dollarsToMicros, money, sentence } from "./format";

const GROUPS: [AdminUsageGroup, string][] = [
  ["user", "By user"],
  ["model", "By model"],
  ["provider", "By provider"],
  ["day", "By day"],
];

/** Who a user is, as an admin reads it. */
function who(u: AdminUser): string {
  return u.name ?? u.subject;
}

/** One user's row: spent against the limit, and a form for the limit and its period. */
function UserRow({ app, user }: { app: ChatApp; user: AdminUser }) {
  const limit = useSignal("");
  const period = useSignal<Period>(user.period);
  const status = useSignal("");
  const save = async (micros: number | null) => {
    status.value = "";
    try {
      await app.settings.setUserBudget(user.id, micros, period.value);
      limit.value = "";
      status.value = "Saved.";
    } catch (e) {
      status.value = sentence((e as Error).message);
    }
  };
  const label = who(user);
  return (
    <tr>
      <th scope="row">
        {label}
        {user.roles.length > 0 && <span class="muted"> · {user.roles.join(", ")}</span>}
      </th>
      <td>{money(user.spent_micros)}</td>
      <td>{user.limit_micros === null || user.limit_micros === undefined ? "none" : `${money(user.limit_micros)} a ${user.period}`}</td>
      <td>
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            // Left empty, the limit stays as it is and only the period changes.
            if (!limit.value.trim()) return void save(user.limit_micros ?? null);
            const micros = dollarsToMicros(limit.value);
            if (micros === null) status.value = "Give the limit in dollars, such as 20.";
            else void save(micros);
          }}
        >
          <label>
            <span class="sr-only">Limit for {label} ($; empty: as it is)</span>
            <input
              inputMode="decimal"
              size={6}
              value={limit.value}
              placeholder={user.limit_micros === null || user.limit_micros === undefined ? "none" : (user.limit_micros / 1_000_000).toFixed(2)}
              onInput={(e) => (limit.value = e.currentTarget.value)}
            />
          </label>
          <label>
            <span class="sr-only">Period for {label}</span>
            <select value={period.value} onChange={(e) => (period.value = e.currentTarget.value as Period)}>
              <option value="day">a day</option>
              <option value="month">a month</option>
            </select>
          </label>
          <button type="submit">Set</button>
          {user.limit_micros !== null && user.limit_micros !== undefined && (
            <button type="button" onClick={() => void save(null)}>
              No limit
            </button>
          )}
        </form>
        {status.value && <span role="status">{status.value}</span>}
      </td>
    </tr>
  );
}

/** Admins only: every user with what they spent and may spend, and usage of everyone. */
export function Admin({ app }: { app: ChatApp }) {
  const status = useSignal("");
  const group = useSignal<AdminUsageGroup>("user");
  useEffect(() => {
    app.settings.loadUsers().catch((e: Error) => (status.value = sentence(e.message)));
  }, []);
  useEffect(() => {
    app.settings.loadAdminUsage(group.value).catch((e: Error) => (status.value = sentence(e.message)));
  }, [group.value]);
  const users = app.settings.users.value;
  const names = new Map(users.map((u) => [u.id, who(u)]));
  const answer = app.settings.adminUsage.value;
  const report = answer?.group === group.value ? answer.report : undefined;
  return (
    <div class="stack admin">
      <h3>Users</h3>
      {status.value && <p role="alert">{status.value}</p>}
      <div class="table-scroll">
        <table class="rules">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Spent this period</th>
              <th scope="col">Limit</th>
              <th scope="col">Set limit</th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <UserRow key={u.id} app={app} user={u} />
            ))}
          </tbody>
        </table>
      </div>
      <h3>Usage of everyone</h3>
      <Choice label="Group" value={group.value} options={GROUPS} onChange={(g) => (group.value = g)} />
      {report && (
        <>
          <p>
            <strong>{money(report.total.cost_micros)}</strong> for {report.total.turns} calls.
          </p>
          <div class="table-scroll">
            <table class="rules">
              <thead>
                <tr>
                  <th scope="col">{GROUPS.find(([g]) => g === group.value)?.[1].replace("By ", "")}</th>
                  <th scope="col">Calls</th>
                  <th scope="col">Tokens in / out</th>
                  <th scope="col">Cost</th>
                </tr>
              </thead>
              <tbody>
                {report.items.map((i) => (
                  <tr key={i.key}>
                    <th scope="row">{group.value === "user" ? (names.get(i.key) ?? i.key) : i.key}</th>
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
        </>
      )}
    </div>
  );
}
