#include "util.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

namespace codesphere {

std::optional<std::int64_t> coerce_id(const json& value) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    return v >= 0 ? std::optional(v) : std::nullopt;
  }
  if (value.is_number_float()) {
    // JSON Schema counts 42.0 as an integer, so the host's validation lets it through.
    const double d = value.get<double>();
    if (d < 0 || d > 9007199254740991.0 || std::floor(d) != d) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  if (!value.is_string()) return std::nullopt;
  const auto& s = value.get_ref<const std::string&>();
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

namespace {

bool token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '.' || c == '_' || c == '-' || c == '~' || c == '+' || c == '/' || c == '=';
}

bool iequals_at(std::string_view text, std::size_t pos, std::string_view word) {
  if (pos + word.size() > text.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[pos + i])) != word[i]) return false;
  }
  return true;
}

// Replaces the token that follows `prefix_end` (after the separators in `seps`) with
// [REDACTED]. Returns the position to continue scanning from.
std::size_t redact_after(std::string& text, std::size_t prefix_end, std::string_view seps) {
  std::size_t start = prefix_end;
  while (start < text.size() && seps.find(text[start]) != std::string_view::npos) ++start;
  if (start == prefix_end && !seps.empty()) return prefix_end;  // a separator is required
  std::size_t end = start;
  while (end < text.size() && token_char(text[end])) ++end;
  if (end == start || text.compare(start, end - start, "[REDACTED]") == 0) return end;
  text.replace(start, end - start, "[REDACTED]");
  return start + 10;
}

}  // namespace

std::string redact(std::string text, std::string_view secret) {
  // Shorter values would redact ordinary words; real tokens are far longer (the host uses
  // the same bound for its own redaction).
  if (secret.size() >= 4) {
    for (std::size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 10)) {
      text.replace(pos, secret.size(), "[REDACTED]");
    }
  }
  // "Bearer <token>" and "api_key: <token>" / "api-key=<token>" / "apikey <token>".
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (iequals_at(text, i, "bearer") && (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])))) {
      i = redact_after(text, i + 6, " \t") - 1;
    } else if (iequals_at(text, i, "api") && (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1])))) {
      std::size_t j = i + 3;
      if (j < text.size() && (text[j] == '_' || text[j] == '-')) ++j;
      if (iequals_at(text, j, "key")) i = redact_after(text, j + 3, " \t:=\"'") - 1;
    }
  }
  return text;
}

std::string one_line(std::string_view text, std::size_t max) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max) return out;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 continuation
  out.resize(cut);
  return out + "…";
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

bool valid_civil(int year, int month, int day, int hour, int minute, int second) {
  static constexpr std::array<int, 12> kDays{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  (void)year;
  return month >= 1 && month <= 12 && day >= 1 && day <= kDays[static_cast<std::size_t>(month - 1)] && hour <= 23 &&
         minute <= 59 && second <= 60;
}

std::int64_t epoch_ms(int year, int month, int day, int hour, int minute, int second) {
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return ((days * 24 + hour) * 60 + minute) * 60000LL + std::min(second, 59) * 1000LL;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view s) {
  std::size_t p = 0;
  int year, month, day, hour, minute, second;
  if (!digits(s, p, 4, year) || !expect(s, p, '-') || !digits(s, p, 2, month) || !expect(s, p, '-') ||
      !digits(s, p, 2, day)) {
    return std::nullopt;
  }
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return std::nullopt;
  ++p;
  if (!digits(s, p, 2, hour) || !expect(s, p, ':') || !digits(s, p, 2, minute) || !expect(s, p, ':') ||
      !digits(s, p, 2, second)) {
    return std::nullopt;
  }
  if (!valid_civil(year, month, day, hour, minute, second)) return std::nullopt;
  int millis = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    int scale = 100, n = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      millis += (s[p] - '0') * scale;
      scale /= 10;
      ++p;
      ++n;
    }
    if (n == 0) return std::nullopt;
  }
  std::int64_t offset_min = 0;
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    const int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh, om;
    if (!digits(s, p, 2, oh) || !expect(s, p, ':') || !digits(s, p, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;  // RFC 3339 requires an offset; a local time is ambiguous
  }
  if (p != s.size()) return std::nullopt;
  return epoch_ms(year, month, day, hour, minute, second) + millis - offset_min * 60000;
}

std::optional<std::int64_t> parse_http_date_ms(std::string_view s) {
  static constexpr std::array<std::string_view, 7> kDays{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 characters.
  if (s.size() != 29) return std::nullopt;
  bool day_ok = false;
  for (auto d : kDays) day_ok = day_ok || s.substr(0, 3) == d;
  if (!day_ok || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s.substr(25) != " GMT") return std::nullopt;
  int month = 0;
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (s.substr(8, 3) == kMonths[i]) month = static_cast<int>(i) + 1;
  }
  std::size_t p = 5;
  int day, year, hour, minute, second;
  if (month == 0 || !digits(s, p, 2, day)) return std::nullopt;
  p = 12;
  if (!digits(s, p, 4, year) || !expect(s, p, ' ') || !digits(s, p, 2, hour) || !expect(s, p, ':') ||
      !digits(s, p, 2, minute) || !expect(s, p, ':') || !digits(s, p, 2, second)) {
    return std::nullopt;
  }
  if (!valid_civil(year, month, day, hour, minute, second)) return std::nullopt;
  return epoch_ms(year, month, day, hour, minute, second);
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::optional<std::string_view> date_header,
                                                           std::int64_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) return std::chrono::milliseconds(999999999LL * 1000);  // absurd, the caller caps it
    std::int64_t seconds = 0;
    for (char c : value) seconds = seconds * 10 + (c - '0');
    return std::chrono::milliseconds(seconds * 1000);
  }
  const auto when = parse_http_date_ms(value);
  if (!when) return std::nullopt;
  std::int64_t base = now;
  if (date_header) {
    if (auto d = parse_http_date_ms(*date_header)) base = *d;
  }
  return std::chrono::milliseconds(std::max<std::int64_t>(0, *when - base));
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lld ms", static_cast<long long>(ms));
  } else if (ms < 60000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lld min %lld s", static_cast<long long>(ms / 60000),
                  static_cast<long long>(ms % 60000 / 1000));
  }
  return buf;
}

namespace {

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

}  // namespace

std::string text_field(const json& obj, const char* key, const std::string& fallback) {
  const json* v = field(obj, key);
  return v && v->is_string() ? v->get<std::string>() : fallback;
}

bool flag_field(const json& obj, const char* key, bool fallback) {
  const json* v = field(obj, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

json number_field(const json& obj, const char* key, const json& fallback) {
  const json* v = field(obj, key);
  return v && v->is_number() ? *v : fallback;
}

json object_field(const json& obj, const char* key) {
  const json* v = field(obj, key);
  return v && v->is_object() ? *v : json::object();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace codesphere
