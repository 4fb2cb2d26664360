// test-http-probe: one tool that makes exactly the HTTP request it is given and returns
// everything the host's HTTP service handed back, so harness tests can check scripted HTTP
// from the plugin's side (tests/sdk/test_harness_http.cpp).
#include "mcp_plugin/sdk.hpp"

namespace {

using mcph::sdk::json;

class HttpProbe : public mcph::sdk::Plugin {
 public:
  HttpProbe(mcph::sdk::Host& host, const json&) : Plugin(host) {
    tool(mcph::sdk::ToolSpec("request")
             .description("Makes one HTTP request and returns status, code, headers, body and error.")
             .input({{"type", "object"},
                     {"properties",
                      {{"method", {{"type", "string"}}},
                       {"url", {{"type", "string"}}},
                       {"body", {{"type", "string"}}},
                       {"headers", {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}}}}},
                     {"required", {"method", "url"}}}),
         [](mcph::sdk::Call& call, const json& args) -> json {
           mcph::sdk::HttpRequest req(args["method"], args["url"]);
           req.body = args.value("body", "");
           const json headers_in = args.value("headers", json::object());
           for (const auto& [k, v] : headers_in.items()) req.headers.emplace_back(k, v);
           auto r = call.http(req);
           json headers = json::object();
           for (const auto& [k, v] : r.headers) headers[k] = v;
           return json{{"status", r.status}, {"code", r.code}, {"headers", headers}, {"body", r.body}, {"error", r.error}};
         });
  }
};

}  // namespace

MCPH_SDK_PLUGIN(HttpProbe, "test-http-probe", "0.0.1", "makes the HTTP request it is given (tests only)")
