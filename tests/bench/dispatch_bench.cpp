// The in-process plugin round trip (issue 20), as a Google Benchmark: the protocol engine
// takes a parsed tools/call, runs the example-echo plugin's handler in this thread (as the
// HTTP transport does) and the answer is serialised, with no transport around it. Both
// eras: a legacy session (initialized once), and 2026-07-28 (sessionless, the era and client
// in each request's _meta), its request as the transports parse it (_meta kept as written:
// json_text::parse_request) and built (as a test's json). Run by scripts/bench.sh, never
// by ctest:
//   mcph-bench-dispatch [--benchmark_repetitions=N ...]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "host_fixture.hpp"
#include "json/bounded.hpp"

using namespace mcph;
using json = nlohmann::json;

namespace {

struct Host {
  mcph::testing::HostFixture fixture;
  std::unique_ptr<protocol::Engine> engine;
  // As a transport's: a result may come as its plugin wrote it; the loop writes the answers.
  std::shared_ptr<mcph::testing::WritingChannel> channel = std::make_shared<mcph::testing::WritingChannel>();

  Host() {
    if (auto error = fixture.load("  - { name: echo, library: example-echo }\n"); !error.empty()) {
      std::fprintf(stderr, "cannot load example-echo: %s\n", error.c_str());
      std::exit(1);
    }
    engine = std::make_unique<protocol::Engine>(*fixture.registry, protocol::EngineOptions{});
  }
};

Host& host() {
  static Host h;
  return h;
}

json call(json meta = nullptr) {
  json m{{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"}, {"params", {{"name", "echo"}, {"arguments", {{"text", "hello world"}}}}}};
  if (!meta.is_null()) m["params"]["_meta"] = std::move(meta);
  return m;
}

void run(benchmark::State& state, protocol::Session& session, const json& request) {
  Host& h = host();
  size_t bytes = 0;
  // The engine takes the message by value and a transport moves its parsed request in: the
  // copies it gets here are made in batches outside the timed part.
  std::vector<json> batch;
  for (auto _ : state) {
    if (batch.empty()) {
      state.PauseTiming();
      batch.assign(1000, request);
      state.ResumeTiming();
    }
    const std::string out = json_text::dump(h.engine->handle(std::move(batch.back()), session, h.channel));
    batch.pop_back();
    bytes += out.size();
  }
  benchmark::DoNotOptimize(bytes);
  // The answer must be the echo (checked once, outside the timed loop).
  const json r = json_text::built(h.engine->handle(request, session, h.channel)["result"]);
  if (r["content"][0].value("text", "") != "hello world") state.SkipWithError(("unexpected answer: " + r.dump()).c_str());
}

void BM_EchoLegacy(benchmark::State& state) {
  Host& h = host();
  auto session = std::make_shared<protocol::Session>();
  h.engine->handle(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                        {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                    {"clientInfo", {{"name", "bench"}, {"version", "1"}}}}}},
                   *session, h.channel);
  h.engine->handle(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, *session, h.channel);
  run(state, *session, call());
}

json call2026() {
  return call({{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientInfo", {{"name", "bench"}, {"version", "1"}}},
               {"io.modelcontextprotocol/clientCapabilities", json::object()}});
}

void BM_Echo2026(benchmark::State& state) {
  auto session = std::make_shared<protocol::Session>();
  run(state, *session, *json_text::parse_request(json_text::dump(call2026())));
}

void BM_Echo2026BuiltMeta(benchmark::State& state) {  // (_meta a tree of json values)
  auto session = std::make_shared<protocol::Session>();
  run(state, *session, call2026());
}

}  // namespace

BENCHMARK(BM_EchoLegacy)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Echo2026)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Echo2026BuiltMeta)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
