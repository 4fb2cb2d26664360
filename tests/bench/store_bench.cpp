// Store latency (issue 16's figures): p50 and p99 of a plugin state put and of a lease
// acquire (a renewal, as a poller does it), one thread, on SQLite (a temporary folder) and
// on PostgreSQL 15 (started here, tests/support/postgres.hpp, on loopback).
//   mcph-bench-store [operations]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "postgres.hpp"
#include "store/state_store.hpp"

using namespace mcph;
using Clock = std::chrono::steady_clock;

namespace {

template <typename Op>
void measure(const char* backend, const char* what, int n, Op op) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    if (!op(i)) {
      std::fprintf(stderr, "%s %s failed\n", backend, what);
      std::exit(1);
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("%-10s %-14s %6d ops: p50 %7.1f us, p99 %7.1f us\n", backend, what, n, us[us.size() / 2], us[us.size() * 99 / 100]);
}

void run(const char* backend, store::StateStore& s, int n) {
  if (!s.check()) std::exit(1);
  measure(backend, "state put", n, [&](int i) { return s.put("bench", "task/" + std::to_string(i % 100), std::string(200, 'x')).ok(); });
  measure(backend, "lease acquire", n, [&](int) {
    auto r = s.acquire("bench", "poller", "replica-1/bench", std::chrono::seconds(15));
    return r.ok() && *r;
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto dir = std::filesystem::temp_directory_path() / ("mcph-bench-store-" + std::to_string(::getpid()));
  {
    auto sqlite = store::StateStore::open(dir.string());
    if (!sqlite) return 1;
    run("sqlite", **sqlite, n);
  }
  std::filesystem::remove_all(dir);
  testing::PostgresServer pg;
  config::StoreConfig cfg;
  cfg.backend = "postgresql";
  cfg.url = pg.url("bench");
  auto postgres = store::StateStore::open(cfg, "");
  if (!postgres) return 1;
  run("postgresql", **postgres, n);
  return 0;
}
