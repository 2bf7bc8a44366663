// Who is signed in. Dev auth asks the local gateway for a token by name; OIDC signs in at the
// identity provider with PKCE and keeps the tokens, refreshing before they expire.

import { signal } from "@preact/signals";
import type { AuthConfig } from "../config";
import { authorizeUrl, challengeOf, randomVerifier, type Discovery } from "./pkce";

export interface Session {
  token: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  name: string;
  refreshToken?: string;
}

export const SESSION_KEY = "bestchat.session";
const PENDING_KEY = "bestchat.oidc.pending";
/** Refresh (or sign in again) this long before a token expires. */
export const EXPIRY_MARGIN_S = 60;

export const session = signal<Session | null>(null);

export interface KeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The `exp` and a display name from a JWT's payload (not verified: the server does that). */
export function claimsOf(token: string): { exp: number; name: string } {
  const part = token.split(".")[1] ?? "";
  try {
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const name = [json.name, json.preferred_username, json.email, json.sub].find((v) => typeof v === "string");
    return { exp: typeof json.exp === "number" ? json.exp : 0, name: (name as string | undefined) ?? "" };
  } catch {
    return { exp: 0, name: "" };
  }
}

/** The `sub` of a JWT (not verified: it only names this device's own storage for the user). */
export function subjectOf(token: string): string {
  try {
    const part = token.split(".")[1] ?? "";
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    return typeof json.sub === "string" ? json.sub : "";
  } catch {
    return "";
  }
}

export class Auth {
  private discovery: Discovery | null = null;

  constructor(
    readonly config: AuthConfig,
    private readonly storage: KeyValue,
    private readonly fetcher: typeof fetch = (...a) => fetch(...a),
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    const saved = storage.getItem(SESSION_KEY);
    if (saved) {
      try {
        const s = JSON.parse(saved) as Session;
        if (s.expiresAt > this.now() + EXPIRY_MARGIN_S || s.refreshToken) session.value = s;
      } catch {
        storage.removeItem(SESSION_KEY);
      }
    }
  }

  /** Another tab signed in or out: this one follows (the `storage` event). */
  syncFromStorage(): void {
    const saved = this.storage.getItem(SESSION_KEY);
    if (!saved) {
      session.value = null;
      return;
    }
    try {
      const s = JSON.parse(saved) as Session;
      if (s.token !== session.value?.token) session.value = s;
    } catch {
      session.value = null;
    }
  }

  private keep(s: Session | null): void {
    session.value = s;
    if (s) this.storage.setItem(SESSION_KEY, JSON.stringify(s));
    else this.storage.removeItem(SESSION_KEY);
  }

  /** A token good for at least the margin, refreshed when it can be; null when signed out. */
  async token(): Promise<string | null> {
    const s = session.value;
    if (!s) return null;
    if (s.expiresAt > this.now() + EXPIRY_MARGIN_S) return s.token;
    if (s.refreshToken && this.config.mode === "oidc") {
      try {
        return (await this.refresh(s.refreshToken)).token;
      } catch {
        // fall through: the user signs in again
      }
    }
    this.keep(null);
    return null;
  }

  async devSignIn(name: string): Promise<void> {
    const response = await this.fetcher("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: name }),
    });
    const body = (await response.json().catch(() => null)) as
      | { token?: string; error?: { message?: string } }
      | null;
    if (!response.ok || !body?.token) throw new Error(body?.error?.message ?? "Sign-in failed.");
    this.keep({ token: body.token, expiresAt: claimsOf(body.token).exp, name });
  }

  private async discover(): Promise<Discovery> {
    if (this.config.mode !== "oidc") throw new Error("OIDC is not configured");
    if (this.discovery) return this.discovery;
    const url = `${this.config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const response = await this.fetcher(url);
    if (!response.ok) throw new Error(`The identity provider answered ${response.status}.`);
    this.discovery = (await response.json()) as Discovery;
    return this.discovery;
  }

  /** The URL to send the browser to; what it needs on return is kept for `completeSignIn`. */
  async beginSignIn(origin: string, pending: KeyValue): Promise<string> {
    if (this.config.mode !== "oidc") throw new Error("OIDC is not configured");
    const discovery = await this.discover();
    const verifier = randomVerifier();
    const state = randomVerifier();
    const nonce = randomVerifier();
    pending.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
    return authorizeUrl({
      discovery,
      clientId: this.config.client_id,
      redirectUri: `${origin}/auth/callback`,
      scope: this.config.scope,
      state,
      nonce,
      challenge: await challengeOf(verifier),
    });
  }

  /** On /auth/callback: checks the state and trades the code for tokens. */
  async completeSignIn(search: string, origin: string, pending: KeyValue): Promise<void> {
    if (this.config.mode !== "oidc") throw new Error("OIDC is not configured");
    const params = new URLSearchParams(search);
    const saved = pending.getItem(PENDING_KEY);
    pending.removeItem(PENDING_KEY);
    const error = params.get("error");
    if (error) throw new Error(params.get("error_description") ?? error);
    const { verifier, state } = saved ? (JSON.parse(saved) as { verifier: string; state: string }) : { verifier: "", state: "" };
    if (!verifier || params.get("state") !== state) throw new Error("This sign-in was not started here; please try again.");
    const code = params.get("code");
    if (!code) throw new Error("The identity provider sent no code.");
    await this.exchange({
      grant_type: "authorization_code",
      code,
      redirect_uri: `${origin}/auth/callback`,
      client_id: this.config.client_id,
      code_verifier: verifier,
    });
  }

  private async refresh(refreshToken: string): Promise<Session> {
    if (this.config.mode !== "oidc") throw new Error("OIDC is not configured");
    return this.exchange({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: this.config.client_id,
    });
  }

  private async exchange(form: Record<string, string>): Promise<Session> {
    const discovery = await this.discover();
    const response = await this.fetcher(discovery.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });
    const body = (await response.json().catch(() => null)) as {
      id_token?: string;
      refresh_token?: string;
      error_description?: string;
    } | null;
    // The ID token's audience is the client id, which is what the API's authorizer checks.
    if (!response.ok || !body?.id_token) throw new Error(body?.error_description ?? "The sign-in could not be completed.");
    const claims = claimsOf(body.id_token);
    const s: Session = {
      token: body.id_token,
      expiresAt: claims.exp,
      name: claims.name,
      refreshToken: body.refresh_token ?? session.value?.refreshToken,
    };
    this.keep(s);
    return s;
  }

  signOut(): void {
    this.keep(null);
  }
}
