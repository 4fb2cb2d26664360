#include "json/bounded.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace mcph::json_text {

namespace {

// Bytes a JSON string holds as they are: printable ASCII but the quote and the backslash.
constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();
bool plain(char c) { return kPlain[static_cast<unsigned char>(c)]; }

// Where the run of plain bytes from `p` ends (at `end` at most). Eight bytes at a time while
// it can (values such as a tool's text are long plain runs), then byte by byte.
inline const char* plain_run(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101u, kHighs = 0x8080808080808080u;
  // Whether any byte of x is below n (n <= 0x80).
  auto below = [](uint64_t x, uint64_t n) { return (x - kOnes * n) & ~x & kHighs; };
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    if (((x & kHighs) | below(x, 0x20) | below(x ^ (kOnes * '"'), 1) | below(x ^ (kOnes * '\\'), 1)) != 0) break;
    p += 8;
  }
  while (p != end && plain(*p)) ++p;
  return p;
}

// A recursive-descent parser straight into nlohmann::json values, with the grammar and the
// values of json::parse (RFC 8259, strict UTF-8, a leading BOM skipped, non-negative
// integers unsigned, integers that do not fit 64 bits as doubles, a later duplicate key
// winning) — fuzz_json checks both agree on every input. Why not json::parse itself: it
// lexes through an input adapter a character at a time and copies every token into a
// buffer for its error messages; this takes runs of plain characters at once, and it is
// the host's hottest parse (every request, every result, every isolation frame head).
// Nesting is counted as values open, so a deep text fails before it is built.
class Parser {
 public:
  Parser(std::string_view text, int max_depth) : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  ParseFailure parse(json& out) {
    if (end_ - p_ >= 1 && static_cast<unsigned char>(*p_) == 0xEF) {  // a UTF-8 byte order mark
      if (end_ - p_ < 3 || static_cast<unsigned char>(p_[1]) != 0xBB || static_cast<unsigned char>(p_[2]) != 0xBF) return ParseFailure::kSyntax;
      p_ += 3;
    }
    if (!value(out, 0)) return failure_;
    skip_space();
    return p_ == end_ ? ParseFailure::kNone : ParseFailure::kSyntax;
  }

 private:
  const char* p_;
  const char* const end_;
  const int max_depth_;
  ParseFailure failure_ = ParseFailure::kSyntax;

  bool fail(ParseFailure f = ParseFailure::kSyntax) {
    failure_ = f;
    return false;
  }

  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }

  bool value(json& out, int depth) {
    skip_space();
    if (p_ == end_) return fail();
    switch (*p_) {
      case '{': return object(out, depth + 1);
      case '[': return array(out, depth + 1);
      case '"': {
        out = json::string_t();
        return string(*out.get_ptr<json::string_t*>());
      }
      case 't': out = true; return literal("true") || fail();
      case 'f': out = false; return literal("false") || fail();
      case 'n': out = nullptr; return literal("null") || fail();
      default: return number(out);
    }
  }

  bool object(json& out, int depth) {
    if (depth > max_depth_) return fail(ParseFailure::kTooDeep);
    ++p_;
    out = json::object();
    auto& members = *out.get_ptr<json::object_t*>();
    skip_space();
    if (p_ != end_ && *p_ == '}') return ++p_, true;
    std::string key;
    while (true) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return fail();
      key.clear();
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return fail();
      ++p_;
      // A repeated key keeps its place and takes the later value, as json::parse does.
      json& slot = members.try_emplace(members.end(), std::move(key))->second;
      if (!value(slot, depth)) return false;
      skip_space();
      if (p_ == end_) return fail();
      if (*p_ == '}') return ++p_, true;
      if (*p_++ != ',') return fail();
    }
  }

  bool array(json& out, int depth) {
    if (depth > max_depth_) return fail(ParseFailure::kTooDeep);
    ++p_;
    out = json::array();
    auto& items = *out.get_ptr<json::array_t*>();
    skip_space();
    if (p_ != end_ && *p_ == ']') return ++p_, true;
    while (true) {
      if (!value(items.emplace_back(), depth)) return false;
      skip_space();
      if (p_ == end_) return fail();
      if (*p_ == ']') return ++p_, true;
      if (*p_++ != ',') return fail();
    }
  }

  // After the opening quote; appends the unescaped text to `s`.
  bool string(std::string& s) {
    ++p_;
    while (true) {
      const char* run = p_;
      p_ = plain_run(p_, end_);
      s.append(run, p_);
      if (p_ == end_) return fail();
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') return ++p_, true;
      if (c == '\\') {
        if (!escape(s)) return fail();
      } else if (c >= 0x80) {
        const size_t n = utf8_length(std::string_view(p_, static_cast<size_t>(end_ - p_)));
        if (n == 0) return fail();
        s.append(p_, n);
        p_ += n;
      } else {
        return fail();  // a control character must be escaped
      }
    }
  }

  bool hex4(unsigned& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = *p_++;
      out <<= 4;
      if (h >= '0' && h <= '9') {
        out |= static_cast<unsigned>(h - '0');
      } else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') {
        out |= static_cast<unsigned>((h | 0x20) - 'a' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  bool escape(std::string& s) {
    if (++p_ == end_) return false;
    switch (*p_++) {
      case '"': s += '"'; return true;
      case '\\': s += '\\'; return true;
      case '/': s += '/'; return true;
      case 'b': s += '\b'; return true;
      case 'f': s += '\f'; return true;
      case 'n': s += '\n'; return true;
      case 'r': s += '\r'; return true;
      case 't': s += '\t'; return true;
      case 'u': break;
      default: return false;
    }
    unsigned cp;
    if (!hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate must follow a high one
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned low;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    const auto put = [&](unsigned v) { s += static_cast<char>(v); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6)), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18)), put(0x80 | ((cp >> 12) & 0x3F)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    }
    return true;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number(json& out) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || !digit(*p_)) return fail();
    uint64_t magnitude = 0;
    bool fits = true;
    if (*p_ == '0') {
      ++p_;
    } else {
      for (; p_ != end_ && digit(*p_); ++p_) {
        const auto d = static_cast<uint64_t>(*p_ - '0');
        if (magnitude > (UINT64_MAX - d) / 10) fits = false;
        magnitude = magnitude * 10 + d;
      }
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      if (++p_ == end_ || !digit(*p_)) return fail();
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      if (++p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) return fail();
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (integer && fits) {
      if (!negative) {
        out = static_cast<json::number_unsigned_t>(magnitude);
        return true;
      }
      if (magnitude <= static_cast<uint64_t>(INT64_MAX) + 1) {
        out = static_cast<json::number_integer_t>(0 - magnitude);
        return true;
      }
    }
    // A fraction, an exponent or an integer beyond 64 bits: a double, correctly rounded.
    double d = 0;
    const auto [ptr, ec] = std::from_chars(start, p_, d);
    if (ec == std::errc::result_out_of_range) {
      d = std::strtod(std::string(start, p_).c_str(), nullptr);  // underflow is a (sub)normal or zero; overflow is inf
    } else if (ec != std::errc() || ptr != p_) {
      return fail();
    }
    if (!std::isfinite(d)) return fail();
    out = d;
    return true;
  }
};

