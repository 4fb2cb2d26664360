#include "json/bounded.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mcph::json_text {

namespace {

// Bytes a JSON string holds as they are: printable ASCII but the quote and the backslash.
constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();
bool plain(char c) { return kPlain[static_cast<unsigned char>(c)]; }

// JSON's whitespace; most bytes are past ' ', and the first test tells them.
bool space(char c) { return static_cast<unsigned char>(c) <= ' ' && (c == ' ' || c == '\n' || c == '\r' || c == '\t'); }

// Where the run of plain bytes from `p` ends (at `end` at most). Sixteen bytes at a time with
// SSE2 (every x86-64 has it), then eight, then byte by byte: keys and values are mostly plain runs.
inline const char* plain_run(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Compared as signed bytes, those below 0x20 are the controls and every byte from 0x80.
    const __m128i stops = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), _mm_cmplt_epi8(x, space));
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(stops)); mask != 0) return p + std::countr_zero(mask);
    p += 16;
  }
#endif
  constexpr uint64_t kOnes = 0x0101010101010101u, kHighs = 0x8080808080808080u;
  // The high bit of each byte of x below n (n <= 0x80). A borrow may also mark bytes above
  // the first one below n, never one before it: the lowest mark is exact.
  auto below = [](uint64_t x, uint64_t n) { return (x - kOnes * n) & ~x & kHighs; };
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t marks = (x & kHighs) | below(x, 0x20) | below(x ^ (kOnes * '"'), 1) | below(x ^ (kOnes * '\\'), 1);
    if (marks != 0) {
      if constexpr (std::endian::native == std::endian::little) return p + std::countr_zero(marks) / 8;
      break;
    }
    p += 8;
  }
  while (p != end && plain(*p)) ++p;
  return p;
}

// Past a UTF-8 byte order mark at `p`, if there is one; false for one cut short.
bool skip_bom(const char*& p, const char* end) {
  if (p == end || static_cast<unsigned char>(*p) != 0xEF) return true;
  if (end - p < 3 || static_cast<unsigned char>(p[1]) != 0xBB || static_cast<unsigned char>(p[2]) != 0xBF) return false;
  p += 3;
  return true;
}

