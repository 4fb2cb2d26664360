// The ceiling: a bare cpp-httplib server answering every POST with a fixed body, tuned as
// the host's HTTP transport is (TCP_NODELAY, long keep-alive, worker pool). Run by
// scripts/bench.sh next to the real host. Prints its port, serves until killed. It is also
// the bench's live OTLP receiver: POST /v1/traces and /v1/metrics are accepted (and not
// decoded, so the figures are the host's cost of telemetry, not a collector's).
#include <cstdio>

#include <httplib.h>

int main(int argc, char** argv) {
  const int workers = argc > 1 ? std::atoi(argv[1]) : 64;
  httplib::Server server;
  server.new_task_queue = [workers] { return new httplib::ThreadPool(static_cast<size_t>(workers)); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100000);
  const std::string body = R"({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello world"}]}})";
  server.Post("/mcp", [&](const httplib::Request&, httplib::Response& res) { res.set_content(body, "application/json"); });
  for (const char* path : {"/v1/traces", "/v1/metrics"}) {
    server.Post(path, [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
  }
  const int port = server.bind_to_any_port("127.0.0.1");
  std::printf("%d\n", port);
  std::fflush(stdout);
  server.listen_after_bind();
}
