// my_plugin: one tool, get_item, that reads an item from an HTTP API with the caller's
// token. Replace the API with yours; keep the shape:
//   - settings (the YAML `settings:` mapping) are read once, in the constructor;
//   - credentials are looked up per call (call.credential), never stored or logged;
//   - every outbound request goes through the host (call.http): timeouts, cancellation,
//     and the plugin's tests script it with mcph::testing::FakeHttp;
//   - a failure the model should read is a ToolError; the input schema is enforced by the
//     host before the handler runs, so the handler trusts the argument types.
#include "mcp_plugin/sdk.hpp"

#ifndef MY_PLUGIN_VERSION
#define MY_PLUGIN_VERSION "0.1.0"
#endif

namespace {

using mcph::sdk::json;

class MyPlugin : public mcph::sdk::Plugin {
 public:
  MyPlugin(mcph::sdk::Host& host, const json& settings) : Plugin(host) {
    base_url_ = settings.value("base_url", "https://api.example.com");
    if (base_url_.rfind("http://", 0) != 0 && base_url_.rfind("https://", 0) != 0) {
      // Thrown from the constructor: create fails and the host shows this text.
      throw std::runtime_error("settings.base_url must start with http:// or https://");
    }
    tool(mcph::sdk::ToolSpec("get_item")
             .title("Get an item")
             .description("Reads one item by its id and returns its id and name.")
             .input({{"type", "object"},
                     {"properties", {{"id", {{"type", "string"}, {"pattern", "^[A-Za-z0-9_-]{1,64}$"}}}}},
                     {"required", {"id"}},
                     {"additionalProperties", false}})
             .output({{"type", "object"},
                      {"properties", {{"id", {{"type", "string"}}}, {"name", {{"type", "string"}}}}},
                      {"required", {"id", "name"}}})
             .annotations({{"readOnlyHint", true}, {"openWorldHint", true}}),
         [this](mcph::sdk::Call& call, const json& args) { return get_item(call, args); });
  }

 private:
  json get_item(mcph::sdk::Call& call, const json& args) const {
    auto token = call.credential("api_token");
    if (!token) {
      throw mcph::sdk::ToolError("no API token: set credentials.api_token for this plugin in the mcp-host YAML",
                                 MCPH_ERR_UNAUTHENTICATED);
    }
    const std::string id = args.at("id").get<std::string>();
    mcph::sdk::HttpRequest req("GET", base_url_ + "/items/" + id);
    req.headers = {{"Authorization", "Bearer " + *token}, {"Accept", "application/json"}};
    req.timeout_ms = 10000;
    auto r = call.http(req);
    if (r.status != MCPH_OK) throw mcph::sdk::ToolError("the API is unreachable: " + r.error, r.status);
    if (r.code == 404) throw mcph::sdk::ToolError("no item with id " + id, MCPH_ERR_NOT_FOUND);
    if (r.code == 401 || r.code == 403) throw mcph::sdk::ToolError("the API token was refused", MCPH_ERR_PERMISSION_DENIED);
    if (r.code != 200) throw mcph::sdk::ToolError("the API answered HTTP " + std::to_string(r.code), MCPH_ERR_UNAVAILABLE);
    json item = json::parse(r.body, nullptr, false);
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) {
      throw mcph::sdk::ToolError("the API sent an item without a name", MCPH_ERR_UNAVAILABLE);
    }
    const std::string name = item["name"];
    // structuredContent (checked against the output schema by clients) plus a text copy.
    return mcph::sdk::structured({{"id", id}, {"name", name}}, "Item " + id + ": " + name);
  }

  std::string base_url_;
};

}  // namespace

MCPH_SDK_PLUGIN(MyPlugin, "my_plugin", MY_PLUGIN_VERSION, "Reads items from an HTTP API (mcp-host plugin template)")
