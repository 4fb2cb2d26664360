// Benchmarks a stdio MCP server (run by scripts/bench.sh, not by ctest):
//   mcph-bench-stdio cold RUNS
//     cold start of the real binary: spawn -> initialize response, both examples loaded
//     (median of RUNS)
//   mcph-bench-stdio echo CALLS INFLIGHT ERA [COMMAND...]
//     tools/call echo with INFLIGHT requests in flight: calls per second and the round
//     trip's p50/p99 (a request's write to its answer's read). ERA is "legacy" (initialize
//     first, 2025-11-25) or "2026" (2026-07-28: sessionless, the era in each request's
//     _meta). COMMAND is the server (default: the real binary with example-echo), e.g. the
//     bare ceiling mcph-bench-bare-stdio.
#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "host_fixture.hpp"
#include "process.hpp"

using namespace mcph::testing;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kInit =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}})"
    "\n";

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::vector<std::string> host_command(const TempDir& dir, const std::string& plugins) {
  const std::string cfg = dir.str() + "/bench.yaml";
  std::ofstream(cfg) << config_yaml(dir.str() + "/state", plugins);
  return {MCPH_BINARY, "serve", "--config", cfg, "--log-level", "warn"};
}

int cold(int runs) {
  TempDir dir;
  const auto argv = host_command(dir, "  - { name: echo, library: example-echo }\n  - { name: counter, library: example-counter }\n");
  std::vector<double> starts, rss_mib;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    Process p(argv);
    p.write_raw(kInit);
    if (!p.read_line(std::chrono::seconds(10))) {
      std::fprintf(stderr, "no initialize response\n");
      return 1;
    }
    starts.push_back(ms(Clock::now() - t0));
    // Its resident memory, idle after the handshake.
    std::ifstream status("/proc/" + std::to_string(p.pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("VmRSS:")) rss_mib.push_back(std::atof(line.c_str() + 6) / 1024.0);
    }
    p.close_stdin();
    p.wait();
  }
  std::sort(starts.begin(), starts.end());
  std::sort(rss_mib.begin(), rss_mib.end());
  std::printf("cold start (spawn -> initialize response), %d runs: median %.2f ms, min %.2f ms, max %.2f ms; idle RSS median %.1f MiB\n",
              runs, starts[starts.size() / 2], starts.front(), starts.back(), rss_mib.empty() ? 0.0 : rss_mib[rss_mib.size() / 2]);
  return 0;
}

int echo(int calls, int inflight, const std::string& era, std::vector<std::string> command) {
  TempDir dir;
  if (command.empty()) command = host_command(dir, "  - { name: echo, library: example-echo }\n");
  const bool modern = era == "2026";
  const std::string meta =
      modern ? R"(,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}})"
             : "";
  Process p(command);
  if (!modern) {
    p.write_raw(kInit);
    p.read_line();
    p.write_raw("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
  }
  auto request = [&](int id) {
    return "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) +
           ",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello world\"}" + meta + "}}\n";
  };
  std::map<int, Clock::time_point> sent_at;
  std::vector<double> rtt_us;
  rtt_us.reserve(static_cast<size_t>(calls));
  int sent = 0, received = 0;
  const auto t0 = Clock::now();
  std::string out;
  for (; sent < std::min(inflight, calls); ++sent) out += request(sent + 1);
  const auto first = Clock::now();
  for (int id = 1; id <= sent; ++id) sent_at[id] = first;
  p.write_raw(out);
  while (received < calls) {
    auto line = p.read_line(std::chrono::seconds(10));
    if (!line) {
      std::fprintf(stderr, "timed out after %d responses\n", received);
      return 1;
    }
    const auto now = Clock::now();
    const size_t at = line->find("\"id\":");
    if (line->find("\"result\"") == std::string::npos || at == std::string::npos) {
      std::fprintf(stderr, "unexpected: %s\n", line->c_str());
      return 1;
    }
    const int id = std::atoi(line->c_str() + at + 5);
    if (auto it = sent_at.find(id); it != sent_at.end()) {
      rtt_us.push_back(std::chrono::duration<double, std::micro>(now - it->second).count());
      sent_at.erase(it);
    }
    ++received;
    if (sent < calls) {
      ++sent;
      sent_at[sent] = Clock::now();
      p.write_raw(request(sent));
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(rtt_us.begin(), rtt_us.end());
  std::printf("%.0f calls/s, round trip p50 %.1f us, p99 %.1f us (%d calls, %d in flight, %s era)\n", calls / secs,
              rtt_us[rtt_us.size() / 2], rtt_us[rtt_us.size() * 99 / 100], calls, inflight, modern ? "2026-07-28" : "legacy");
  p.close_stdin();
  return p.wait() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "cold" && argc == 3) return cold(std::atoi(argv[2]));
  if (mode == "echo" && argc >= 5) return echo(std::atoi(argv[2]), std::atoi(argv[3]), argv[4], std::vector<std::string>(argv + 5, argv + argc));
  std::fprintf(stderr, "usage: %s cold RUNS | echo CALLS INFLIGHT legacy|2026 [COMMAND...]\n", argv[0]);
  return 2;
}
