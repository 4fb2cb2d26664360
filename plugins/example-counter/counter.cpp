// example-counter: the C++ example plugin, written with mcp_plugin/sdk.hpp. Copy it to
// start a C++ plugin. Tool:
//   slow_count {n, delay_ms} -> counts to n, one step every delay_ms, reporting MCP
//   progress at each step; stops promptly when the call is cancelled.
#include <chrono>
#include <thread>

#include "mcp_plugin/sdk.hpp"

namespace {

using mcph::sdk::json;

class Counter : public mcph::sdk::Plugin {
 public:
  Counter(mcph::sdk::Host& host, const json& settings) : Plugin(host) {
    max_n_ = settings.value("max_n", 10000);
    tool(mcph::sdk::ToolSpec("slow_count")
             .title("Slow count")
             .description("Counts from 1 to n, waiting delay_ms between steps and reporting progress at each "
                          "step. Useful to try progress notifications and cancellation.")
             .input({{"type", "object"},
                     {"properties",
                      {{"n", {{"type", "integer"}, {"minimum", 1}, {"maximum", max_n_}, {"description", "count to this"}}},
                       {"delay_ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}, {"default", 100}}}}},
                     {"required", {"n"}},
                     {"additionalProperties", false}})
             .output({{"type", "object"}, {"properties", {{"counted", {{"type", "integer"}}}}}, {"required", {"counted"}}})
             .annotations({{"readOnlyHint", true}, {"openWorldHint", false}}),
         [](mcph::sdk::Call& call, const json& args) { return count(call, args); });
  }

 private:
  static json count(mcph::sdk::Call& call, const json& args) {
    const int n = args.at("n").get<int>();
    const auto delay = std::chrono::milliseconds(args.value("delay_ms", 100));
    for (int i = 1; i <= n; ++i) {
      // Sleep in short slices so a cancel is noticed within ~10 ms, not after a whole step.
      const auto until = std::chrono::steady_clock::now() + delay;
      while (std::chrono::steady_clock::now() < until) {
        call.check_cancelled();
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
      }
      call.check_cancelled();
      call.progress(i, n, "counted " + std::to_string(i) + " of " + std::to_string(n));
    }
    return mcph::sdk::structured(json{{"counted", n}}, "counted to " + std::to_string(n));
  }

  int max_n_;
};

}  // namespace

MCPH_SDK_PLUGIN(Counter, "example-counter", "1.0.0", "slow_count: progress and cancellation, the C++ SDK example")
