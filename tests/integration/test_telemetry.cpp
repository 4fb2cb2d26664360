// Metrics through the real binary: the exposition promtool accepts, the counts a scripted
// load leaves (per tool and outcome, the plugins' outbound HTTP), a stdio host scraped on
// telemetry.metrics_listen, and a real Prometheus (Debian's, started here on a free port,
// stopped by PID) scraping an HTTP host and answering PromQL over its API.
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "codesphere_fake.hpp"
#include "http_host.hpp"
#include "process.hpp"
#include "rpc.hpp"

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
  std::ofstream(cfg) << "telemetry: { metrics_listen: \"127.0.0.1:0\" }\n"
                     << config_yaml(dir.str() + "/state",
                                    kPlugins + "  - name: cs\n    library: codesphere\n    credentials: { api_token: tok-metrics-5d }\n"
                                               "    settings: { base_url: \"" + fake.base() + "/api\" }\n");
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
  std::set<int> answered;  // calls run side by side: answers come in any order
  while (answered.size() < static_cast<size_t>(id - 1)) {
    const json m = p.read();
    if (m.is_null()) break;
    if (m.contains("id")) answered.insert(m["id"].get<int>());
  }
  ASSERT_EQ(answered.size(), static_cast<size_t>(id - 1)) << p.stderr_text();

  services::HttpClient client;
  services::HttpRequest r;
  r.url = url;
  const std::string text = client.send(r).body;
  const std::string common = "mcp_protocol_version=\"2025-11-25\",network_transport=\"pipe\"";
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"echo\","
                         "gen_ai_operation_name=\"execute_tool\"," + common + ",mcp_host_instance=\"echo\"}"), 3) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"test_error_handling\","
                         "gen_ai_operation_name=\"execute_tool\",error_type=\"tool_error\"," + common + ",mcp_host_instance=\"fix\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"no_such_tool\","
                         "gen_ai_operation_name=\"execute_tool\",error_type=\"-32602\",rpc_response_status_code=\"-32602\"," + common + "}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_server_operation_duration_seconds_count{mcp_method_name=\"initialize\"," + common + "}"), 1) << text;
  // The plugin's request to the (fake) Codesphere API, by instance and status.
  EXPECT_EQ(sample(text, "http_client_request_duration_seconds_count{mcp_host_instance=\"cs\",http_request_method=\"GET\","
                         "http_response_status_code=\"200\",server_address=\"127.0.0.1\"}"), 1) << text;
  EXPECT_EQ(sample(text, "mcp_host_plugin_instance_up{mcp_host_instance=\"cs\",isolation=\"" +
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