bool hex4(const char*& p, const char* end, unsigned& out) {
  if (end - p < 4) return false;
  out = 0;
  for (int i = 0; i < 4; ++i) {
    const char h = *p++;
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

// At a backslash (`p`), past the escape it starts: appends the character the escape stands
// for to `s`.
bool read_escape(const char*& p, const char* end, std::string& s) {
  if (++p == end) return false;
  switch (*p++) {
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
  if (!hex4(p, end, cp)) return false;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate must follow a high one
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    unsigned low;
    if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return false;
    p += 2;
    if (!hex4(p, end, low) || low < 0xDC00 || low > 0xDFFF) return false;
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

// After a string's opening quote (`p`), past its closing one: appends its text, unescaped,
// to *s (unless s is null: only checked); *escaped becomes true if it has an escape.
bool read_string(const char*& p, const char* end, std::string* s, bool* escaped = nullptr) {
  while (true) {
    const char* run = p;
    p = plain_run(p, end);
    if (s != nullptr) s->append(run, p);
    if (p == end) return false;
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') return ++p, true;
    if (c == '\\') {
      std::string one;  // (an escape is at most 4 bytes: no allocation)
      if (!read_escape(p, end, s != nullptr ? *s : one)) return false;
      if (escaped != nullptr) *escaped = true;
    } else if (c >= 0x80) {
      const size_t n = utf8_length(std::string_view(p, static_cast<size_t>(end - p)));
      if (n == 0) return false;
      if (s != nullptr) s->append(p, n);
      p += n;
    } else {
      return false;  // a control character must be escaped
    }
  }
}

bool digit(char c) { return c >= '0' && c <= '9'; }

// A number from `p`, past it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, finite as a
// double. Its value goes to *out (unless out is null: only checked).
bool read_number(const char*& p, const char* end, json* out) {
  const char* start = p;
  const bool negative = *p == '-';
  if (negative) ++p;
  if (p == end || !digit(*p)) return false;
  uint64_t magnitude = 0;
  bool fits = true;
  if (*p == '0') {
    ++p;
  } else {
    for (; p != end && digit(*p); ++p) {
      const auto d = static_cast<uint64_t>(*p - '0');
      if (magnitude > (UINT64_MAX - d) / 10) fits = false;
      magnitude = magnitude * 10 + d;
    }
  }
  bool integer = true;
  if (p != end && *p == '.') {
    integer = false;
    if (++p == end || !digit(*p)) return false;
    while (p != end && digit(*p)) ++p;
  }
  if (p != end && (*p == 'e' || *p == 'E')) {
    integer = false;
    if (++p != end && (*p == '+' || *p == '-')) ++p;
    if (p == end || !digit(*p)) return false;
    while (p != end && digit(*p)) ++p;
  }
  if (integer && fits) {
    if (!negative) {
      if (out != nullptr) *out = static_cast<json::number_unsigned_t>(magnitude);
      return true;
    }
    if (magnitude <= static_cast<uint64_t>(INT64_MAX) + 1) {
      if (out != nullptr) *out = static_cast<json::number_integer_t>(0 - magnitude);
      return true;
    }
  }
  // A fraction, an exponent or an integer beyond 64 bits: a double, correctly rounded.
  double d = 0;
  const auto [ptr, ec] = std::from_chars(start, p, d);
  if (ec == std::errc::result_out_of_range) {
    d = std::strtod(std::string(start, p).c_str(), nullptr);  // underflow is a (sub)normal or zero; overflow is inf
  } else if (ec != std::errc() || ptr != p) {
    return false;
  }
  if (!std::isfinite(d)) return false;
  if (out != nullptr) *out = d;
  return true;
}

// The last params._meta parse_request kept written on this thread, and its members (views
// into `text`); see Parser::kept_as_written. Up to kMaxKept bytes.
struct KeptMeta {
  static constexpr size_t kMaxKept = 4096;
  std::string text;  // empty: none
  ScannedObject members;
  int depth = -1;

  void remember(std::string_view from, const ScannedObject& found, int at_depth) {
    if (from.size() > kMaxKept) return;
    text.assign(from);
    members = moved(found, from, text);
    depth = at_depth;
  }
  // `members`, views into `from`, moved to the same places in `onto` (the same bytes).
  static ScannedObject moved(ScannedObject members, std::string_view from, std::string_view onto) {
    auto at = [&](std::string_view part) { return std::string_view(onto.data() + (part.data() - from.data()), part.size()); };
    for (size_t i = 0; i < members.size; ++i) members.members[i] = {at(members.members[i].key), at(members.members[i].value)};
    return members;
  }
};

KeptMeta& kept_meta() {
  thread_local KeptMeta kept;
  return kept;
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
  // keep_meta: parse_request()'s params._meta, kept written when it can stand as written.
  Parser(std::string_view text, int max_depth, bool keep_meta = false)
      : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth), keep_meta_(keep_meta) {}

  ParseFailure parse(json& out) {
    if (!skip_bom(p_, end_)) return ParseFailure::kSyntax;
    if (!value(out, 0)) return failure_;
    skip_space();
    return p_ == end_ ? ParseFailure::kNone : ParseFailure::kSyntax;
  }

 private:
  const char* p_;
  const char* const end_;
  const int max_depth_;
  const bool keep_meta_;
  bool in_params_ = false;  // keep_meta: the top-level member being read is params
  ParseFailure failure_ = ParseFailure::kSyntax;

  bool fail(ParseFailure f = ParseFailure::kSyntax) {
    failure_ = f;
    return false;
  }

  void skip_space() {
    while (p_ != end_ && space(*p_)) ++p_;
  }

  bool kept_as_written(json& out, int depth);  // (after Scanner, which it uses)

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
      // Only a top-level object is at depth 1, and an object at depth 2 is one of its members.
      if (keep_meta_ && depth == 1) in_params_ = key == "params";
      const bool meta = keep_meta_ && depth == 2 && in_params_ && key == "_meta";
      // A repeated key keeps its place and takes the later value, as json::parse does.
      json& slot = members.try_emplace(members.end(), std::move(key))->second;
      if (!(meta ? kept_as_written(slot, depth) : value(slot, depth))) return false;
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
  bool string(std::string& s) { return read_string(++p_, end_, &s) || fail(); }
  bool number(json& out) { return read_number(p_, end_, &out) || fail(); }
};

// Parser's grammar without building anything, for scan_object(): the same checks, the
// same nesting limit (fuzz_json holds them to it), and what a writer needs to pass the
// text on as it is.
class Scanner {
 public:
  Scanner(std::string_view text, int max_depth) : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  ParseFailure scan(ScannedObject& out) {
    const char* start = p_;
    if (!skip_bom(p_, end_)) return ParseFailure::kSyntax;
    spaced_ = p_ != start;  // (a mark cannot stand inside a message)
    skip_space();
    if (p_ == end_ || *p_ != '{') return value(0) ? ParseFailure::kSyntax : failure_;  // valid or not, not an object
    if (const ParseFailure f = scan_object_here(out); f != ParseFailure::kNone) return f;
    skip_space();
    if (p_ != end_) return ParseFailure::kSyntax;
    out.verbatim = !spaced_ && !odd_key_;
    return ParseFailure::kNone;
  }

  // The object at the start (its '{'), up to its closing brace: end() is past that.
  ParseFailure scan_object_here(ScannedObject& out) {
    out_ = &out;
    if (!value(0)) return failure_;
    out.verbatim = !spaced_ && !odd_key_;
    return ParseFailure::kNone;
  }
  const char* end() const { return p_; }

 private:
  const char* p_;
  const char* const end_;
  const int max_depth_;
  ParseFailure failure_ = ParseFailure::kSyntax;
  ScannedObject* out_ = nullptr;
  bool spaced_ = false;   // whitespace between tokens (or a byte order mark)
  bool odd_key_ = false;  // a top-level key escaped or repeated, or too many to compare

  bool fail(ParseFailure f = ParseFailure::kSyntax) {
    failure_ = f;
    return false;
  }

  void skip_space() {
    const char* from = p_;
    while (p_ != end_ && space(*p_)) ++p_;
    if (p_ != from) spaced_ = true;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return fail();
    p_ += word.size();
    return true;
  }

  bool value(int depth) {
    skip_space();
    if (p_ == end_) return fail();
    switch (*p_) {
      case '{': return object(depth + 1);
      case '[': return array(depth + 1);
      case '"': return read_string(++p_, end_, nullptr) || fail();
      case 't': return literal("true");
      case 'f': return literal("false");
      case 'n': return literal("null");
      default: return read_number(p_, end_, nullptr) || fail();
    }
  }

  bool object(int depth) {
    if (depth > max_depth_) return fail(ParseFailure::kTooDeep);
    ++p_;
    skip_space();
    if (p_ != end_ && *p_ == '}') return ++p_, true;
    while (true) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return fail();
      const char* key = ++p_;
      bool escaped = false;
      if (!read_string(p_, end_, nullptr, &escaped)) return fail();
      const std::string_view name(key, static_cast<size_t>(p_ - 1 - key));
      skip_space();
      if (p_ == end_ || *p_ != ':') return fail();
      ++p_;
      skip_space();
      const char* at = p_;
      if (!value(depth)) return false;
      if (depth == 1) member(name, escaped, std::string_view(at, static_cast<size_t>(p_ - at)));
      skip_space();
      if (p_ == end_) return fail();
      if (*p_ == '}') return ++p_, true;
      if (*p_++ != ',') return fail();
    }
  }

  bool array(int depth) {
    if (depth > max_depth_) return fail(ParseFailure::kTooDeep);
    ++p_;
    skip_space();
    if (p_ != end_ && *p_ == ']') return ++p_, true;
    while (true) {
      if (!value(depth)) return false;
      skip_space();
      if (p_ == end_) return fail();
      if (*p_ == ']') return ++p_, true;
      if (*p_++ != ',') return fail();
    }
  }

  // A member of the top-level object. Keys are compared as written, so one escaped could
  // name the same member as another that is not; past kMaxMembers none is kept.
  void member(std::string_view key, bool escaped, std::string_view value) {
    ScannedObject& o = *out_;
    if (o.size == ScannedObject::kMaxMembers) {
      odd_key_ = true;
      return;
    }
    if (escaped) odd_key_ = true;
    for (size_t i = 0; i < o.size; ++i) {
      if (o.members[i].key == key) odd_key_ = true;
    }
    o.members[o.size++] = {key, value};
  }
};

// A member's value that may stand as written (parse_request's params._meta): an object whose
// text ScannedObject calls verbatim is kept as that text; anything else is built as parse()
// builds it (and fails as parse() fails: a text the scan refused is read again to say why).
//
// A client sends the same _meta with every request (its era, its name, its capabilities),
// so the last one kept on this thread is remembered (KeptMeta): the same bytes again, at the
// same depth, are the same object, checked already, and its members are known. An object's
// text ends with its own closing brace, so a message that starts there with those bytes
// holds exactly that object there.
bool Parser::kept_as_written(json& out, int depth) {
  skip_space();
  if (p_ != end_ && *p_ == '{') {
    const std::string_view rest(p_, static_cast<size_t>(end_ - p_));
    KeptMeta& last = kept_meta();
    if (last.depth == depth && rest.starts_with(last.text)) {  // (depth is -1 until one is kept)
      out = written(last.text);
      p_ += last.text.size();
      return true;
    }
    Scanner scanner(rest, max_depth_ - depth);
    ScannedObject scanned;
    if (scanner.scan_object_here(scanned) == ParseFailure::kNone && scanned.verbatim) {
      const std::string_view text(p_, static_cast<size_t>(scanner.end() - p_));
      out = written(text);
      last.remember(text, scanned, depth);
      p_ = scanner.end();
      return true;
    }
  }
  return value(out, depth);
}

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
      case json::value_t::binary:
        if (auto text = written_text(v)) {
          out_ += *text;
          return;
        }
        [[fallthrough]];
      default: out_ += v.dump(-1, ' ', false, json::error_handler_t::replace); return;  // a double, other binary
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

 public:
  void string(std::string_view s) {
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
          out_ += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
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

namespace {

std::optional<json> parse_with(Parser parser, ParseFailure* why) {
  json value;
  const ParseFailure failure = parser.parse(value);
  if (why != nullptr) *why = failure;
  if (failure != ParseFailure::kNone) return std::nullopt;
  return value;
}

}  // namespace

std::optional<json> parse(std::string_view text, ParseFailure* why, int max_depth) {
  return parse_with(Parser(text, max_depth), why);
}

std::optional<json> parse_request(std::string_view text, ParseFailure* why) {
  return parse_with(Parser(text, kMaxDepth, true), why);
}

std::optional<ScannedObject> scan_object(std::string_view text, ParseFailure* why, int max_depth) {
  ScannedObject scanned;
  const ParseFailure failure = Scanner(text, max_depth).scan(scanned);
  if (why != nullptr) *why = failure;
  if (failure != ParseFailure::kNone) return std::nullopt;
  return scanned;
}

const std::string_view* ScannedObject::find(std::string_view key) const {
  for (size_t i = 0; i < size; ++i) {
    if (members[i].key == key) return &members[i].value;
  }
  return nullptr;
}

ScannedObject members_of(std::string_view text) {
  // The _meta this thread's parse_request kept last (a 2026-07-28 client's, every request):
  // its members are known.
  if (const KeptMeta& last = kept_meta(); text == last.text) return KeptMeta::moved(last.members, last.text, text);
  ScannedObject out;
  out.verbatim = true;
  const char* p = text.data() + 1;  // past '{'
  const char* const end = text.data() + text.size();
  // Past the string whose opening quote `p` is at.
  auto skip_string = [&] {
    for (p = plain_run(p + 1, end); *p != '"'; p = plain_run(p, end)) p += *p == '\\' ? 2 : 1;
    ++p;
  };
  while (p < end && *p == '"' && out.size < ScannedObject::kMaxMembers) {
    const char* key = p + 1;
    skip_string();
    const std::string_view name(key, static_cast<size_t>(p - 1 - key));
    const char* value = ++p;  // past ':'
    for (int depth = 0;;) {
      if (*p == '"') {
        skip_string();
        continue;
      }
      if (*p == '{' || *p == '[') ++depth;
      if ((*p == '}' || *p == ']') && depth-- == 0) break;  // the object's own end
      if (*p == ',' && depth == 0) break;
      ++p;
    }
    out.members[out.size++] = {name, std::string_view(value, static_cast<size_t>(p - value))};
    ++p;  // past ',' (or the closing brace)
  }
  return out;
}

json written(std::string_view text) {
  json::binary_t::container_type bytes;
  bytes.reserve(text.size() + kWrittenRoom);
  const auto* from = reinterpret_cast<const std::uint8_t*>(text.data());  // (copied at once, not byte by byte as chars)
  bytes.insert(bytes.end(), from, from + text.size());
  return json::binary(std::move(bytes), kWrittenSubtype);
}

std::optional<std::string_view> written_text(const json& value) {
  if (!value.is_binary()) return std::nullopt;
  const auto& bytes = value.get_binary();
  if (!bytes.has_subtype() || bytes.subtype() != kWrittenSubtype) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

json built(json value) {
  if (auto text = written_text(value)) return parse(*text).value_or(json());
  return value;
}

std::optional<json> object_as_given(std::string_view text) {
  auto scanned = scan_object(text);
  if (!scanned) return std::nullopt;
  return scanned->verbatim ? written(text) : parse(text);
}

std::string describe(ParseFailure why) {
  if (why == ParseFailure::kTooDeep) {
    return "the JSON nests arrays and objects more than " + std::to_string(kMaxDepth) + " levels deep";
  }
  return "the text is not valid JSON";
}

void append_string(std::string& out, std::string_view text) { Writer(out).string(text); }

std::string dump(const json& value) {
  std::string out;
  out.reserve(256);  // a message's text, written without growing it on the way in most cases
  Writer(out).value(value);
  return out;
}

}  // namespace mcph::json_text
