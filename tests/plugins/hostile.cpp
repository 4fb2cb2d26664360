// test-hostile: a plugin that behaves badly on purpose, for the hardening and isolation
// tests: handlers that ignore cancellation, results that repeat credentials (as numbers, in
// strings, in keys), over-deep results, and handlers that crash, exit, spin or hoard memory.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "mcp_plugin/sdk.hpp"

namespace {

using mcph::sdk::json;
using mcph::sdk::ToolSpec;

json schema(json properties, json required = json::array()) {
  return json{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

class Hostile : public mcph::sdk::Plugin {
 public:
  Hostile(mcph::sdk::Host& host, const json& settings) : Plugin(host) {
    // settings.create_delay_ms: a slow create (a reload that takes that long).
    std::this_thread::sleep_for(std::chrono::milliseconds(settings.value("create_delay_ms", 0)));
    // org_id is an identifier; api_token stays a secret (undeclared keys are).
    declare_credential("org_id", false);
    tool(ToolSpec("stall").description("Sleeps `ms` milliseconds and ignores cancellation.")
             .input(schema({{"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}}}}, {"ms"})),
         [](mcph::sdk::Call&, const json& args) -> json {
           std::this_thread::sleep_for(std::chrono::milliseconds(args["ms"].get<int>()));
           return mcph::sdk::text("stalled");
         });
    tool(ToolSpec("slow").description("Sleeps up to `ms` milliseconds, stopping early when cancelled.")
             .input(schema({{"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}}}}, {"ms"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(args["ms"].get<int>());
           while (std::chrono::steady_clock::now() < until && !call.cancelled()) {
             std::this_thread::sleep_for(std::chrono::milliseconds(2));
           }
           return mcph::sdk::text(call.cancelled() ? "cancelled" : "done");
         });
    tool(ToolSpec("mirror").description("Returns `value` as structuredContent, with the credentials beside it.")
             .input(schema({{"value", json::object()}})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           const std::string token = call.credential("api_token").value_or("");
           const std::string org = call.credential("org_id").value_or("");
           json out{{"value", args.value("value", json())},
                    {"sentence", "token " + token + " for org " + org},
                    {token.empty() ? "no-token" : "key-" + token, 1}};
           return mcph::sdk::structured(out, "mirrored; the token is " + token);
         });
    tool(ToolSpec("deep").description("Returns a result nested `depth` arrays deep.")
             .input(schema({{"depth", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100000}}}}, {"depth"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           const int depth = args["depth"];
           const std::string text = "{\"content\":[],\"structuredContent\":{\"x\":" + std::string(depth, '[') +
                                    std::string(depth, ']') + "}}";
           // Raw text, as a C plugin would hand it over (the SDK would build a json first).
           if (call.host().api().call_result(call.handle(), mcph::sdk::str(text)) != MCPH_OK) {
             throw mcph::sdk::ToolError("the host refused the result", MCPH_ERR_INVALID_ARGUMENT);
           }
           // Answered already: end the handler without another answer (InputRequired is the
           // SDK's way to return MCPH_OK without one).
           throw mcph::sdk::InputRequired{};
         });
    tool(ToolSpec("raw").description("Hands `text` over as its result, as it is (as a C plugin writes its own JSON).")
             .input(schema({{"text", {{"type", "string"}}}}, {"text"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           const std::string text = args["text"];
           if (call.host().api().call_result(call.handle(), mcph::sdk::str(text)) != MCPH_OK) {
             throw mcph::sdk::ToolError("the host refused the result", MCPH_ERR_INVALID_ARGUMENT);
           }
           throw mcph::sdk::InputRequired{};  // answered already (see "deep")
         });
    tool(ToolSpec("pid").description("The process the handler runs in."),
         [](mcph::sdk::Call&, const json&) -> json { return mcph::sdk::structured(json{{"pid", getpid()}}, "pid"); });
    tool(ToolSpec("crash").description("Ends its process: SIGSEGV, SIGABRT, or exit with status 3.")
             .input(schema({{"how", {{"type", "string"}, {"enum", {"segv", "abort", "exit"}}}}}, {"how"})),
         [](mcph::sdk::Call&, const json& args) -> json {
           const std::string how = args["how"];
           if (how == "segv") std::raise(SIGSEGV);
           if (how == "abort") std::abort();
           _exit(3);
         });
    tool(ToolSpec("hoard").description("Allocates and touches `mb` MiB, keeps it, then sleeps `ms`.")
             .input(schema({{"mb", {{"type", "integer"}, {"minimum", 1}, {"maximum", 4096}}},
                            {"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}}}},
                           {"mb"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           static std::vector<std::vector<char>> kept;
           for (int i = 0; i < args["mb"].get<int>(); ++i) {
             kept.emplace_back(1 << 20);
             std::memset(kept.back().data(), 1, kept.back().size());
           }
           const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(args.value("ms", 0));
           while (std::chrono::steady_clock::now() < until && !call.cancelled()) {
             std::this_thread::sleep_for(std::chrono::milliseconds(5));
           }
           return mcph::sdk::text("hoarding");
         });
    tool(ToolSpec("escape").description("Tries to open a file, make a socket and start a process; says what worked."),
         [](mcph::sdk::Call&, const json&) -> json {
           auto outcome = [](int rc) { return rc >= 0 ? std::string("allowed") : std::string(std::strerror(errno)); };
           json out;
           const int fd = ::open("/etc/hostname", O_RDONLY);
           out["open"] = outcome(fd);
           if (fd >= 0) ::close(fd);
           const int s = ::socket(AF_INET, SOCK_STREAM, 0);
           out["socket"] = outcome(s);
           if (s >= 0) ::close(s);
           const pid_t pid = ::fork();
           if (pid == 0) _exit(0);
           if (pid > 0) ::waitpid(pid, nullptr, 0);
           out["fork"] = outcome(pid);
           return mcph::sdk::structured(out, "tried");
         });
    tool(ToolSpec("spin").description("Burns CPU for `ms` milliseconds and ignores cancellation.")
             .input(schema({{"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 60000}}}}, {"ms"})),
         [](mcph::sdk::Call&, const json& args) -> json {
           const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(args["ms"].get<int>());
           volatile unsigned long x = 0;
           while (std::chrono::steady_clock::now() < until) x = x + 1;
           return mcph::sdk::text("spun");
         });
  }
};

}  // namespace

MCPH_SDK_PLUGIN(Hostile, "test-hostile", "0.0.1", "misbehaves on purpose (hardening tests only)")
