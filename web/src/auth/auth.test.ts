import { describe, expect, it } from "vitest";
import { authorizeUrl, challengeOf } from "./pkce";
import { MemoryStorage } from "../testing";
import { Auth, claimsOf, session } from "./session";


function jwt(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${enc({ alg: "none" })}.${enc(claims)}.sig`;
}

const oidc = { mode: "oidc" as const, issuer: "https://idp.example/t", client_id: "web", scope: "openid" };
const discovery = {
  authorization_endpoint: "https://idp.example/t/authorize",
  token_endpoint: "https://idp.example/t/token",
};

/** An identity provider on a fetch double: discovery and the token endpoint. */
function idp(tokens: { id_token: string; refresh_token?: string }) {
  const forms: URLSearchParams[] = [];
  const fetcher = (async (url: string, init?: RequestInit) => {
    if (url.endsWith("/.well-known/openid-configuration")) return new Response(JSON.stringify(discovery));
    if (url === discovery.token_endpoint) {
      forms.push(new URLSearchParams(String(init?.body)));
      return new Response(JSON.stringify(tokens));
    }
    return new Response("no", { status: 404 });
  }) as typeof fetch;
  return { fetcher, forms };
}

describe("PKCE", () => {
  it("derives the S256 challenge of RFC 7636's example", async () => {
    expect(await challengeOf("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe(
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
  });

  it("asks for a code with the challenge, never a token in the URL", () => {
    const url = new URL(
      authorizeUrl({ discovery, clientId: "web", redirectUri: "https://app/auth/callback", scope: "openid", state: "s", nonce: "n", challenge: "c" }),
    );
    expect(url.searchParams.get("response_type")).toBe("code");
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("code_challenge")).toBe("c");
  });
});

describe("Auth with OIDC", () => {
  it("signs in: state checked, code traded with the verifier, session kept", async () => {
    const token = jwt({ exp: 2_000_000_000, name: "Ada" });
    const { fetcher, forms } = idp({ id_token: token, refresh_token: "r1" });
    const storage = new MemoryStorage();
    const pending = new MemoryStorage();
    const auth = new Auth(oidc, storage, fetcher, () => 1_000_000_000);
    const go = new URL(await auth.beginSignIn("https://app", pending));
    const state = go.searchParams.get("state")!;
    await auth.completeSignIn(`?code=abc&state=${state}`, "https://app", pending);
    const form = forms[0]!;
    expect(form.get("grant_type")).toBe("authorization_code");
    expect(await challengeOf(form.get("code_verifier")!)).toBe(go.searchParams.get("code_challenge"));
    expect(session.value?.name).toBe("Ada");
    expect(await auth.token()).toBe(token);
    expect(storage.getItem("bestchat.session")).toContain("r1");
  });

  it("refuses a callback whose state it did not issue", async () => {
    const { fetcher } = idp({ id_token: jwt({ exp: 2_000_000_000 }) });
    const pending = new MemoryStorage();
    const auth = new Auth(oidc, new MemoryStorage(), fetcher);
    await auth.beginSignIn("https://app", pending);
    await expect(auth.completeSignIn("?code=abc&state=forged", "https://app", pending)).rejects.toThrow(/not started here/);
  });

  it("refreshes a token about to expire", async () => {
    const fresh = jwt({ exp: 3_000 });
    const { fetcher, forms } = idp({ id_token: fresh });
    const storage = new MemoryStorage();
    storage.setItem("bestchat.session", JSON.stringify({ token: "old", expiresAt: 1_030, name: "x", refreshToken: "r1" }));
    const auth = new Auth(oidc, storage, fetcher, () => 1_000);
    expect(await auth.token()).toBe(fresh);
    expect(forms[0]!.get("grant_type")).toBe("refresh_token");
    expect(forms[0]!.get("refresh_token")).toBe("r1");
  });

  it("reads exp and a display name from a token", () => {
    expect(claimsOf(jwt({ exp: 5, email: "a@b" }))).toEqual({ exp: 5, name: "a@b" });
    expect(claimsOf("garbage")).toEqual({ exp: 0, name: "" });
  });
});
