// view_logs: a stage's logs, read from Codesphere's Server-Sent Events stream (§2.7).
#include <algorithm>

#include "pipeline.hpp"
#include "sse.hpp"
#include "tools.hpp"

namespace codesphere {

namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kMaxLines = 1000;

// For the run stage of a landscape, logs live per server (/logs/run/{step}/server/{name});
// the plain route answers a 400 problem there (§2.7). The old server only looked when there
// were several entries and so missed single-service landscapes (§1.5). Returns the service
// servers, IDE first excluded; empty for an ordinary workspace (or when status is unknown).
std::vector<std::string> service_servers(Env& env, std::int64_t ws) {
  std::vector<std::string> out;
  try {
    for (const auto& e : parse_pipeline(env.client.get(ws_path(ws) + "/pipeline/run").body)) {
      if (e.server.empty() || e.server == kIdeServer) continue;
      if (std::find(out.begin(), out.end(), e.server) == out.end()) out.push_back(e.server);
    }
  } catch (const CancelledError&) {
    throw;
  } catch (const UpstreamError&) {
    // Unknown: try the plain route; its own error (or problem) will say what is wrong.
  }
  return out;
}

const char* end_text(StreamEnd::Reason r) {
  switch (r) {
    case StreamEnd::Reason::Closed: return "the stream ended";
    case StreamEnd::Reason::StoppedByReader: return "the stream ended";
    case StreamEnd::Reason::Deadline: return "the stream was still open at the read deadline, as for a running stage";
    case StreamEnd::Reason::Dropped: return "the connection dropped";
  }
  return "";
}

json view_logs(Env& env, const json& args) {
  const std::int64_t ws = id_arg(args, "workspaceId");
  const std::string stage_name = args.value("stage", std::string("run"));
  const auto stage = parse_stage(stage_name);
  if (!stage) throw sdk::ToolError("stage must be prepare, test or run");
  const std::int64_t step = int_arg(args, "step", 0, 0, 10000);
  const std::int64_t lines = int_arg(args, "lines", 50, 1, kMaxLines);
  std::string server = args.value("server", std::string());
  if (!server.empty() && *stage != Stage::Run) {
    // Upstream has per-server logs only for run (/logs/run/{step}/server/{server}, §2.3).
    throw sdk::ToolError("server applies only to stage \"run\" (Codesphere keeps per-server logs only for the run "
                         "stage); omit it for prepare and test.");
  }
  std::vector<std::string> servers;
  if (server.empty() && *stage == Stage::Run) {
    servers = service_servers(env, ws);
    if (!servers.empty()) server = servers.front();
  }
  std::string path = ws_path(ws) + "/logs/" + stage_name + "/" + std::to_string(step);
  if (!server.empty()) path += "/server/" + path_segment(server);

  // Keep the last `lines` entries: a finished stage's stream replays everything from the
  // start and then closes, and the tail is what matters (the old server also showed the last
  // lines). A running stage's stream stays open; the read deadline ends it.
  LogCollector logs(static_cast<std::size_t>(lines));
  const StreamEnd end = env.client.stream(path, env.settings.logs_timeout, [&](std::string_view chunk) {
    return logs.feed(chunk);
  });
  logs.finish();
  if (const auto& p = logs.problem()) {
    throw UpstreamError(env.client.safe("Codesphere reported a problem for the " + stage_name + " logs of workspace " +
                                        std::to_string(ws) + ": " + describe_problem(*p)),
                        p->status ? status_for_http(p->status) : MCPH_ERR_UNAVAILABLE, p->status, false);
  }

  json items = json::array();
  std::string body;
  for (const auto& e : logs.entries()) {
    items.push_back(json{{"timestamp", e.timestamp}, {"kind", e.kind}, {"data", e.data}});
    body += "\n" + env.client.safe(format_log_entry(e));
  }
  const bool complete = end.reason == StreamEnd::Reason::Closed || end.reason == StreamEnd::Reason::StoppedByReader;
  json out{{"items", std::move(items)},
           {"workspaceId", ws},
           {"stage", stage_name},
           {"step", step},
           {"server", server.empty() ? json() : json(server)},
           {"totalReceived", logs.total_seen()},
           {"complete", complete},
           {"ended", end_text(end.reason)}};
  if (servers.size() > 1) out["servers"] = servers;

  std::string where = stage_name + " logs of workspace " + std::to_string(ws) + ", step " + std::to_string(step) +
                      (server.empty() ? "" : ", server " + server);
  std::string text;
  if (logs.entries().empty()) {
    text = "No logs for the " + where + " (" + end_text(end.reason) + ").";
  } else {
    text = (logs.total_seen() > logs.entries().size()
                ? "Last " + std::to_string(logs.entries().size()) + " of " + std::to_string(logs.total_seen()) + " entries"
                : std::to_string(logs.entries().size()) + " entries") +
           " of the " + where + " (" + end_text(end.reason) + "; [E] = stderr, [I] = stdout):" + body;
  }
  if (servers.size() > 1) {
    std::string all;
    for (const auto& s : servers) all += (all.empty() ? "" : ", ") + s;
    text += "\nThis landscape has several servers (" + all + "); pass server to see another.";
  }
  return sdk::structured(std::move(out), text);
}

json logs_schema() {
  json entry{{"type", "object"},
             {"properties",
              {{"timestamp", {{"type", "string"}}},
               {"kind", {{"type", "string"}, {"description", "E = stderr, I = stdout"}}},
               {"data", {{"type", "string"}}}}},
             {"required", {"timestamp", "kind", "data"}}};
  return list_schema(entry, {{"workspaceId", {{"type", "integer"}}},
                             {"stage", {{"enum", {"prepare", "test", "run"}}}},
                             {"step", {{"type", "integer"}}},
                             {"server", nullable("string")},
                             {"servers", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                             {"totalReceived", {{"type", "integer"}}},
                             {"complete", {{"type", "boolean"}}},
                             {"ended", {{"type", "string"}}}});
}

}  // namespace

void register_log_tools(Registry& r) {
  const json count = json{{"type", {"integer", "string"}}, {"pattern", "^[0-9]+$"}, {"minimum", 0}};
  json step = count;
  step["default"] = 0;
  step["maximum"] = 10000;
  step["description"] = "0-based step index of the stage (get_workspace_status lists the steps)";
  json lines = count;
  lines["minimum"] = 1;
  lines["maximum"] = kMaxLines;
  lines["default"] = 50;
  lines["description"] = "How many of the most recent entries to return";
  r.add(sdk::ToolSpec("view_logs")
            .title("View logs")
            .description("Get the most recent log entries of a workspace's pipeline stage step (prepare, test or run), "
                         "with timestamps and kind ([E] stderr, [I] stdout). A finished stage's log is read to the end; "
                         "a running stage's stream is read until settings.logs_timeout_ms. For a landscape's run stage "
                         "the first service server is used unless `server` names one.")
            .input(object_schema(
                {{"workspaceId", id_schema("Workspace ID")},
                 {"stage", {{"enum", {"prepare", "test", "run"}}, {"default", "run"}, {"description", "Pipeline stage"}}},
                 {"step", step},
                 {"lines", lines},
                 {"server",
                  {{"type", "string"},
                   {"pattern", "^(?:[a-z]|[a-z][-a-z0-9]{0,30}[a-z0-9])$"},
                   {"description", "Landscape server (service) name; run stage only"}}}},
                {"workspaceId"}))
            .output(logs_schema())
            .annotations(read_only_annotations("View logs")),
        view_logs);
}

}  // namespace codesphere
