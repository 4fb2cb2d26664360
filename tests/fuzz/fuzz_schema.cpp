// libFuzzer: the JSON Schema validator. Input: a schema, a newline, an instance.
#include "json/bounded.hpp"
#include "protocol/schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  auto schema = mcph::json_text::parse(text.substr(0, nl));
  auto instance = mcph::json_text::parse(text.substr(nl + 1));
  if (!schema || !instance) return 0;
  auto compiled = mcph::protocol::Schema::compile(*schema);
  if (compiled) (void)(*compiled)->validate(*instance);
  return 0;
}
