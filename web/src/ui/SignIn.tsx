import { useSignal } from "@preact/signals";
import type { Auth } from "../auth/session";

export function SignIn({ auth }: { auth: Auth }) {
  const name = useSignal("");
  const error = useSignal("");
  const busy = useSignal(false);
  const mode = auth.config.mode;
  const submit = async (e: Event) => {
    e.preventDefault();
    busy.value = true;
    error.value = "";
    try {
      if (mode === "dev") await auth.devSignIn(name.value.trim());
      else if (mode === "oidc") location.assign(await auth.beginSignIn(location.origin, sessionStorage));
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err);
    } finally {
      busy.value = false;
    }
  };
  return (
    <main class="sign-in">
      <form class="card form" onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">BestChat</h1>
        {mode === "dev" && (
          <>
            <p class="muted">Local dev sign-in: any name is its own user.</p>
            <label>
              Your name
              <input required autoFocus maxLength={64} value={name.value} onInput={(e) => (name.value = e.currentTarget.value)} />
            </label>
          </>
        )}
        {mode === "oidc" && <p class="muted">Sign in with your organization's account.</p>}
        {mode === "none" && (
          <p role="alert">
            No sign-in is configured for this server. Locally, run with <code>BESTCHAT_DEV_AUTH=1</code>; in AWS, the
            deploy writes the identity provider into <code>config.json</code>.
          </p>
        )}
        {error.value && <p class="error-text" role="alert">{error.value}</p>}
        {mode !== "none" && (
          <button type="submit" class="primary wide" disabled={busy.value}>
            Sign in
          </button>
        )}
      </form>
    </main>
  );
}
