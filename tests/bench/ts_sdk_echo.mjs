// The official TypeScript SDK's server (@modelcontextprotocol/sdk, the version the tests pin)
// serving the same echo tool as example-echo, so scripts/bench.sh measures it beside
// mcp-host in the same run. Legacy era only: this SDK speaks protocol revisions up to
// 2025-11-25. Run from a folder whose node_modules holds the SDK (bench.sh copies it there).
//   node ts_sdk_echo.mjs stdio
//   node ts_sdk_echo.mjs http   prints "port N" once it listens on 127.0.0.1 (any free port);
//                               stateful sessions, JSON answers (enableJsonResponse), as the
//                               host answers a POST
import { randomUUID } from "node:crypto";
import http from "node:http";

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

function echoServer() {
  const server = new McpServer({ name: "ts-sdk-echo", version: "1" });
  server.registerTool("echo", { description: "Echo the text back", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }));
  return server;
}

const mode = process.argv[2];
if (mode === "stdio") {
  await echoServer().connect(new StdioServerTransport());
} else if (mode === "http") {
  const sessions = new Map();  // Mcp-Session-Id -> its transport
  const httpServer = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      let body;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
      } catch {
        res.writeHead(400).end();
        return;
      }
      let transport = sessions.get(req.headers["mcp-session-id"]);
      if (!transport && req.method === "POST" && isInitializeRequest(body)) {
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: true,
          onsessioninitialized: (id) => sessions.set(id, transport),
        });
        await echoServer().connect(transport);
      }
      if (!transport) {
        res.writeHead(404).end();
        return;
      }
      await transport.handleRequest(req, res, body);
    });
  });
  httpServer.listen(0, "127.0.0.1", () => console.log(`port ${httpServer.address().port}`));
} else {
  console.error("usage: ts_sdk_echo.mjs stdio|http");
  process.exit(2);
}
