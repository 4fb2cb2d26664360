// The stdio ceiling: a bare JSON-RPC echo on the host's own JSON reader and writer
// (json_text, on nlohmann::json values), with nothing else in the way: read what stdin has,
// parse each line, build the tools/call answer the host gives (the echo plugin's text),
// serialise it, and write the answers of one read at once. One thread. scripts/bench.sh
// drives it with the same client as the host (mcph-bench-stdio).
#include <unistd.h>

#include <string>

#include "json/bounded.hpp"

int main() {
  using nlohmann::json;
  std::string in, out;
  char chunk[65536];
  for (ssize_t n; (n = ::read(0, chunk, sizeof chunk)) > 0;) {
    in.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = in.find('\n', start)) != std::string::npos; start = nl + 1) {
      const json m = mcph::json_text::parse(std::string_view(in.data() + start, nl - start)).value_or(json());
      if (!m.is_object() || !m.contains("id")) continue;  // notifications get no answer
      json result;
      if (m.value("method", "") == "initialize") {
        result = {{"protocolVersion", "2025-11-25"}, {"capabilities", {{"tools", json::object()}}},
                  {"serverInfo", {{"name", "bare-stdio"}, {"version", "1"}}}};
      } else {
        const json& args = m["params"]["arguments"];
        result = {{"content", json::array({{{"type", "text"}, {"text", args.value("text", "")}}})}};
      }
      out += mcph::json_text::dump(json{{"jsonrpc", "2.0"}, {"id", m["id"]}, {"result", std::move(result)}});
      out += '\n';
    }
    in.erase(0, start);
    for (size_t done = 0; done < out.size();) {
      const ssize_t w = ::write(1, out.data() + done, out.size() - done);
      if (w <= 0) return 1;
      done += static_cast<size_t>(w);
    }
    out.clear();
  }
  return 0;
}
