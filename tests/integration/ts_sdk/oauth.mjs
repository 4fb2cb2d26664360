// The official TypeScript SDK client's OAuth support against mcp-host in auth.mode oauth,
// with the codesphere plugin in front of the fake Codesphere API: discovery from a bare 401,
// dynamic registration, authorization (the test fills in the form as a person would), the
// token, tool calls with the user's own key, a refresh, and revocation.
//   node oauth.mjs BINARY CONFIG FAKE_URL KEY
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [bin, config, fakeUrl, key] = process.argv.slice(2);
const server = spawn(bin, ["serve", "--config", config, "--transport", "http", "--listen", "127.0.0.1:0"],
                     { stdio: ["ignore", "inherit", "pipe"] });
let log = "";
process.on("exit", () => server.kill("SIGKILL"));  // never leave the host behind
const url = await new Promise((resolve, reject) => {
  server.stderr.on("data", (d) => {
    log += d;
    const m = log.match(/at (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
    if (m) resolve(m[1]);
  });
  server.on("exit", (code) => reject(new Error(`mcp-host exited with ${code}`)));
});
let checks = 0;
const check = (fn) => { fn(); checks++; };

// What an app keeps between runs; here, in memory.
class Provider {
  get redirectUrl() { return "http://127.0.0.1:4321/callback"; }
  get clientMetadata() {
    return { client_name: "mcph SDK OAuth test", redirect_uris: [this.redirectUrl], grant_types: ["authorization_code", "refresh_token"],
             response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  clientInformation() { return this.client; }
  saveClientInformation(c) { this.client = c; }
  tokens() { return this.saved; }
  saveTokens(t) { this.saved = t; }
  redirectToAuthorization(u) { this.authUrl = u; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {  // the SDK calls it when the server refuses what we hold
    if (scope === "all" || scope === "client") this.client = undefined;
    if (scope === "all" || scope === "tokens") this.saved = undefined;
    if (scope === "all" || scope === "verifier") this.verifier = undefined;
  }
}

// The person in the browser: opens the page, types the key, submits.
async function fillInTheForm(authUrl) {
  const page = await fetch(authUrl);
  check(() => assert.equal(page.status, 200));
  const html = await page.text();
  check(() => assert.match(html, /Codesphere API token/));
  const form = new URLSearchParams();
  const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#39;/g, "'").replace(/&amp;/g, "&");
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) form.append(m[1], unescape(m[2]));
  form.append("cs.api_token", key);
  const cookie = page.headers.get("set-cookie").split(";")[0];
  const done = await fetch(new URL("/authorize", authUrl), { method: "POST", body: form, headers: { cookie }, redirect: "manual" });
  check(() => assert.equal(done.status, 302));
  const back = new URL(done.headers.get("location"));
  check(() => assert.equal(back.searchParams.get("state"), new URL(authUrl).searchParams.get("state")));
  return back.searchParams.get("code");
}

const users = async () => {
  const r = await (await fetch(`${fakeUrl}/_fake/requests`)).json();
  await fetch(`${fakeUrl}/_fake/reset`, { method: "POST" });
  return r.requests.map((q) => q.user);
};

const provider = new Provider();
let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
let client = new Client({ name: "mcph-ts-sdk-oauth", version: "1.0.0" });
await assert.rejects(client.connect(transport), UnauthorizedError);  // discovery, registration, then the browser
check(() => assert.ok(provider.client?.client_id, "registered"));
check(() => assert.ok(provider.authUrl, "sent to /authorize"));
check(() => assert.equal(provider.authUrl.searchParams.get("code_challenge_method"), "S256"));
check(() => assert.equal(provider.authUrl.searchParams.get("resource"), url));
await transport.finishAuth(await fillInTheForm(provider.authUrl));
check(() => assert.ok(provider.saved?.access_token && provider.saved?.refresh_token));

transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
client = new Client({ name: "mcph-ts-sdk-oauth", version: "1.0.0" });
await client.connect(transport);
await users();
const teams = await client.callTool({ name: "list_teams", arguments: {} });
check(() => assert.equal(teams.structuredContent.items[0].name, "Alpha"));
const seen = await users();
check(() => assert.deepEqual(seen, [0]));  // with this user's own key

// An access token that no longer works: the SDK refreshes and retries on its own.
const before = provider.saved.refresh_token;
provider.saved = { ...provider.saved, access_token: "expired-or-garbage" };
await client.close();
transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
client = new Client({ name: "mcph-ts-sdk-oauth", version: "1.0.0" });
await client.connect(transport);
check(() => assert.notEqual(provider.saved.refresh_token, before, "refresh tokens rotate"));
const again = await client.callTool({ name: "list_teams", arguments: {} });
check(() => assert.equal(again.structuredContent.items[0].name, "Alpha"));
await client.close();

// Revocation: the tokens stop working, and the client is sent back to sign in.
const revoked = await fetch(new URL("/revoke", url), { method: "POST",
  body: new URLSearchParams({ token: provider.saved.refresh_token, client_id: provider.client.client_id }) });
check(() => assert.equal(revoked.status, 200));
provider.authUrl = undefined;
transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
client = new Client({ name: "mcph-ts-sdk-oauth", version: "1.0.0" });
await assert.rejects(client.connect(transport), UnauthorizedError);
check(() => assert.ok(provider.authUrl, "sent to sign in again"));

check(() => assert.ok(!log.includes(key), "the key never reaches the host log"));
server.kill("SIGTERM");
const code = await new Promise((resolve) => server.on("exit", resolve));
check(() => assert.equal(code, 0));
console.log(`oauth: ${checks} passed, 0 failed`);
