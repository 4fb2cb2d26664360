-- wrk script: a 2026-07-28 tools/call echo, the request every HTTP benchmark line measures
-- (or, with MCP_SESSION, the same call in the legacy era).
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"

-- With MCP_SESSION set: the legacy era (2025-11-25) instead, in that session (made by
-- initialize before wrk starts). A session's requests in flight need distinct ids: each
-- wrk thread numbers its own after a prefix of its own.
local session = os.getenv("MCP_SESSION")
if session and session ~= "" then
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
  wrk.headers["Mcp-Session-Id"] = session
  wrk.headers["Mcp-Method"] = nil
  wrk.headers["Mcp-Name"] = nil
  local prefix, n = string.gsub(tostring({}), "table: ", ""), 0
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, '{"jsonrpc":"2.0","id":"' .. prefix .. "-" .. n ..
      '","method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"}}}')
  end
end

-- Count answers that are not a successful JSON-RPC result, so a broken server cannot look fast.
local bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx/errors %d, p50 %.3f ms, p99 %.3f ms\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
