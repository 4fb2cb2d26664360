// Drives mcp-host over stdio with the official TypeScript SDK client, as Claude Desktop or
// any SDK-based client would. Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [bin, config] = process.argv.slice(2);
const transport = new StdioClientTransport({ command: bin, args: ["serve", "--config", config], stderr: "inherit" });
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

const progress = [];
const counted = await client.callTool({ name: "slow_count", arguments: { n: 3, delay_ms: 10 } }, undefined,
  { onprogress: (p) => progress.push(p.progress) });
check(() => assert.equal(counted.structuredContent.counted, 3));
check(() => assert.deepEqual(progress, [1, 2, 3]));

await client.close();
console.log(`${checks} passed, 0 failed`);
