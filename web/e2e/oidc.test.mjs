// Signing in with OpenID Connect (authorization code + PKCE) against a fake identity provider,
// with the gateway verifying the ID token against the provider's JWKS, as in AWS.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFakeIdp } from "./fake-idp.mjs";
import { launchBrowser, startGateway } from "./harness.mjs";

const CLIENT_ID = "bestchat-web";
let idp, gateway, browser;

before(async () => {
  idp = await startFakeIdp({ clientId: CLIENT_ID });
  gateway = await startGateway({
    BESTCHAT_DEV_AUTH: "0",
    BESTCHAT_JWKS_URL: `${idp.url}/jwks`,
    BESTCHAT_JWT_ISSUER: idp.url,
    BESTCHAT_JWT_AUDIENCE: CLIENT_ID,
    BESTCHAT_OIDC_ISSUER: idp.url,
    BESTCHAT_OIDC_CLIENT_ID: CLIENT_ID,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  gateway?.stop();
  await idp?.close();
});

describe("OIDC sign-in", () => {
  it("signs in with PKCE, and the API accepts the identity provider's token", async () => {
    const config = await (await fetch(`${gateway.url}/config.json`)).json();
    assert.deepEqual(config.auth, { mode: "oidc", issuer: idp.url, client_id: CLIENT_ID, scope: "openid profile email" });
    assert.equal((await fetch(`${gateway.url}/dev/token`, { method: "POST", body: "{}" })).status, 404, "no dev auth");
    const page = await (await browser.newContext()).newPage();
    await page.goto(gateway.url);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "+ New conversation" }).first().waitFor();
    assert.equal(new URL(page.url()).pathname, "/", "the callback is left behind");
    assert.match(await page.locator(".user-name").innerText(), /Grace/);
    // The WebSocket's $connect authorizer accepts the same token.
    await page.getByRole("status", { name: "Connection open" }).waitFor();
    assert.equal(idp.tokenRequests.length, 1);
    assert.match(idp.tokenRequests[0].get("code_verifier"), /^[A-Za-z0-9_-]{43}$/);
    // The token works on the API: a conversation is created and listed.
    await page.getByRole("button", { name: "+ New conversation" }).first().click();
    await page.getByRole("dialog", { name: "New conversation" }).getByLabel("Title").fill("Signed in properly");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { level: 1, name: "Signed in properly" }).waitFor();
    await page.close();
  });

  it("refuses a callback whose state this browser did not issue", async () => {
    const page = await (await browser.newContext()).newPage();
    const alerts = [];
    page.on("dialog", (d) => {
      alerts.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${gateway.url}/auth/callback?code=stolen&state=forged`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    assert.match(alerts.join(" "), /not started here/);
    assert.equal(idp.tokenRequests.length, 1, "the code was never traded");
    await page.close();
  });
});