// Compact JSON text, as json::dump(-1, ' ', false, replace) writes it, with the plain runs
// of a string appended at once (json::dump decodes every byte of every string). Numbers
// with a fraction, and strings with invalid UTF-8, are rare: json::dump writes those.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void value(const json& v) {
    switch (v.type()) {
      case json::value_t::object: {
        out_ += '{';
        for (const auto& [key, member] : *v.get_ptr<const json::object_t*>()) {
          string(key);
          out_ += ':';
          value(member);
          out_ += ',';
        }
        close('{', '}');
        return;
      }
      case json::value_t::array: {
        out_ += '[';
        for (const auto& item : *v.get_ptr<const json::array_t*>()) {
          value(item);
          out_ += ',';
        }
        close('[', ']');
        return;
      }
      case json::value_t::string: string(*v.get_ptr<const json::string_t*>()); return;
      case json::value_t::boolean: out_ += *v.get_ptr<const json::boolean_t*>() ? "true" : "false"; return;
      case json::value_t::null: out_ += "null"; return;
      case json::value_t::number_integer: integer(*v.get_ptr<const json::number_integer_t*>()); return;
      case json::value_t::number_unsigned: integer(*v.get_ptr<const json::number_unsigned_t*>()); return;
      default: out_ += v.dump(-1, ' ', false, json::error_handler_t::replace); return;  // a double, binary
    }
  }

 private:
  std::string& out_;

  // Ends an object or array whose members each wrote a ',' after themselves.
  void close(char open, char end) {
    if (out_.back() == open) {
      out_ += end;
    } else {
      out_.back() = end;
    }
  }

  template <typename Int>
  void integer(Int n) {
    char digits[24];
    out_.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
  }

  void string(const std::string& s) {
    const size_t start = out_.size();
    out_ += '"';
    const char* p = s.data();
    const char* const end = p + s.size();
    while (true) {
      const char* run = p;
      p = plain_run(p, end);
      out_.append(run, p);
      if (p == end) break;
      const auto c = static_cast<unsigned char>(*p);
      if (c >= 0x80) {
        const size_t n = utf8_length(std::string_view(p, static_cast<size_t>(end - p)));
        if (n == 0) {  // invalid UTF-8: json::dump replaces it, its own way
          out_.resize(start);
          out_ += json(s).dump(-1, ' ', false, json::error_handler_t::replace);
          return;
        }
        out_.append(p, n);
        p += n;
        continue;
      }
      ++p;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out_.append(u, sizeof u);
        }
      }
    }
    out_ += '"';
  }
};

}  // namespace

size_t utf8_length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

std::optional<json> parse(std::string_view text, ParseFailure* why, int max_depth) {
  json value;
  const ParseFailure failure = Parser(text, max_depth).parse(value);
  if (why != nullptr) *why = failure;
  if (failure != ParseFailure::kNone) return std::nullopt;
  return value;
}

std::string describe(ParseFailure why) {
  if (why == ParseFailure::kTooDeep) {
    return "the JSON nests arrays and objects more than " + std::to_string(kMaxDepth) + " levels deep";
  }
  return "the text is not valid JSON";
}

std::string dump(const json& value) {
  std::string out;
  out.reserve(256);  // a message's text, written without growing it on the way in most cases
  Writer(out).value(value);
  return out;
}

}  // namespace mcph::json_text
