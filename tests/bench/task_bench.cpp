// MCP tasks' figures (issue 17): p50 and p99 of creating a task (a 2026-07-28 tools/call
// answered with CreateTaskResult, durable in the store) and of a tasks/get of a finished
// one, through the protocol engine with the conformance-fixtures plugin, one client thread;
// and the store's growth per thousand finished tasks. On SQLite (a temporary folder) and on
// PostgreSQL 15 (started here, on loopback).
//   mcph-bench-tasks [tasks]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "host_fixture.hpp"
#include "postgres.hpp"

using namespace mcph;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  double p50, p99;
};
Stats stats(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

json request(const std::string& method, json params) {
  params["_meta"] = json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                         {"io.modelcontextprotocol/clientCapabilities", {{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}}}};
  return json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", std::move(params)}};
}

// Bytes the store holds for tasks: keys and values of namespace "tasks".
size_t task_bytes(store::StateStore& s) {
  size_t bytes = 0;
  (void)s.list("tasks", "", [&](std::string_view k, std::string_view v) { return bytes += k.size() + v.size(), true; });
  return bytes;
}

void run(const char* backend, std::unique_ptr<store::StateStore> state, int n) {
  mcph::testing::TempDir dir;
  auto cfg = config::load_string(mcph::testing::config_yaml(dir.str(), "  - { name: fixtures, library: conformance-fixtures }\n"), dir.str());
  if (!cfg || !state->check()) std::exit(1);
  tasks::ServiceOptions options;
  options.limits.max_per_user = options.limits.max_total = 1000000;
  auto service = std::make_unique<tasks::TaskService>(*state, options);
  auto registry = plugins::Registry::load(**cfg, plugins::Services{state.get(), nullptr, nullptr, service.get()});
  if (!registry) std::exit(1);
  protocol::EngineOptions eo;
  eo.tasks = service.get();
  auto engine = std::make_unique<protocol::Engine>(**registry, eo);
  auto channel = std::make_shared<mcph::testing::RecordingChannel>();

  const size_t before = task_bytes(*state);
  std::vector<std::string> ids;
  std::vector<double> create_us, get_us;
  for (int i = 0; i < n; ++i) {
    const json call = request("tools/call", {{"name", "slow_compute"}, {"arguments", {{"seconds", 0}, {"label", "bench"}}}});
    auto session = std::make_shared<protocol::Session>();
    const auto t0 = Clock::now();
    json r = engine->handle(call, *session, channel);
    create_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (r["result"].value("resultType", "") != "task") {
      std::fprintf(stderr, "%s: no task: %s\n", backend, r.dump().c_str());
      std::exit(1);
    }
    ids.push_back(r["result"]["taskId"]);
  }
  engine->wait_idle(Clock::now() + std::chrono::seconds(60));
  for (int i = 0; i < n; ++i) {
    const json get = request("tasks/get", {{"taskId", ids[(i * 7919) % ids.size()]}});
    protocol::Session session;
    const auto t0 = Clock::now();
    json r = engine->handle(get, session, channel);
    get_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (r["result"].value("status", "") != "completed") {
      std::fprintf(stderr, "%s: task not completed: %s\n", backend, r.dump().c_str());
      std::exit(1);
    }
  }
  const size_t growth = task_bytes(*state) - before;
  const Stats c = stats(create_us), g = stats(get_us);
  std::printf("%-10s task create  %6d: p50 %7.1f us, p99 %7.1f us\n", backend, n, c.p50, c.p99);
  std::printf("%-10s tasks/get    %6d: p50 %7.1f us, p99 %7.1f us\n", backend, n, g.p50, g.p99);
  std::printf("%-10s store growth per 1000 finished tasks: %.0f KiB (%zu bytes each; result \"computed bench\")\n", backend,
              1000.0 * static_cast<double>(growth) / n / 1024, growth / static_cast<size_t>(n));
  registry->get()->begin_shutdown();
  engine.reset();
  registry->reset();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto dir = std::filesystem::temp_directory_path() / ("mcph-bench-tasks-" + std::to_string(::getpid()));
  {
    auto sqlite = store::StateStore::open(dir.string());
    if (!sqlite) return 1;
    run("sqlite", std::move(*sqlite), n);
  }
  std::filesystem::remove_all(dir);
  mcph::testing::PostgresServer pg;
  config::StoreConfig cfg;
  cfg.backend = "postgresql";
  cfg.url = pg.url("bench");
  auto postgres = store::StateStore::open(cfg, "");
  if (!postgres) return 1;
  run("postgresql", std::move(*postgres), n);
  return 0;
}
