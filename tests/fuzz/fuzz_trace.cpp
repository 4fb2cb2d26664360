// libFuzzer: W3C traceparent (from clients' params._meta) and the OTLP/JSON encoder (span
// names and attributes carry client and plugin text). A context that parses must print
// back as the same text (version 00) and parse again to itself; whatever the bytes, an
// export body must be valid JSON, with UTF-8 text carried unchanged.
#include <nlohmann/json.hpp>

#include "telemetry/trace.hpp"

using mcph::telemetry::Span;
using mcph::telemetry::SpanContext;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto c = SpanContext::parse(text)) {
    if (!c->valid()) __builtin_trap();
    const std::string printed = c->traceparent();
    auto again = SpanContext::parse(printed);
    if (!again || again->trace_id != c->trace_id || again->span_id != c->span_id || again->sampled != c->sampled) __builtin_trap();
    if (text.starts_with("00-") && text.substr(0, 53) != printed.substr(0, 53)) __builtin_trap();
  }
  const SpanContext self = mcph::telemetry::new_span(nullptr, 1.0);
  const SpanContext parent = mcph::telemetry::new_span(nullptr, 1.0);
  Span s(text, Span::Kind::kServer, self, &parent.span_id, 1, 2, text);
  s.set(text, text);
  s.set("n", static_cast<int64_t>(size));
  s.set("d", static_cast<double>(size) / 3);
  s.set("b", size % 2 == 0);
  s.fail(text);
  s.link(parent);
  mcph::telemetry::Collector o;
  o.service_version = text;
  std::string out;
  const std::string span_text = std::move(s).text();
  mcph::telemetry::otlp_json({span_text, span_text}, o, out);
  const auto body = nlohmann::json::parse(out, nullptr, false);
  if (body.is_discarded()) __builtin_trap();
  bool utf8 = true;
  try {
    (void)nlohmann::json(text).dump();
  } catch (const nlohmann::json::exception&) {
    utf8 = false;
  }
  const auto& span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  if (utf8 && span["name"] != text) __builtin_trap();
  return 0;
}
