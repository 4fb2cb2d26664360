// test-services: a plugin that exercises every host service and every way a handler can
// fail, so integration tests can check the host's side of each.
#include <stdexcept>

#include "mcp_plugin/sdk.hpp"

namespace {

using mcph::sdk::json;
using mcph::sdk::ToolSpec;

json schema(json properties, json required) {
  return json{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

class Services : public mcph::sdk::Plugin {
 public:
  Services(mcph::sdk::Host& host, const json& settings) : Plugin(host) {
    if (settings.value("fail_create", false)) throw std::runtime_error("settings.fail_create is set");
    tool(ToolSpec("fail").description("Fails in the way `mode` names.")
             .input(schema({{"mode", {{"type", "string"}, {"enum", {"throw", "tool_error", "secret"}}}}}, {"mode"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           const std::string mode = args["mode"];
           if (mode == "throw") throw std::runtime_error("boom");
           if (mode == "tool_error") throw mcph::sdk::ToolError("upstream said no", MCPH_ERR_UNAVAILABLE);
           // The plugin (wrongly) puts its token into a result: the host must redact it.
           return mcph::sdk::text("token is " + call.credential("api_token").value_or("(none)"));
         });
    tool(ToolSpec("state").description("Durable state: put, get, delete, list, put_if (expected/value; absent: null); "
                                       "lease_acquire (key, ttl_ms), lease_release.")
             .input(schema({{"op", {{"type", "string"}, {"enum", {"put", "get", "delete", "list", "put_if", "lease_acquire", "lease_release"}}}},
                            {"key", {{"type", "string"}}},
                            {"value", {{"type", {"string", "null"}}}},
                            {"expected", {{"type", {"string", "null"}}}},
                            {"ttl_ms", {{"type", "integer"}}}},
                           {"op", "key"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           auto& host = call.host();
           const std::string op = args["op"], key = args["key"];
           auto opt = [&](const char* name) -> std::optional<std::string> {
             auto it = args.find(name);
             return it == args.end() || it->is_null() ? std::nullopt : std::optional<std::string>(it->get<std::string>());
           };
           if (op == "put_if") {
             const auto expected = opt("expected"), value = opt("value");
             return json{{"ok", host.state_put_if(key, expected ? std::optional<std::string_view>(*expected) : std::nullopt,
                                                   value ? std::optional<std::string_view>(*value) : std::nullopt)}};
           }
           if (op == "lease_acquire") return json{{"ok", host.lease_acquire(key, std::chrono::milliseconds(args.value("ttl_ms", 1000)))}};
           if (op == "lease_release") {
             host.lease_release(key);
             return json{{"ok", true}};
           }
           if (op == "put") return json{{"ok", host.state_put(key, opt("value").value_or(""))}};
           if (op == "delete") return json{{"ok", host.state_delete(key)}};
           if (op == "get") {
             auto v = host.state_get(key);
             return v ? json{{"found", true}, {"value", *v}} : json{{"found", false}};
           }
           json items = json::object();
           for (auto& [k, v] : host.state_list(key)) items[k] = v;
           return json{{"items", items}};
         });
    tool(ToolSpec("fetch").description("GET a URL through the host's HTTP client.")
             .input(schema({{"url", {{"type", "string"}}}}, {"url"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           auto r = call.http({"GET", args["url"].get<std::string>()});
           if (r.status != MCPH_OK) throw mcph::sdk::ToolError("fetch failed: " + r.error, r.status);
           return json{{"code", r.code}, {"body", r.body}};
         });
    tool(ToolSpec("stream").description("GET a URL as a stream; returns the chunks as they arrived.")
             .input(schema({{"url", {{"type", "string"}}}, {"max_chunks", {{"type", "integer"}}}}, {"url"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           json chunks = json::array();
           int status = 0;
           const size_t max_chunks = args.value("max_chunks", 1000);
           mcph::sdk::HttpRequest req("GET", args["url"].get<std::string>());
           req.on_head = [&](int code, const auto&) { status = code; return true; };
           req.on_body = [&](std::string_view chunk) {
             chunks.push_back(std::string(chunk));
             return chunks.size() < max_chunks;
           };
           auto r = call.http(req);
           if (r.status != MCPH_OK) throw mcph::sdk::ToolError("stream failed: " + r.error, r.status);
           return json{{"code", status}, {"chunks", chunks}};
         });
    tool(ToolSpec("whoami").description("Says whether a token is configured (never what it is) and the principal."),
         [](mcph::sdk::Call& call, const json&) -> json {
           return json{{"has_token", call.credential("api_token").has_value()}, {"principal", call.principal()}};
         });
    tool(ToolSpec("log").description("Sends one notifications/message at `level`.")
             .input(schema({{"level", {{"type", "integer"}, {"minimum", 0}, {"maximum", 7}}}, {"message", {{"type", "string"}}}},
                           {"level", "message"})),
         [](mcph::sdk::Call& call, const json& args) -> json {
           call.log(args["level"].get<int>(), args["message"], "test");
           call.host().info("log tool called with a message of " + std::to_string(args["message"].get<std::string>().size()) + " bytes");
           return mcph::sdk::text("logged");
         });
  }
};

}  // namespace

MCPH_SDK_PLUGIN(Services, "test-services", "0.0.1", "exercises host services and failure paths (tests only)")
