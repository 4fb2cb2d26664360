// Telemetry through the real binary. Metrics: the exposition promtool accepts, the counts a
// scripted load leaves (per tool and outcome, the plugins' outbound HTTP), a stdio host
// scraped on telemetry.metrics_listen, and a real Prometheus (Debian's, started here on a
// free port, stopped by PID) scraping an HTTP host and answering PromQL over its API.
// Traces: an OTLP/HTTP receiver (tests/fakes/otlp_receiver.py, which decodes and checks
// real OTLP/JSON exports) sees a request's server span under the client's traceparent, the
// plugin's HTTP span under it, and the fake upstream API the same trace; a slow or absent
// receiver costs calls nothing and its drops are counted. The audit log of a scripted
// session holds exactly the expected lines, and none of the test's secrets.
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "codegen_fake.hpp"
#include "codesphere_fake.hpp"
#include "http_host.hpp"
#include "process.hpp"
#include "rpc.hpp"
#include "telemetry/trace.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kPlugins = "  - name: echo\n    library: example-echo\n  - name: fix\n    library: conformance-fixtures\n";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The value of the sample whose line starts with `series` (name and labels), or -1.
double sample(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// `promtool check metrics` on `text`: its exit code and what it said.
std::pair<int, std::string> promtool(const std::string& text, const TempDir& dir) {
  const std::string file = dir.str() + "/metrics.txt";
  std::ofstream(file) << text;
  Process p({"/bin/sh", "-c", "promtool check metrics < '" + file + "'"});
  std::string out;
  while (auto line = p.read_line(20s)) out += *line + "\n";
  return {p.wait(20s).value_or(-1), out + p.stderr_text()};
}

TEST(Metrics, AStdioHostIsScrapedOnItsOwnListenerWithTheCallsItServed) {
  CodesphereFake fake({"tok-metrics-5d"});
  ASSERT_GT(fake.port(), 0);
  TempDir dir;
  const std::string cfg = dir.str() + "/mcp-host.yaml";
  // The echo instance may run as a task; the first request to Codesphere fails (and is retried).
  std::ofstream(cfg) << "telemetry: { metrics_listen: \"127.0.0.1:0\" }\n"
                     << config_yaml(dir.str() + "/state",
                                    "  - name: echo\n    library: example-echo\n    task_support: optional\n"
                                    "  - name: fix\n    library: conformance-fixtures\n"
                                    "  - name: cs\n    library: codesphere\n    credentials: { api_token: tok-metrics-5d }\n"
                                    "    settings: { base_url: \"" + fake.base() + "/api\", retry_backoff_ms: 10 }\n");
  fake.fault({{"method", "GET"}, {"path", "/teams"}, {"kind", "status"}, {"status", 503}});
  Process p({MCPH_BINARY, "serve", "--config", cfg});
  std::smatch m;
  std::string url;
  const std::regex url_re("metrics at (http://127\\.0\\.0\\.1:[0-9]+/metrics)");
  for (int i = 0; i < 500 && url.empty(); ++i) {
    const std::string err = p.stderr_text();
    if (std::regex_search(err, m, url_re)) url = m[1];
    else std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(url.empty()) << p.stderr_text();
  p.send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p.read_response(0).contains("result"));
  int id = 1;
  for (int i = 0; i < 3; ++i) p.send(call(id++, "echo", {{"text", "hi"}}));
  p.send(call(id++, "test_error_handling"));
  p.send(call(id++, "no_such_tool"));
  p.send(call(id++, "list_teams"));
  json as_task = call(id++, "echo", {{"text", "later"}});
  as_task["params"]["task"] = {{"ttl", 60000}};
  p.send(as_task);
  ASSERT_EQ(p.read_responses(static_cast<size_t>(id - 1)).size(), static_cast<size_t>(id - 1)) << p.stderr_text();

  services::HttpClient client;
  services::HttpRequest r;
  r.url = url;
  std::string text = client.send(r).body;
  for (int i = 0; i < 200 && sample(text, "mcp_host_tasks_total{event=\"completed\"}") != 1; ++i) {  // the task ends on its own
    std::this_thread::sleep_for(20ms);
    text = client.send(r).body;
  }
  EXPECT_EQ(sample(text, "mcp_host_tasks_total{event=\"created\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_host_tasks_total{event=\"completed\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_host_tasks_total{event=\"failed\"}"), 0) << text;
  EXPECT_EQ(sample(text, "mcp_host_tasks_running"), 0) << text;
  EXPECT_EQ(sample(text, "mcp_host_store_errors_total"), 0) << text;
  EXPECT_EQ(sample(text, "mcp_host_upstream_retries_total{mcp_host_plugin_instance=\"cs\",server_address=\"127.0.0.1\"}"), 1) << text;
  EXPECT_EQ(sample(text, "http_client_request_duration_seconds_count{mcp_host_plugin_instance=\"cs\",http_request_method=\"GET\","
                         "http_response_status_code=\"503\",server_address=\"127.0.0.1\",error_type=\"503\"}"), 1) << text;
  const std::string common = "mcp_protocol_version=\"2025-11-25\",network_transport=\"pipe\"";
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo\","
                         "gen_ai_operation_name=\"execute_tool\"," + common + ",mcp_host_plugin_instance=\"echo\"}"), 4) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"test_error_handling\","
                         "gen_ai_operation_name=\"execute_tool\",error_type=\"tool_error\"," + common + ",mcp_host_plugin_instance=\"fix\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"no_such_tool\","
                         "gen_ai_operation_name=\"execute_tool\",error_type=\"-32602\",rpc_response_status_code=\"-32602\"," + common + "}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"initialize\"," + common + "}"), 1) << text;
  // The plugin's request to the (fake) Codesphere API, by instance and status.
  EXPECT_EQ(sample(text, "http_client_request_duration_seconds_count{mcp_host_plugin_instance=\"cs\",http_request_method=\"GET\","
                         "http_response_status_code=\"200\",server_address=\"127.0.0.1\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_host_plugin_instance_up{mcp_host_plugin_instance=\"cs\",isolation=\"" +
                             std::string(std::getenv("MCP_HOST_ISOLATION") ? std::getenv("MCP_HOST_ISOLATION") : "none") +
                             "\",state=\"running\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_host_sessions"), 1) << text;
  EXPECT_FALSE(contains(text, "tok-metrics-5d"));
  auto [code, said] = promtool(text, dir);
  EXPECT_EQ(code, 0) << said << text;

  // The session's duration is recorded when it ends.
  p.close_stdin();
  EXPECT_EQ(p.wait(15s), 0);
}

