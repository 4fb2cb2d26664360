// libFuzzer: the host's JSON reader and writer against nlohmann's. For every input
// json_text::parse and json::parse both accept or both refuse, and what they accept is the
// same value: the same type at every node (an unsigned 1 is not a signed 1) and the same
// text from json_text::dump as from json::dump; and the input taken as one string (invalid
// UTF-8 and all) is written alike by both writers. Two
// differences are allowed, both where the host is stricter: nesting deeper than kMaxDepth,
// and a NUL byte between tokens, where json::parse stops reading and ignores what follows
// ("1\0garbage" is 1 to it) while the host refuses the text.
// json_text::scan_object accepts exactly what json_text::parse reads as an object; when it
// calls the text verbatim, its top-level members are the object's own, each value's text
// parses to that member's value, and the text written() is dumped as it is.
// json_text::parse_request reads every text as parse does, but may keep params._meta written.
#include <cstdlib>

#include "json/bounded.hpp"

namespace {

using nlohmann::json;

bool same_types(const json& a, const json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
      if (ia.key() != ib.key() || !same_types(*ia, *ib)) return false;
    }
  } else if (a.is_array()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!same_types(a[i], b[i])) return false;
    }
  }
  return true;
}

std::string dump_as_nlohmann(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

void check_scan(std::string_view text, const std::optional<json>& parsed) {
  const auto scanned = mcph::json_text::scan_object(text);
  if (scanned.has_value() != (parsed && parsed->is_object())) std::abort();
  if (!scanned || !scanned->verbatim) return;
  if (scanned->size != parsed->size()) std::abort();  // (no repeated key, none past kMaxMembers)
  for (size_t i = 0; i < scanned->size; ++i) {
    const auto& m = scanned->members[i];
    auto it = parsed->find(std::string(m.key));
    const auto value = mcph::json_text::parse(m.value);
    if (it == parsed->end() || !value || *value != *it) std::abort();
  }
  const auto again = mcph::json_text::members_of(text);
  if (again.size != scanned->size) std::abort();
  for (size_t i = 0; i < again.size; ++i) {
    if (again.members[i].key != scanned->members[i].key || again.members[i].value != scanned->members[i].value) std::abort();
  }
  if (mcph::json_text::dump(mcph::json_text::written(text)) != text) std::abort();
  if (mcph::json_text::built(mcph::json_text::written(text)) != *parsed) std::abort();
}

// json_text::parse_request reads what parse reads, for the same reason when it refuses, and
// the same value but for a params._meta it kept written.
void check_request(std::string_view text, const std::optional<json>& parsed, mcph::json_text::ParseFailure why) {
  mcph::json_text::ParseFailure ours;
  auto message = mcph::json_text::parse_request(text, &ours);
  if (message.has_value() != parsed.has_value() || ours != why) std::abort();
  if (!message) return;
  if (auto params = message->find("params"); message->is_object() && params != message->end() && params->is_object()) {
    if (auto meta = params->find("_meta"); meta != params->end() && mcph::json_text::written_text(*meta)) {
      if (mcph::json_text::dump(*meta) != *mcph::json_text::written_text(*meta)) std::abort();
      *meta = mcph::json_text::built(*meta);
    }
  }
  if (*message != *parsed || !same_types(*message, *parsed)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const json as_string = std::string(text);
  if (mcph::json_text::dump(as_string) != dump_as_nlohmann(as_string)) std::abort();
  mcph::json_text::ParseFailure why;
  const auto ours = mcph::json_text::parse(text, &why);
  check_scan(text, ours);
  check_request(text, ours, why);
  if (why == mcph::json_text::ParseFailure::kTooDeep) return 0;
  json theirs = json::parse(text, nullptr, false);
  if (!ours && !theirs.is_discarded() && text.find('\0') != std::string_view::npos) {
    // What json::parse read is the text before its first NUL: the host reads that alike.
    const auto before_nul = mcph::json_text::parse(text.substr(0, text.find('\0')));
    if (!before_nul || mcph::json_text::dump(*before_nul) != dump_as_nlohmann(theirs) || !same_types(*before_nul, theirs)) std::abort();
    return 0;
  }
  if (ours.has_value() == theirs.is_discarded()) std::abort();  // one accepted what the other refused
  if (ours && (mcph::json_text::dump(*ours) != dump_as_nlohmann(theirs) || !same_types(*ours, theirs))) std::abort();
  return 0;
}
