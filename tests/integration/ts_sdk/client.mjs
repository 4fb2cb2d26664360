// Drives mcp-host with the official TypeScript SDK client, as Claude Desktop or any SDK-based
// client would, over stdio or Streamable HTTP. Exits non-zero on the first failed check.
//   node client.mjs stdio|http BINARY CONFIG
//   node client.mjs url URL     (a host or a load balancer already serving; more calls)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, bin, config] = process.argv.slice(2);
let server;  // the host process, for HTTP
let transport;
if (mode === "http") {
  server = spawn(bin, ["serve", "--config", config, "--transport", "http", "--listen", "127.0.0.1:0"],
                 { stdio: ["ignore", "inherit", "pipe"] });
  const url = await new Promise((resolve, reject) => {
    let err = "";
    server.stderr.on("data", (d) => {
      err += d;
      process.stderr.write(d);
      const m = err.match(/at (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
      if (m) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`mcp-host exited with ${code}`)));
  });
  transport = new StreamableHTTPClientTransport(new URL(url));
} else if (mode === "url") {
  transport = new StreamableHTTPClientTransport(new URL(bin));
} else {
  transport = new StdioClientTransport({ command: bin, args: ["serve", "--config", config], stderr: "inherit" });
}
const client = new Client({ name: "mcph-ts-sdk-test", version: "1.0.0" });
let checks = 0;
const check = (fn) => { fn(); checks++; };

await client.connect(transport);
check(() => assert.equal(client.getServerVersion().name, "mcp-host"));

const { tools } = await client.listTools();
check(() => assert.deepEqual(tools.map((t) => t.name).sort(), ["add", "echo", "slow_count"]));

const echo = await client.callTool({ name: "echo", arguments: { text: "from the TypeScript SDK" } });
check(() => assert.equal(echo.content[0].text, "from the TypeScript SDK"));

// The SDK checks structuredContent against the tool's outputSchema.
const add = await client.callTool({ name: "add", arguments: { a: 2, b: 3 } });
check(() => assert.equal(add.structuredContent.sum, 5));

const bad = await client.callTool({ name: "add", arguments: { a: "two", b: 3 } });
check(() => assert.equal(bad.isError, true));
check(() => assert.match(bad.content[0].text, /\/a/));

// The SDK hands notifications to handlers a microtask late, so a progress notification that
// arrives in the same read as the response can be dropped by the client itself: expect the
// early steps, in order, not necessarily the last one.
const progress = [];
const counted = await client.callTool({ name: "slow_count", arguments: { n: 4, delay_ms: 20 } }, undefined,
  { onprogress: (p) => progress.push(p.progress) });
check(() => assert.equal(counted.structuredContent.counted, 4));
check(() => assert.ok(progress.length >= 3, `progress: ${progress}`));
check(() => assert.deepEqual(progress, [1, 2, 3, 4].slice(0, progress.length)));

if (mode === "url") {  // behind a balancer: every call may land on another replica
  for (let i = 0; i < 12; i++) {
    const r = await client.callTool({ name: "echo", arguments: { text: `call ${i}` } });
    check(() => assert.equal(r.content[0].text, `call ${i}`));
  }
  check(() => assert.ok(transport.sessionId, "a legacy session"));
}

await client.close();
if (server) {
  server.kill("SIGTERM");
  const code = await new Promise((resolve) => server.on("exit", resolve));
  check(() => assert.equal(code, 0));
}
console.log(`${mode}: ${checks} passed, 0 failed`);
