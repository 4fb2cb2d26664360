// Benchmarks the real binary over stdio (run by scripts/bench.sh, not by ctest):
//   cold start: spawn -> initialize response, with both examples loaded (median of runs)
//   throughput: tools/call echo messages per second with `inflight` requests in flight
#include <algorithm>
#include <cstdio>
#include <fstream>

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

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 20;
  const int calls = argc > 2 ? std::atoi(argv[2]) : 200000;
  const int inflight = argc > 3 ? std::atoi(argv[3]) : 64;
  TempDir dir;
  const std::string cfg = dir.str() + "/bench.yaml";
  std::ofstream(cfg) << config_yaml(dir.str() + "/state",
                                    "  - { name: echo, library: example-echo }\n"
                                    "  - { name: counter, library: example-counter }\n");
  const std::vector<std::string> argv_host = {MCPH_BINARY, "serve", "--config", cfg, "--log-level", "warn"};

  std::vector<double> starts;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    Process p(argv_host);
    p.write_raw(kInit);
    if (!p.read_line(std::chrono::seconds(10))) {
      std::fprintf(stderr, "no initialize response\n");
      return 1;
    }
    starts.push_back(ms(Clock::now() - t0));
    p.close_stdin();
    p.wait();
  }
  std::sort(starts.begin(), starts.end());
  std::printf("cold start (spawn -> initialize response), %d runs: median %.2f ms, min %.2f ms, max %.2f ms\n",
              runs, starts[starts.size() / 2], starts.front(), starts.back());

  Process p(argv_host);
  p.write_raw(kInit);
  p.read_line();
  p.write_raw("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
  auto request = [](int id) {
    return "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) +
           ",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello world\"}}}\n";
  };
  int sent = 0, received = 0;
  const auto t0 = Clock::now();
  std::string out;
  for (; sent < std::min(inflight, calls); ++sent) out += request(sent + 1);
  p.write_raw(out);
  while (received < calls) {
    auto line = p.read_line(std::chrono::seconds(10));
    if (!line) {
      std::fprintf(stderr, "timed out after %d responses\n", received);
      return 1;
    }
    if (line->find("\"result\"") == std::string::npos) {
      std::fprintf(stderr, "unexpected: %s\n", line->c_str());
      return 1;
    }
    ++received;
    if (sent < calls) p.write_raw(request(++sent));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("stdio tools/call echo, %d calls, %d in flight: %.0f calls/s (%.2f s)\n", calls, inflight,
              calls / secs, secs);
  p.close_stdin();
  return p.wait() == 0 ? 0 : 1;
}