TEST(TraceContext, TraceparentIsReadAsW3CTraceContextDefinesIt) {
  const std::string good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto c = telemetry::SpanContext::parse(good);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->sampled);
  EXPECT_EQ(c->trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c->span_hex(), "00f067aa0ba902b7");
  EXPECT_EQ(c->traceparent(), good);
  EXPECT_FALSE(telemetry::SpanContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  // A later version may add fields; version 00 may not. Zero ids, upper case, ff: invalid.
  EXPECT_TRUE(telemetry::SpanContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next"));
  for (const std::string bad : {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", ""}) {
    EXPECT_FALSE(telemetry::SpanContext::parse(bad)) << bad;
  }
  // A child keeps its parent's trace and sampled flag; a root is sampled at the ratio.
  const auto child = telemetry::new_span(&*c, 0.0);
  EXPECT_EQ(child.trace_id, c->trace_id);
  EXPECT_NE(child.span_id, c->span_id);
  EXPECT_TRUE(child.sampled);
  int sampled = 0;
  for (int i = 0; i < 4000; ++i) sampled += telemetry::new_span(nullptr, 0.25).sampled ? 1 : 0;
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
  EXPECT_FALSE(telemetry::new_span(nullptr, 0.0).sampled);
}

// The OTLP receiver fake, on a free port.
class OtlpReceiver {
 public:
  OtlpReceiver()
      : proc_({"/usr/bin/env", "python3", std::string(MCPH_SOURCE_DIR) + "/tests/fakes/otlp_receiver.py", "--port", "0",
               "--exit-on-stdin-eof"}) {
    auto line = proc_.read_line(15s);
    if (line && line->rfind("PORT ", 0) == 0) port_ = std::stoi(line->substr(5));
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  json control(const std::string& method, const std::string& what, const json& body = json()) {
    httplib::Client c("127.0.0.1", port_);
    auto r = method == "GET" ? c.Get("/_fake/" + what) : c.Post("/_fake/" + what, body.dump(), "application/json");
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  // Waits until `n` spans arrived (or 15 s passed), and returns them all.
  json spans(size_t n) {
    json got;
    for (int i = 0; i < 300; ++i) {
      got = control("GET", "spans");
      if (got.is_object() && got["spans"].size() >= n) break;
      std::this_thread::sleep_for(50ms);
    }
    return got;
  }

 private:
  Process proc_;
  int port_ = 0;
};

// The one span named `name` (with that parent, if given): there must be exactly one.
json span_named(const json& spans, const std::string& name, const std::string& parent = "") {
  json found;
  int count = 0;
  for (const auto& s : spans) {
    if (s["name"] == name && (parent.empty() || s["parentSpanId"] == parent)) {
      found = s;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << name << " in " << spans.dump(1);
  return found;
}

std::vector<json> read_lines(const std::string& file) {
  std::vector<json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line, nullptr, false));
  return out;
}

std::string slurp(const std::string& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The same metrics over OTLP: every metric_interval_ms, and once more as the host stops,
// each as its OpenTelemetry name, unit and attributes, cumulative since the host started.
TEST(Metrics, GoToTheCollectorOverOtlpAtTheIntervalAndOnceMoreAtShutdown) {
  OtlpReceiver otlp;
  TempDir dir;
  const std::string cfg = dir.str() + "/mcp-host.yaml";
  std::ofstream(cfg) << "telemetry:\n  metrics: false\n  otlp: { endpoint: " << otlp.base()
                     << ", metrics_interval_ms: 100, sampling: 0 }\n"
                     << config_yaml(dir.str() + "/state", kPlugins);
  Process p({MCPH_BINARY, "serve", "--config", cfg});
  p.send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p.read_response(0).contains("result")) << p.stderr_text();
  for (int id = 1; id <= 3; ++id) {
    p.send(call(id, "echo", {{"text", "x"}}));
    ASSERT_EQ(text_of(p.read_response(id)), "x");
  }
  p.send(call(4, "test_error_handling"));
  ASSERT_TRUE(p.read_response(4)["result"]["isError"]);

  // The points of the newest export (all of one export share its time).
  auto newest = [&] {
    const json got = otlp.control("GET", "metrics");
    json out = json::array();
    int64_t time = 0;
    for (const auto& pt : got["points"]) time = std::max<int64_t>(time, pt["time"]);
    for (const auto& pt : got["points"]) {
      if (pt["time"] == time) out.push_back(pt);
    }
    return out;
  };
  auto find = [](const json& points, const std::string& name, const json& attributes) {
    for (const auto& pt : points) {
      if (pt["name"] != name) continue;
      bool match = true;
      for (const auto& [k, v] : attributes.items()) match = match && pt["attributes"].value(k, json()) == v;
      if (match) return pt;
    }
    return json();
  };
  const json echo_calls{{"mcp.method.name", "tools/call"}, {"gen_ai.tool.name", "echo"}, {"mcp_host.plugin.instance", "echo"}};
  json points;
  for (int i = 0; i < 100; ++i) {
    points = newest();
    const json echo = find(points, "mcp.server.operation.duration", echo_calls);
    if (!echo.is_null() && echo["count"] == 3) break;
    std::this_thread::sleep_for(50ms);
  }
  const json echo = find(points, "mcp.server.operation.duration", echo_calls);
  ASSERT_FALSE(echo.is_null()) << points.dump(1) << p.stderr_text();
  EXPECT_EQ(echo["type"], "histogram");
  EXPECT_EQ(echo["unit"], "s");
  EXPECT_EQ(echo["count"], 3);
  EXPECT_EQ(echo["bounds"], json::parse("[0.01,0.02,0.05,0.1,0.2,0.5,1,2,5,10,30,60,120,300]"));
  EXPECT_EQ(echo["attributes"]["gen_ai.operation.name"], "execute_tool");
  EXPECT_EQ(echo["attributes"]["mcp.protocol.version"], "2025-11-25");
  EXPECT_EQ(echo["attributes"]["network.transport"], "pipe");
  EXPECT_FALSE(echo["attributes"].contains("error.type"));  // absent, not empty
  EXPECT_LT(echo["start"], echo["time"]);
  EXPECT_EQ(echo["resource"]["service.name"], "mcp-host");
  EXPECT_EQ(find(points, "mcp.server.operation.duration", {{"gen_ai.tool.name", "test_error_handling"}})["attributes"]["error.type"], "tool_error");
  const json up = find(points, "mcp_host.plugin.instance_up", {{"mcp_host.plugin.instance", "fix"}});
  EXPECT_EQ(up["type"], "gauge") << points.dump(1);
  EXPECT_EQ(up["value"], 1);
  const json errors = find(points, "mcp_host.store.errors", json::object());
  EXPECT_EQ(errors["type"], "sum");
  EXPECT_EQ(errors["monotonic"], true);
  EXPECT_EQ(errors["value"], 0);
  EXPECT_TRUE(find(points, "mcp.server.session.duration", json::object()).is_null());  // the session goes on

  // Stopping: a last export, with the session's duration.
  const int before = otlp.control("GET", "metrics")["exports"];
  p.close_stdin();
  EXPECT_EQ(p.wait(15s), 0);
  EXPECT_GT(otlp.control("GET", "metrics")["exports"].get<int>(), before);
  const json session = find(newest(), "mcp.server.session.duration", {{"network.transport", "pipe"}});
  ASSERT_FALSE(session.is_null()) << newest().dump(1);
  EXPECT_EQ(session["count"], 1);
  EXPECT_TRUE(otlp.control("GET", "spans")["rejected"].empty());
  EXPECT_TRUE(otlp.control("GET", "spans")["spans"].empty());  // sampling 0: no traces
}

TEST(Traces, AStdioCallJoinsTheClientsTraceDownToTheUpstreamApiAndIsAudited) {
  CodesphereFake fake({"tok-trace-9q"});
  OtlpReceiver otlp;
  TempDir dir;
  const std::string cfg = dir.str() + "/mcp-host.yaml", audit = dir.str() + "/audit.log";
  std::ofstream(cfg) << "telemetry:\n  metrics: false\n  audit_log: " << audit << "\n  otlp:\n    endpoint: " << otlp.base()
                     << "\n    batch_delay_ms: 20\n    headers: { x-collector-key: hdr-secret-3x }\n"
                     << config_yaml(dir.str() + "/state",
                                    "  - name: echo\n    library: example-echo\n    record_arguments: true\n"
                                    "  - name: fix\n    library: conformance-fixtures\n"
                                    "  - name: cs\n    library: codesphere\n    credentials: { api_token: tok-trace-9q }\n"
                                    "    settings: { base_url: \"" + fake.base() + "/api\" }\n    task_support: optional\n");
  Process p({MCPH_BINARY, "serve", "--config", cfg});
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736", client_span = "00f067aa0ba902b7";
  const json meta{{"traceparent", "00-" + trace + "-" + client_span + "-01"}, {"tracestate", "rojo=00f067aa0ba902b7"}};
  // One at a time, so the audit lines come in this order.
  auto ask = [&](json m) {
    p.send(m);
    if (!m.contains("id")) return json();
    json r = p.read_response(m["id"]);
    EXPECT_FALSE(r.is_null()) << p.stderr_text();
    return r;
  };
  ask(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                            {"clientInfo", {{"name", "audit-client"}, {"version", "1.2"}}}}));
  ask(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  json list = call(1, "list_workspaces", {{"teamId", 1}});
  list["params"]["_meta"] = meta;
  const json listed = ask(list);
  EXPECT_TRUE(listed["result"].contains("structuredContent") && !listed["result"].value("isError", false)) << listed << p.stderr_text();
  EXPECT_TRUE(ask(call(2, "test_error_handling"))["result"]["isError"]);
  EXPECT_EQ(ask(call(3, "no_such_tool"))["error"]["code"], -32602);
  EXPECT_EQ(text_of(ask(call(4, "echo", {{"text", "opted-in-words"}}))), "opted-in-words");
  json as_task = call(5, "list_plans");
  as_task["params"]["task"] = {{"ttl", 60000}};
  EXPECT_TRUE(ask(as_task)["result"].contains("task"));

  // Seven server spans (initialize, initialized, five calls), the task's work, two HTTP spans.
  const json got = otlp.spans(10);
  ASSERT_TRUE(got.is_object()) << p.stderr_text();
  EXPECT_TRUE(got["rejected"].empty()) << got["rejected"];
  const json& spans = got["spans"];
  EXPECT_EQ(spans.size(), 10u);
  EXPECT_EQ(span_named(spans, "notifications/initialized")["attributes"]["mcp.method.name"], "notifications/initialized");
  const json server = span_named(spans, "tools/call list_workspaces");
  EXPECT_EQ(server["kind"], 2);  // SERVER
  EXPECT_EQ(server["traceId"], trace);
  EXPECT_EQ(server["parentSpanId"], client_span);
  EXPECT_EQ(server["traceState"], "rojo=00f067aa0ba902b7");
  const json& a = server["attributes"];
  EXPECT_EQ(a["mcp.method.name"], "tools/call");
  EXPECT_EQ(a["gen_ai.tool.name"], "list_workspaces");
  EXPECT_EQ(a["gen_ai.operation.name"], "execute_tool");
  EXPECT_EQ(a["jsonrpc.request.id"], "1");
  EXPECT_EQ(a["mcp.protocol.version"], "2025-11-25");
  EXPECT_EQ(a["network.transport"], "pipe");
  EXPECT_FALSE(a.contains("error.type"));
  EXPECT_FALSE(a.contains("gen_ai.tool.call.arguments"));  // codesphere did not opt in
  EXPECT_EQ(server["resource"]["service.name"], "mcp-host");

  const json http = span_named(spans, "GET", server["spanId"]);
  EXPECT_EQ(http["kind"], 3);  // CLIENT
  EXPECT_EQ(http["traceId"], trace);
  EXPECT_EQ(http["parentSpanId"], server["spanId"]);
  EXPECT_EQ(http["attributes"]["http.request.method"], "GET");
  EXPECT_EQ(http["attributes"]["http.response.status_code"], 200);
  EXPECT_EQ(http["attributes"]["server.address"], "127.0.0.1");
  EXPECT_EQ(http["attributes"]["server.port"], fake.port());
  EXPECT_EQ(http["attributes"]["url.full"], fake.base() + "/api/workspaces/team/1");
  EXPECT_GE(http["start"], server["start"]);
  EXPECT_LE(http["end"], server["end"]);
  // The upstream API saw the same trace, as the HTTP span's child.
  std::string upstream;
  for (const auto& r : fake.requests()) {
    if (r["path"] == "/workspaces/team/1") upstream = r.value("traceparent", "");
  }
  EXPECT_EQ(upstream, "00-" + trace + "-" + http["spanId"].get<std::string>() + "-01");

  const json tool_error = span_named(spans, "tools/call test_error_handling");
  EXPECT_EQ(tool_error["attributes"]["error.type"], "tool_error");
  EXPECT_EQ(tool_error["status"]["code"], 2);  // ERROR
  EXPECT_EQ(tool_error["parentSpanId"], "");   // no traceparent: a trace of its own
  EXPECT_NE(tool_error["traceId"], trace);
  const json unknown = span_named(spans, "tools/call no_such_tool");
  EXPECT_EQ(unknown["attributes"]["error.type"], "-32602");
  EXPECT_EQ(unknown["attributes"]["rpc.response.status_code"], "-32602");
  EXPECT_EQ(unknown["status"]["code"], 2);
  EXPECT_EQ(span_named(spans, "tools/call echo")["attributes"]["gen_ai.tool.call.arguments"], "{\"text\":\"opted-in-words\"}");
  // The task: its request's span ends with the answer; its work is a span of its own under
  // it, and the work's upstream request hangs below that.
  const json task_request = span_named(spans, "tools/call list_plans");
  const json work = span_named(spans, "execute_tool list_plans", task_request["spanId"]);
  EXPECT_EQ(work["kind"], 1);  // INTERNAL
  EXPECT_EQ(work["traceId"], task_request["traceId"]);
  EXPECT_EQ(work["attributes"]["gen_ai.tool.name"], "list_plans");
  EXPECT_EQ(span_named(spans, "GET", work["spanId"])["attributes"]["url.full"], fake.base() + "/api/metadata/workspace-plans");
  // The collector's header went with every export, and no secret went into a span.
  EXPECT_EQ(got["headers"][0]["x-collector-key"], "hdr-secret-3x");
  EXPECT_FALSE(contains(spans.dump(), "tok-trace-9q"));
  EXPECT_FALSE(contains(spans.dump(), "hdr-secret-3x"));

  p.close_stdin();
  EXPECT_EQ(p.wait(15s), 0);
  const auto lines = read_lines(audit);
  ASSERT_EQ(lines.size(), 7u) << slurp(audit);
  const std::vector<std::string> methods = {"initialize", "notifications/initialized", "tools/call", "tools/call", "tools/call", "tools/call",
                                            "tools/call"};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["method"], methods[i]) << lines[i];
    EXPECT_EQ(lines[i]["client"], (json{{"name", "audit-client"}, {"version", "1.2"}})) << lines[i];
    EXPECT_TRUE(lines[i]["time"].get<std::string>().ends_with("Z"));
    EXPECT_TRUE(lines[i]["duration_ms"].is_number());
    EXPECT_FALSE(lines[i].contains("http_status"));  // stdio
    EXPECT_FALSE(lines[i].contains("principal"));    // nobody signed in
  }
  EXPECT_EQ(lines[2]["tool"], "list_workspaces");
  EXPECT_EQ(lines[2]["instance"], "cs");
  EXPECT_EQ(lines[2]["is_error"], false);
  EXPECT_EQ(lines[2]["trace_id"], trace);
  EXPECT_EQ(lines[2]["upstream"], (json::array({{{"method", "GET"}, {"host", "127.0.0.1"}, {"outcome", "200"}}})));
  EXPECT_FALSE(lines[2].contains("arguments"));
  EXPECT_EQ(lines[3]["is_error"], true);
  EXPECT_EQ(lines[4]["rpc_error"], -32602);
  EXPECT_EQ(lines[5]["arguments"], (json{{"text", "opted-in-words"}}));
  EXPECT_FALSE(contains(slurp(audit), "tok-trace-9q"));
  EXPECT_FALSE(contains(slurp(audit), "hdr-secret-3x"));
}

// 2026-07-28 over HTTP: the span says tcp and the revision; the audit line has the HTTP
// status, and a request refused for its token has a line of its own. A receiver that is
// slow, then one that is gone, costs the calls nothing; the spans it could not take are
// counted on /metrics.
// Work a plugin does after the call that started it (codegen's poller following the run,
// its orchestrator resuming the parent run) is traced too: each of those requests is the
// root of a trace of its own that links to the call's span (ABI 1.4 trace_link), and
// carries its own traceparent upstream.
TEST(Traces, ACodegenRunsPollsAndItsOrchestratorsResumeLinkToTheCallThatStartedThem) {
  CodegenFake fake({"tok-link-7c"});
  ASSERT_GT(fake.port(), 0);
  OtlpReceiver otlp;
  TempDir dir;
  const std::string cfg = dir.str() + "/mcp-host.yaml";
  std::ofstream(cfg) << "telemetry:\n  metrics: false\n  otlp: { endpoint: " << otlp.base() << ", batch_delay_ms: 20 }\n"
                     << config_yaml(dir.str() + "/state",
                                    "  - name: cg\n    library: codegen\n    credentials: { api_token: tok-link-7c, org_id: \"42\" }\n"
                                    "    settings: { base_url: \"" + fake.url() + "\", poll_interval_ms: 20, poll_max_interval_ms: 100 }\n");
  const int64_t orch = fake.seed({{"status", "COMPLETE"}, {"resume_script", {{"polls", nullptr}}}});
  fake.script_next({{"polls", 1}, {"final", "COMPLETE"}, {"result", "child done"}});
  Process p({MCPH_BINARY, "serve", "--config", cfg});
  p.send(req(0, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                               {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  ASSERT_TRUE(p.read_response(0).contains("result")) << p.stderr_text();
  const std::string trace = "0af7651916cd43dd8448eb211c80319c", client_span = "b7ad6b7169203331";
  json start = call(1, "codegen_new", {{"query", "child"}, {"orchestrator_run_id", orch}});
  start["params"]["_meta"] = {{"traceparent", "00-" + trace + "-" + client_span + "-01"}};
  p.send(start);
  const json started = p.read_response(1);
  ASSERT_TRUE(started["result"].contains("structuredContent") && !started["result"].value("isError", false)) << started << p.stderr_text();
  const int64_t run = started["result"]["structuredContent"]["agent_run_id"];

  // The child is polled to its end, then the idle orchestrator resumed with its result.
  json spans;
  auto resume_span = [&] {
    for (const auto& s : spans) {
      if (s["name"] == "POST" && s["attributes"].value("url.full", "").ends_with("/agent/run/resume")) return s;
    }
    return json();
  };
  for (int i = 0; i < 300 && resume_span().is_null(); ++i) {
    std::this_thread::sleep_for(50ms);
    spans = otlp.control("GET", "spans")["spans"];
  }
  ASSERT_FALSE(resume_span().is_null()) << spans.dump(1) << p.stderr_text();
  EXPECT_EQ(fake.resumes_of(orch), 1u);

  // In the call: the server span under the client's, the orchestrator's check and the create below it.
  const json server = span_named(spans, "tools/call codegen_new");
  EXPECT_EQ(server["traceId"], trace);
  EXPECT_EQ(server["parentSpanId"], client_span);
  span_named(spans, "POST", server["spanId"]);
  span_named(spans, "GET", server["spanId"]);
  // After it: the polls of the child (ACTIVE, then COMPLETE), the orchestrator's status
  // check and its resume; each a trace of its own, linked to the call.
  const json link = json::array({{{"traceId", trace}, {"spanId", server["spanId"]}}});
  std::map<std::string, int> background;  // path -> spans
  for (const auto& s : spans) {
    if (s["attributes"].value("mcp_host.plugin.instance", "") != "cg" || s["parentSpanId"] != "") continue;
    const std::string url = s["attributes"]["url.full"];
    ++background[url.substr(fake.url().size())];
    EXPECT_NE(s["traceId"], trace) << s;
    EXPECT_EQ(s["links"], link) << s;
    EXPECT_EQ(s["kind"], 3) << s;  // CLIENT
  }
  EXPECT_GE(background["/v1/organizations/42/agent/run/" + std::to_string(run)], 2) << spans.dump(1);
  EXPECT_GE(background["/v1/organizations/42/agent/run/" + std::to_string(orch)], 1) << spans.dump(1);
  EXPECT_EQ(background["/v1/organizations/42/agent/run/resume"], 1) << spans.dump(1);
  // The API saw the resume under that span's own trace.
  const json posts = fake.requests("/agent/run/resume$", "POST");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].value("traceparent", ""),
            "00-" + resume_span()["traceId"].get<std::string>() + "-" + resume_span()["spanId"].get<std::string>() + "-01");
  EXPECT_FALSE(contains(spans.dump(), "tok-link-7c"));
  p.close_stdin();
  EXPECT_EQ(p.wait(15s), 0);
}

TEST(Traces, AnHttpHostKeepsAnsweringWhenTheCollectorIsSlowOrGone) {
  OtlpReceiver otlp;
  otlp.control("POST", "mode", {{"delayMs", 1500}});
  TempDir dir;
  const std::string audit = dir.str() + "/audit.log";
  HttpHost host("  - name: echo\n    library: example-echo\n", "    auth: { mode: bearer, bearer_tokens: [bear-secret-1] }\n", "",
                {}, "telemetry:\n  audit_log: " + audit + "\n  otlp: { endpoint: \"" + otlp.base() +
                        "\", batch_delay_ms: 10, queue_size: 4, timeout_ms: 5000 }\n");
  ASSERT_GT(host.port(), 0);
  auto c = host.client();
  const httplib::Headers h{{"Authorization", "Bearer bear-secret-1"}, {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"},
                           {"Mcp-Name", "echo"}, {"Accept", "application/json, text/event-stream"}};
  const json meta{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"}, {"io.modelcontextprotocol/clientCapabilities", json::object()},
                  {"io.modelcontextprotocol/clientInfo", {{"name", "modern-client"}, {"version", "9"}}}};
  for (int i = 0; i < 40; ++i) {
    json m = call(i, "echo", {{"text", "n"}});
    m["params"]["_meta"] = meta;
    auto r = c->Post("/mcp", h, m.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    ASSERT_EQ(text_of(body_json(r)), "n");
  }
  auto refused = c->Post("/mcp", httplib::Headers{{"Authorization", "Bearer wrong-token-2"}}, call(99, "echo").dump(), "application/json");
  ASSERT_TRUE(refused && refused->status == 401);
  // With the receiver answering every 1.5 s and room for 4 spans, most are dropped.
  auto scrape = [&] {
    auto r = c->Get("/metrics");
    return r ? r->body : std::string();
  };
  EXPECT_GT(sample(scrape(), "mcp_host_trace_spans_dropped_total{reason=\"queue_full\"}"), 20) << scrape();
  EXPECT_EQ(sample(scrape(), "mcp_host_http_refused_total{http_response_status_code=\"401\"}"), 1);
  const json got = otlp.spans(1);
  ASSERT_FALSE(got["spans"].empty());
  const json& a = got["spans"][0]["attributes"];
  EXPECT_EQ(a["network.transport"], "tcp");
  EXPECT_EQ(a["mcp.protocol.version"], "2026-07-28");
  EXPECT_TRUE(got["rejected"].empty()) << got["rejected"];

  // Gone: exports fail (counted), calls still answer.
  otlp.control("POST", "mode", {{"status", 503}, {"delayMs", 0}});
  for (int i = 100; i < 110; ++i) {
    json m = call(i, "echo", {{"text", "m"}});
    m["params"]["_meta"] = meta;
    auto r = c->Post("/mcp", h, m.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200);
  }
  double failed = 0;
  for (int i = 0; i < 200 && failed <= 0; ++i) {
    std::this_thread::sleep_for(50ms);
    failed = sample(scrape(), "mcp_host_trace_spans_dropped_total{reason=\"export_failed\"}");
  }
  EXPECT_GT(failed, 0) << scrape();

  const auto lines = read_lines(audit);
  ASSERT_EQ(lines.size(), 51u) << slurp(audit);
  EXPECT_EQ(lines[0]["method"], "tools/call");
  EXPECT_EQ(lines[0]["http_status"], 200);
  EXPECT_EQ(lines[0]["client"]["name"], "modern-client");
  EXPECT_EQ(lines[0]["id"], 0);
  EXPECT_EQ(lines[0]["is_error"], false);
  EXPECT_EQ(lines[0]["trace_id"].get<std::string>().size(), 32u);
  EXPECT_EQ(lines[40]["http_status"], 401);
  EXPECT_FALSE(lines[40].contains("method"));
  EXPECT_FALSE(contains(slurp(audit), "bear-secret-1"));
  EXPECT_FALSE(contains(slurp(audit), "wrong-token-2"));
}

TEST(Metrics, PrometheusScrapesAnHttpHostUnderLoad) {
  HttpHost host(kPlugins);
  ASSERT_GT(host.port(), 0);
  TempDir dir;
  const int prom_port = free_port();
  std::ofstream(dir.str() + "/prometheus.yml") << "global: { scrape_interval: 1s }\n"
                                                  "scrape_configs:\n  - job_name: mcp-host\n    static_configs:\n"
                                                  "      - targets: [\"127.0.0.1:" << host.port() << "\"]\n";
  Process prom({"/usr/bin/prometheus", "--config.file=" + dir.str() + "/prometheus.yml", "--storage.tsdb.path=" + dir.str() + "/data",
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});

  // A scripted load: 20 echo calls over a legacy session, 5 tool errors.
  auto c = host.client();
  auto init = c->Post("/mcp", httplib::Headers{{"Accept", "application/json, text/event-stream"}},
                      req(0, "initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                                            {"clientInfo", {{"name", "t"}, {"version", "1"}}}}).dump(),
                      "application/json");
  ASSERT_TRUE(init && init->status == 200);
  const httplib::Headers session{{"Mcp-Session-Id", init->get_header_value("Mcp-Session-Id")}, {"MCP-Protocol-Version", "2025-06-18"},
                                 {"Accept", "application/json, text/event-stream"}};
  for (int i = 0; i < 25; ++i) {
    const json body = i < 20 ? call(i + 1, "echo", {{"text", "x"}}) : call(i + 1, "test_error_handling");
    auto r = c->Post("/mcp", session, body.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200);
  }

  httplib::Client pc("127.0.0.1", prom_port);
  pc.set_read_timeout(5, 0);
  auto query = [&](const std::string& q) {
    auto r = pc.Get("/api/v1/query?query=" + httplib::detail::encode_query_param(q));
    json answer = r ? json::parse(r->body, nullptr, false) : json();
    return answer.is_object() ? answer : json::object();  // a Prometheus still starting answers in plain text
  };
  auto value = [&](const std::string& q) {
    json r = query(q);
    if (!r.contains("data") || !r["data"].is_object()) return -1.0;
    const json& result = r["data"]["result"];
    return result.is_array() && !result.empty() ? std::stod(result[0]["value"][1].get<std::string>()) : -1.0;
  };
  double echo = -1;
  for (int i = 0; i < 150 && echo != 20; ++i) {  // the first scrapes come within seconds
    std::this_thread::sleep_for(100ms);
    echo = value("sum(mcp_server_operation_duration_seconds_count{gen_ai_tool_name=\"echo\",error_type=\"\"})");
  }
  EXPECT_EQ(echo, 20) << query("up").dump() << prom.stderr_text();
  EXPECT_EQ(value("sum(mcp_server_operation_duration_seconds_count{gen_ai_tool_name=\"test_error_handling\",error_type=\"tool_error\"})"), 5);
  EXPECT_EQ(value("sum by (network_transport) (mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\"})"), 25);
  // The histogram holds every call in its +Inf bucket, and the buckets are cumulative.
  EXPECT_EQ(value("sum(mcp_server_operation_duration_seconds_bucket{gen_ai_tool_name=\"echo\",le=\"+Inf\"})"), 20);
  EXPECT_GT(value("sum(mcp_server_operation_duration_seconds_bucket{gen_ai_tool_name=\"echo\",le=\"300\"})"), 0);
  EXPECT_EQ(value("up{job=\"mcp-host\"}"), 1);
  prom.signal(SIGTERM);
  EXPECT_TRUE(prom.wait(20s).has_value());
}

}  // namespace
}  // namespace mcph::testing
