// An OpenID provider on loopback, enough for the authorization code flow with PKCE: discovery,
// /authorize (signs in "Grace" at once and redirects back with a code), /token (checks the
// verifier against the challenge; gives an ES256 ID token and a refresh token) and the JWKS the
// gateway verifies with.
import { createHash, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import http from "node:http";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

export async function startFakeIdp({ clientId }) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "idp-key-1", alg: "ES256", use: "sig" };
  const codes = new Map();
  const tokenRequests = [];
  let url = "";
  const idToken = (sub) => {
    const header = b64url(JSON.stringify({ alg: "ES256", kid: jwk.kid, typ: "JWT" }));
    const now = Math.floor(Date.now() / 1000);
    const claims = b64url(JSON.stringify({ iss: url, aud: clientId, sub, name: "Grace", iat: now, exp: now + 3600 }));
    const signature = sign("sha256", Buffer.from(`${header}.${claims}`), { key: privateKey, dsaEncoding: "ieee-p1363" });
    return `${header}.${claims}.${b64url(signature)}`;
  };
  const server = http.createServer((req, res) => {
    const at = new URL(req.url, url);
    const json = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json", "Access-Control-Allow-Origin": "*" });
      res.end(JSON.stringify(body));
    };
    if (at.pathname === "/.well-known/openid-configuration") {
      return json(200, { issuer: url, authorization_endpoint: `${url}/authorize`, token_endpoint: `${url}/token`, jwks_uri: `${url}/jwks` });
    }
    if (at.pathname === "/jwks") return json(200, { keys: [jwk] });
    if (at.pathname === "/authorize") {
      const q = at.searchParams;
      if (q.get("response_type") !== "code" || q.get("client_id") !== clientId || q.get("code_challenge_method") !== "S256") {
        return json(400, { error: "invalid_request" });
      }
      const code = randomUUID();
      codes.set(code, { challenge: q.get("code_challenge"), redirect: q.get("redirect_uri") });
      res.writeHead(302, { Location: `${q.get("redirect_uri")}?code=${code}&state=${encodeURIComponent(q.get("state"))}` });
      return res.end();
    }
    if (at.pathname === "/token" && req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const form = new URLSearchParams(body);
        tokenRequests.push(form);
        const grant = codes.get(form.get("code"));
        codes.delete(form.get("code"));
        const verifierOk =
          grant && b64url(createHash("sha256").update(form.get("code_verifier") ?? "").digest()) === grant.challenge;
        if (form.get("grant_type") !== "authorization_code" || !verifierOk || form.get("redirect_uri") !== grant.redirect) {
          return json(400, { error: "invalid_grant" });
        }
        json(200, { id_token: idToken("oidc-grace"), access_token: "opaque", refresh_token: randomUUID(), token_type: "Bearer", expires_in: 3600 });
      });
      return;
    }
    json(404, { error: "not_found" });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${server.address().port}`;
  return { url, tokenRequests, close: () => new Promise((r) => server.close(r)) };
}
