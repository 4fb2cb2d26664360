// JSON Schema validation for tool input schemas. compile() turns the schema document into a
// tree of Nodes once (regexes built, $refs linked, keyword values type-checked); validate()
// then walks that tree against each instance without touching the schema JSON again.

#include "protocol/schema.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <compare>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// GCC 12's libstdc++ <regex> trips a false -Wmaybe-uninitialized inside std::function when
// optimizing with sanitizers (GCC bug 105562); silence it for that header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <regex>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace mcph::protocol {
namespace {

using json = nlohmann::json;

// How many $refs may be followed on one validation path. Recursive schemas (trees, linked
// lists) are legal, but a cycle such as {"$ref": "#"} would otherwise never terminate.
constexpr int kMaxRefDepth = 64;
// How deeply schema objects may nest. compile() recurses once per level, and the schema comes
// from a plugin or a remote server, so its depth must not decide the size of our stack.
constexpr int kMaxSchemaDepth = 128;

// ---------------------------------------------------------------------------------------------
// Number and value comparison. nlohmann::json keeps numbers as int64, uint64 or double; JSON
// Schema treats them all as mathematical numbers (1 == 1.0), so compare exactly, never through
// a lossy cast to double.

std::partial_ordering compare_int_double(std::int64_t a, double b) {
  if (std::isnan(b)) return std::partial_ordering::unordered;
  if (b >= 0x1p63) return std::partial_ordering::less;
  if (b < -0x1p63) return std::partial_ordering::greater;
  const double floor_b = std::floor(b);
  const auto whole = static_cast<std::int64_t>(floor_b);  // exact: in range and integral
  if (a != whole) return a <=> whole;
  return floor_b == b ? std::partial_ordering::equivalent : std::partial_ordering::less;
}

std::partial_ordering compare_uint_double(std::uint64_t a, double b) {
  if (std::isnan(b)) return std::partial_ordering::unordered;
  if (b < 0) return std::partial_ordering::greater;
  if (b >= 0x1p64) return std::partial_ordering::less;
  const double floor_b = std::floor(b);
  const auto whole = static_cast<std::uint64_t>(floor_b);
  if (a != whole) return a <=> whole;
  return floor_b == b ? std::partial_ordering::equivalent : std::partial_ordering::less;
}

std::partial_ordering compare_int_uint(std::int64_t a, std::uint64_t b) {
  if (a < 0) return std::partial_ordering::less;
  return static_cast<std::uint64_t>(a) <=> b;
}

// Both arguments must be numbers. Each value is read only as the type it is stored as: casting
// a large double to an integer type would be undefined behaviour.
std::partial_ordering compare_numbers(const json& a, const json& b) {
  using T = json::value_t;
  const auto ta = a.type();
  const auto tb = b.type();
  if (ta == T::number_integer) {
    const auto ia = a.get<std::int64_t>();
    if (tb == T::number_integer) return ia <=> b.get<std::int64_t>();
    if (tb == T::number_unsigned) return compare_int_uint(ia, b.get<std::uint64_t>());
    return compare_int_double(ia, b.get<double>());
  }
  if (ta == T::number_unsigned) {
    const auto ua = a.get<std::uint64_t>();
    if (tb == T::number_integer) return 0 <=> compare_int_uint(b.get<std::int64_t>(), ua);
    if (tb == T::number_unsigned) return ua <=> b.get<std::uint64_t>();
    return compare_uint_double(ua, b.get<double>());
  }
  const auto da = a.get<double>();
  if (tb == T::number_integer) return 0 <=> compare_int_double(b.get<std::int64_t>(), da);
  if (tb == T::number_unsigned) return 0 <=> compare_uint_double(b.get<std::uint64_t>(), da);
  return da <=> b.get<double>();
}

// Ranks kinds of value so that different kinds never compare equal (1 != true, 0 != false).
int kind_rank(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return 0;
    case json::value_t::boolean: return 1;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return 2;
    case json::value_t::string: return 3;
    case json::value_t::array: return 4;
    case json::value_t::object: return 5;
    default: return 6;  // binary/discarded never come out of the parser
  }
}

// A total order whose equivalence is JSON Schema equality: numbers by value, containers
// element-wise. Being total lets uniqueItems sort instead of comparing every pair.
std::weak_ordering compare_values(const json& a, const json& b) {
  const int rank_a = kind_rank(a);
  const int rank_b = kind_rank(b);
  if (rank_a != rank_b) return rank_a <=> rank_b;
  switch (rank_a) {
    case 0: return std::weak_ordering::equivalent;
    case 1: return a.get<bool>() <=> b.get<bool>();
    case 2: {
      const auto order = compare_numbers(a, b);
      if (order == std::partial_ordering::less) return std::weak_ordering::less;
      if (order == std::partial_ordering::greater) return std::weak_ordering::greater;
      if (order == std::partial_ordering::equivalent) return std::weak_ordering::equivalent;
      // NaN cannot be parsed from JSON; order it below every number to keep the order total.
      const bool nan_a = std::isnan(a.get<double>());
      const bool nan_b = std::isnan(b.get<double>());
      return nan_b <=> nan_a;
    }
    case 3: return a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>()) <=> 0;
    case 4: {
      const auto& xs = a.get_ref<const json::array_t&>();
      const auto& ys = b.get_ref<const json::array_t&>();
      if (xs.size() != ys.size()) return xs.size() <=> ys.size();
      for (std::size_t i = 0; i < xs.size(); ++i) {
        if (const auto order = compare_values(xs[i], ys[i]); order != 0) return order;
      }
      return std::weak_ordering::equivalent;
    }
    case 5: {
      // object_t is a std::map, so both sides iterate in key order.
      const auto& xs = a.get_ref<const json::object_t&>();
      const auto& ys = b.get_ref<const json::object_t&>();
      if (xs.size() != ys.size()) return xs.size() <=> ys.size();
      for (auto x = xs.begin(), y = ys.begin(); x != xs.end(); ++x, ++y) {
        if (const int keys = x->first.compare(y->first); keys != 0) return keys <=> 0;
        if (const auto order = compare_values(x->second, y->second); order != 0) return order;
      }
      return std::weak_ordering::equivalent;
    }
    default:
      if (a == b) return std::weak_ordering::equivalent;
      return a < b ? std::weak_ordering::less : std::weak_ordering::greater;
  }
}

bool values_equal(const json& a, const json& b) { return compare_values(a, b) == 0; }

// "integer" means a mathematical integer, so 1.0 qualifies (draft-07 §6.1.1 / 2020-12 §6.1.1).
bool is_integral(const json& v) {
  if (v.is_number_integer()) return true;
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

std::uint64_t magnitude(const json& integer) {
  if (integer.is_number_unsigned()) return integer.get<std::uint64_t>();
  const auto i = integer.get<std::int64_t>();
  // Unsigned negation is well defined even for INT64_MIN.
  return i < 0 ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
}

// `divisor` is known to be > 0. Integers use exact arithmetic. For floats, 0.0075 / 0.0001
// comes out as 74.99999999999999, so accept a quotient within a few ulps of an integer; an
// infinite quotient (1e308 / 0.123) is not a multiple.
bool is_multiple_of(const json& value, const json& divisor) {
  if (value.is_number_integer() && divisor.is_number_integer()) {
    return magnitude(value) % magnitude(divisor) == 0;
  }
  const double quotient = value.get<double>() / divisor.get<double>();
  if (!std::isfinite(quotient)) return false;
  return std::fabs(quotient - std::nearbyint(quotient)) <= 8 * DBL_EPSILON * std::fabs(quotient);
}

// minLength/maxLength count code points (draft-07 §6.3.1). Strings are UTF-8, so count every
// byte that does not continue a multi-byte sequence.
std::size_t count_code_points(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string escape_pointer_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Messages quote schema values; keep a long enum from flooding the model's context.
std::string short_dump(const json& v) {
  constexpr std::size_t kMax = 80;
  std::string s = v.dump();
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

// "1 item", "3 items": messages are read by models and people alike.
std::string count_of(std::size_t n, const char* singular, const char* plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

// ---------------------------------------------------------------------------------------------
// The compiled tree.

enum TypeBit : std::uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kString = 32,
  kInteger = 64,
};

std::optional<std::uint8_t> type_bit(std::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  if (name == "number") return kNumber;
  if (name == "string") return kString;
  if (name == "integer") return kInteger;
  return std::nullopt;
}

std::uint8_t type_bits_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return kNull;
    case json::value_t::boolean: return kBoolean;
    case json::value_t::object: return kObject;
    case json::value_t::array: return kArray;
    case json::value_t::string: return kString;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return kNumber | kInteger;
    case json::value_t::number_float: return is_integral(v) ? kNumber | kInteger : kNumber;
    default: return 0;
  }
}

const char* type_name_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    default: return "unknown";
  }
}

// A "pattern" or "patternProperties" regex, with its source kept for messages. Matching is on
// UTF-8 bytes: literal non-ASCII text works, but "." matches one byte, not one code point.
struct Pattern {
  std::string source;
  std::regex regex;
  // False when the regex runs on a backtracking executor, which recurses once per input
  // character: a long string would overflow the stack (a crash, not an exception).
  bool any_input_length = false;
};

// Longest string handed to a backtracking regex. About 1.6 KB of stack per character were
// measured under ASan (libstdc++ 12), so this stays well inside a 8 MB thread stack.
constexpr std::size_t kMaxBacktrackingInput = 1000;

// Throws std::regex_error for an invalid pattern.
Pattern make_pattern(std::string source) {
#if defined(__GLIBCXX__)
  // libstdc++'s __polynomial flag selects its Thompson-NFA executor: stack depth independent of
  // the input and no exponential backtracking, which matters for strings chosen by a model. It
  // rejects back-references, which only the backtracking executor supports.
  try {
    std::regex regex(source, std::regex::ECMAScript | std::regex_constants::__polynomial);
    return Pattern{std::move(source), std::move(regex), true};
  } catch (const std::regex_error& e) {
    if (e.code() != std::regex_constants::error_complexity) throw;
  }
#endif
  std::regex regex(source, std::regex::ECMAScript);
  return Pattern{std::move(source), std::move(regex), false};
}

enum class Match { kYes, kNo, kUnchecked };

// Patterns are not anchored (draft-07 §6.3.3), hence regex_search. libstdc++ reports runaway
// backtracking as regex_error; that must not escape validate().
Match search(const Pattern& pattern, const std::string& s) {
  if (!pattern.any_input_length && s.size() > kMaxBacktrackingInput) return Match::kUnchecked;
  try {
    return std::regex_search(s, pattern.regex) ? Match::kYes : Match::kNo;
  } catch (const std::regex_error&) {
    return Match::kUnchecked;
  }
}

std::string unchecked_message(const Pattern& pattern) {
  return "could not be checked against pattern " + json(pattern.source).dump() +
         " (input too long or too complex)";
}

struct Node;

struct PatternProperty {
  Pattern pattern;
  const Node* schema = nullptr;
};

struct Node {
  enum class Kind { kAny, kNothing, kKeywords };
  Kind kind = Kind::kKeywords;

  const Node* ref = nullptr;

  std::uint8_t types = 0;  // 0: no "type" keyword
  std::string type_names;  // "string or null", for messages
  std::optional<std::vector<json>> enum_values;
  std::optional<json> const_value;

  std::optional<json> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;

  std::optional<std::size_t> min_length, max_length;
  std::optional<Pattern> pattern;

  std::unordered_map<std::string, const Node*> properties;
  std::vector<PatternProperty> pattern_properties;
  const Node* additional_properties = nullptr;
  const Node* property_names = nullptr;
  // Deduplicated, in declaration order, so the first missing name reported is the first the
  // schema author listed. Checked by lookup in the instance object, which is already a map.
  std::vector<std::string> required;
  std::vector<std::pair<std::string, std::vector<std::string>>> dependent_required;
  std::optional<std::size_t> min_properties, max_properties;

  // draft-07 "items": [..] / 2020-12 "prefixItems" fill prefix_items; draft-07
  // "additionalItems" / 2020-12 "items" (a schema) fill rest_items.
  std::vector<const Node*> prefix_items;
  const Node* rest_items = nullptr;
  std::optional<std::size_t> min_items, max_items;
  bool unique_items = false;
  const Node* contains = nullptr;

  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_schema = nullptr;
  const Node* if_schema = nullptr;
  const Node* then_schema = nullptr;
  const Node* else_schema = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Validation.

// An instance location, kept on the stack as a chain of parents so the success path never
// builds a string; render() runs only for the one reported failure.
struct Path {
  const Path* parent = nullptr;
  std::string_view key;
  std::size_t index = 0;
  bool is_index = false;

  Path child(std::string_view k) const { return Path{this, k, 0, false}; }
  Path child(std::size_t i) const { return Path{this, {}, i, true}; }

  std::string render() const {
    if (parent == nullptr) return "(root)";
    std::vector<const Path*> chain;
    for (const Path* p = this; p->parent != nullptr; p = p->parent) chain.push_back(p);
    std::string out;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      out += '/';
      out += (*it)->is_index ? std::to_string((*it)->index) : escape_pointer_token((*it)->key);
    }
    return out;
  }
};

struct Context {
  int ref_depth = 0;
  // > 0 while trying alternatives (anyOf, not, if, ...): their failures are expected, so no
  // message is built for them.
  int quiet = 0;
  // Set when validation had to give up (recursion limit). Every caller then fails at once;
  // otherwise "not" or "anyOf" could turn a give-up into a pass.
  bool aborted = false;
  std::string message;
};

class Validator {
 public:
  explicit Validator(Context& ctx) : ctx_(ctx) {}

  bool check(const Node& node, const json& v, const Path& path) {
    if (ctx_.aborted) return false;
    switch (node.kind) {
      case Node::Kind::kAny: return true;
      case Node::Kind::kNothing: return fail(path, [] { return std::string("no value is allowed here"); });
      case Node::Kind::kKeywords: break;
    }
    if (node.ref != nullptr && !check_ref(*node.ref, v, path)) return false;
    return check_generic(node, v, path) && check_number(node, v, path) &&
           check_string(node, v, path) && check_object(node, v, path) &&
           check_array(node, v, path) && check_combinators(node, v, path);
  }

 private:
  // Builds the message only when someone will read it.
  template <class MakeMessage>
  bool fail(const Path& path, MakeMessage&& make_message) {
    if (ctx_.quiet == 0) ctx_.message = path.render() + ": " + make_message();
    return false;
  }

  // Runs `node` against `v` for its verdict only.
  bool matches(const Node& node, const json& v, const Path& path) {
    ++ctx_.quiet;
    const bool ok = check(node, v, path);
    --ctx_.quiet;
    return ok;
  }

  bool check_ref(const Node& target, const json& v, const Path& path) {
    if (ctx_.ref_depth >= kMaxRefDepth) {
      ctx_.aborted = true;
      ctx_.message = path.render() + ": $ref recursion too deep (limit " +
                     std::to_string(kMaxRefDepth) + ")";
      return false;
    }
    ++ctx_.ref_depth;
    const bool ok = check(target, v, path);
    --ctx_.ref_depth;
    return ok;
  }

  bool check_generic(const Node& node, const json& v, const Path& path) {
    if (node.types != 0 && (node.types & type_bits_of(v)) == 0) {
      return fail(path, [&] { return "expected " + node.type_names + ", got " + type_name_of(v); });
    }
    if (node.const_value && !values_equal(*node.const_value, v)) {
      return fail(path, [&] { return "must be equal to " + short_dump(*node.const_value); });
    }
    if (node.enum_values) {
      const auto& values = *node.enum_values;
      const bool found = std::any_of(values.begin(), values.end(),
                                     [&](const json& allowed) { return values_equal(allowed, v); });
      if (!found) return fail(path, [&] { return "must be one of " + short_dump(json(values)); });
    }
    return true;
  }

  bool check_number(const Node& node, const json& v, const Path& path) {
    if (!v.is_number()) return true;
    if (node.minimum && compare_numbers(v, *node.minimum) < 0) {
      return fail(path, [&] { return "must be >= " + node.minimum->dump(); });
    }
    if (node.maximum && compare_numbers(v, *node.maximum) > 0) {
      return fail(path, [&] { return "must be <= " + node.maximum->dump(); });
    }
    if (node.exclusive_minimum && compare_numbers(v, *node.exclusive_minimum) <= 0) {
      return fail(path, [&] { return "must be > " + node.exclusive_minimum->dump(); });
    }
    if (node.exclusive_maximum && compare_numbers(v, *node.exclusive_maximum) >= 0) {
      return fail(path, [&] { return "must be < " + node.exclusive_maximum->dump(); });
    }
    if (node.multiple_of && !is_multiple_of(v, *node.multiple_of)) {
      return fail(path, [&] { return "must be a multiple of " + node.multiple_of->dump(); });
    }
    return true;
  }

  bool check_string(const Node& node, const json& v, const Path& path) {
    if (!v.is_string()) return true;
    const auto& s = v.get_ref<const std::string&>();
    if (node.min_length || node.max_length) {
      const std::size_t length = count_code_points(s);
      if (node.min_length && length < *node.min_length) {
        return fail(path, [&] {
          return "must be at least " + count_of(*node.min_length, "character", "characters") + " long";
        });
      }
      if (node.max_length && length > *node.max_length) {
        return fail(path, [&] {
          return "must be at most " + count_of(*node.max_length, "character", "characters") + " long";
        });
      }
    }
    if (node.pattern) return check_pattern(*node.pattern, s, path);
    return true;
  }

  bool check_pattern(const Pattern& pattern, const std::string& s, const Path& path) {
    switch (search(pattern, s)) {
      case Match::kYes: return true;
      case Match::kNo:
        return fail(path, [&] { return "does not match pattern " + json(pattern.source).dump(); });
      case Match::kUnchecked: return fail(path, [&] { return unchecked_message(pattern); });
    }
    return false;
  }

  bool check_object(const Node& node, const json& v, const Path& path) {
    if (!v.is_object()) return true;
    for (const auto& name : node.required) {
      if (!v.contains(name)) {
        return fail(path, [&] { return "missing required property " + json(name).dump(); });
      }
    }
    for (const auto& entry : node.dependent_required) {  // not [name, ...]: clang 14 cannot capture bindings
      const auto& name = entry.first;
      if (!v.contains(name)) continue;
      for (const auto& other : entry.second) {
        if (v.contains(other)) continue;
        return fail(path, [&] {
          return "property " + json(name).dump() + " requires property " + json(other).dump();
        });
      }
    }
    if (node.min_properties && v.size() < *node.min_properties) {
      return fail(path, [&] {
        return "must have at least " + count_of(*node.min_properties, "property", "properties");
      });
    }
    if (node.max_properties && v.size() > *node.max_properties) {
      return fail(path, [&] {
        return "must have at most " + count_of(*node.max_properties, "property", "properties");
      });
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!check_member(node, it.key(), it.value(), path)) return false;
    }
    return true;
  }

  bool check_member(const Node& node, const std::string& key, const json& member, const Path& path) {
    const Path member_path = path.child(key);
    if (node.property_names != nullptr && !matches(*node.property_names, json(key), member_path)) {
      if (ctx_.aborted) return false;
      return fail(path, [&] { return "invalid property name " + json(key).dump(); });
    }
    bool declared = false;
    if (const auto it = node.properties.find(key); it != node.properties.end()) {
      declared = true;
      if (!check(*it->second, member, member_path)) return false;
    }
    for (const auto& pp : node.pattern_properties) {
      const Match m = search(pp.pattern, key);
      if (m == Match::kUnchecked) {
        return fail(path, [&] {
          return "property name " + json(key).dump() + " " + unchecked_message(pp.pattern);
        });
      }
      if (m == Match::kNo) continue;
      declared = true;
      if (!check(*pp.schema, member, member_path)) return false;
    }
    if (declared || node.additional_properties == nullptr) return true;
    if (node.additional_properties->kind == Node::Kind::kNothing) {
      return fail(path, [&] { return "unexpected property " + json(key).dump(); });
    }
    return check(*node.additional_properties, member, member_path);
  }

  bool check_array(const Node& node, const json& v, const Path& path) {
    if (!v.is_array()) return true;
    const std::size_t n = v.size();
    if (node.min_items && n < *node.min_items) {
      return fail(path, [&] { return "must have at least " + count_of(*node.min_items, "item", "items"); });
    }
    if (node.max_items && n > *node.max_items) {
      return fail(path, [&] { return "must have at most " + count_of(*node.max_items, "item", "items"); });
    }
    const std::size_t prefix = node.prefix_items.size();
    if (node.rest_items != nullptr && node.rest_items->kind == Node::Kind::kNothing && n > prefix) {
      return fail(path, [&] { return "must have at most " + count_of(prefix, "item", "items"); });
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Node* item_schema = i < prefix ? node.prefix_items[i] : node.rest_items;
      if (item_schema != nullptr && !check(*item_schema, v[i], path.child(i))) return false;
    }
    if (node.unique_items && !check_unique(v, path)) return false;
    if (node.contains != nullptr && !check_contains(*node.contains, v, path)) return false;
    return true;
  }

  // Sorting by the equality-compatible total order is O(n log n); pairwise would let a long
  // array from a model cost O(n^2) on every call.
  bool check_unique(const json& v, const Path& path) {
    std::vector<std::pair<const json*, std::size_t>> items;
    items.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) items.emplace_back(&v[i], i);
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
      return compare_values(*a.first, *b.first) < 0;
    });
    for (std::size_t i = 1; i < items.size(); ++i) {
      if (!values_equal(*items[i - 1].first, *items[i].first)) continue;
      return fail(path, [&] {
        return "items must be unique (items " + std::to_string(items[i - 1].second) + " and " +
               std::to_string(items[i].second) + " are equal)";
      });
    }
    return true;
  }

  bool check_contains(const Node& contains, const json& v, const Path& path) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (matches(contains, v[i], path.child(i))) return true;
      if (ctx_.aborted) return false;
    }
    return fail(path, [] { return std::string("must contain at least one matching item (contains)"); });
  }

  bool check_combinators(const Node& node, const json& v, const Path& path) {
    for (const Node* sub : node.all_of) {
      if (!check(*sub, v, path)) return false;  // the branch's own message is the useful one
    }
    if (!node.any_of.empty() && !check_any_of(node.any_of, v, path)) return false;
    if (!node.one_of.empty() && !check_one_of(node.one_of, v, path)) return false;
    if (node.not_schema != nullptr && !check_not(*node.not_schema, v, path)) return false;
    if (node.if_schema != nullptr) return check_conditional(node, v, path);
    return true;
  }

  bool check_any_of(const std::vector<const Node*>& subs, const json& v, const Path& path) {
    for (const Node* sub : subs) {
      if (matches(*sub, v, path)) return true;
      if (ctx_.aborted) return false;
    }
    return fail(path, [] { return std::string("does not match any of the allowed schemas (anyOf)"); });
  }

  bool check_one_of(const std::vector<const Node*>& subs, const json& v, const Path& path) {
    int matched = 0;
    for (const Node* sub : subs) {
      if (matches(*sub, v, path)) ++matched;
      if (ctx_.aborted) return false;
      if (matched > 1) {
        return fail(path, [] { return std::string("matches more than one of the allowed schemas (oneOf)"); });
      }
    }
    if (matched == 1) return true;
    return fail(path, [] { return std::string("does not match any of the allowed schemas (oneOf)"); });
  }

  bool check_not(const Node& sub, const json& v, const Path& path) {
    const bool matched = matches(sub, v, path);
    if (ctx_.aborted) return false;
    if (!matched) return true;
    return fail(path, [] { return std::string("must not match the schema in \"not\""); });
  }

  bool check_conditional(const Node& node, const json& v, const Path& path) {
    const bool condition = matches(*node.if_schema, v, path);
    if (ctx_.aborted) return false;
    const Node* branch = condition ? node.then_schema : node.else_schema;
    return branch == nullptr || check(*branch, v, path);
  }

  Context& ctx_;
};

// Immutable after compile(); validate() keeps its state in a Context on the stack, so one
// compiled schema may serve many threads at once.
class CompiledSchema final : public Schema {
 public:
  CompiledSchema(std::vector<std::unique_ptr<Node>> nodes, const Node* root)
      : nodes_(std::move(nodes)), root_(root) {}

  std::string validate(const json& value) const override {
    try {
      Context ctx;
      Validator validator(ctx);
      if (validator.check(*root_, value, Path{})) return {};
      return ctx.message;
    } catch (const std::exception& e) {
      // Only allocation failure is expected here; keep the promise of never throwing.
      return std::string("(root): validation failed: ") + e.what();
    }
  }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;  // owns every Node; links between them are raw
  const Node* root_;
};

// ---------------------------------------------------------------------------------------------
// Compilation.

// Where a subschema sits in the document, as a JSON pointer ("" is the root). Nodes are
// registered by pointer so $refs can find them, and compile errors can name the location.
using SchemaPointer = std::string;

std::string child_pointer(const SchemaPointer& parent, std::string_view token) {
  return parent + "/" + escape_pointer_token(token);
}

// $ref values are URI references, so the fragment is percent-encoded (RFC 6901 §6).
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

class Compiler {
 public:
  explicit Compiler(const json& document) : document_(document) {
    // draft-07 §8.3: "All other properties in a "$ref" object MUST be ignored." 2019-09 made
    // $ref an ordinary applicator, so newer dialects evaluate the siblings too.
    const auto dialect = document.is_object() ? document.find("$schema") : document.end();
    if (dialect != document.end() && dialect->is_string()) {
      const auto& uri = dialect->get_ref<const std::string&>();
      ref_overrides_siblings_ =
          uri.find("2019-09") == std::string::npos && uri.find("2020-12") == std::string::npos;
    }
  }

  Result<std::shared_ptr<const Schema>> run() {
    const Node* root = compile_node(document_, "", 0);
    while (root != nullptr && !pending_refs_.empty() && !error_) {
      const PendingRef pending = pending_refs_.back();
      pending_refs_.pop_back();
      link_ref(pending);
    }
    if (error_) return Error{*error_};
    return std::shared_ptr<const Schema>(std::make_shared<CompiledSchema>(std::move(nodes_), root));
  }

 private:
  struct PendingRef {
    Node* node;
    std::string ref;
    SchemaPointer where;
  };

  std::nullptr_t fail(const SchemaPointer& where, const std::string& message) {
    if (!error_) error_ = "invalid schema at #" + where + ": " + message;
    return nullptr;
  }

  // Returns nullptr (with error_ set) on failure. Each location is compiled at most once, so a
  // $ref and the ordinary walk share one Node.
  Node* compile_node(const json& schema, const SchemaPointer& where, int depth) {
    if (const auto it = by_pointer_.find(where); it != by_pointer_.end()) return it->second;
    if (depth > kMaxSchemaDepth) return fail(where, "schema is nested too deeply");
    if (!schema.is_object() && !schema.is_boolean()) {
      return fail(where, "a schema must be an object or a boolean");
    }
    nodes_.push_back(std::make_unique<Node>());
    Node* node = nodes_.back().get();
    by_pointer_.emplace(where, node);
    if (schema.is_boolean()) {
      node->kind = schema.get<bool>() ? Node::Kind::kAny : Node::Kind::kNothing;
      return node;
    }
    if (const auto ref = schema.find("$ref"); ref != schema.end()) {
      if (!ref->is_string()) return fail(where, "$ref must be a string");
      pending_refs_.push_back({node, ref->get<std::string>(), where});
      if (ref_overrides_siblings_) return node;
    }
    const Scope scope{schema, where, depth + 1};
    const bool ok = compile_generic(scope, *node) && compile_numeric(scope, *node) &&
                    compile_string(scope, *node) && compile_object(scope, *node) &&
                    compile_array(scope, *node) && compile_combinators(scope, *node);
    return ok ? node : nullptr;
  }

  // The schema object being compiled, bundled so the keyword helpers take few arguments.
  struct Scope {
    const json& schema;
    const SchemaPointer& where;
    int child_depth;

    const json* get(const char* keyword) const {
      const auto it = schema.find(keyword);
      return it == schema.end() ? nullptr : &*it;
    }
  };

  const Node* subschema(const Scope& s, const json& value, const SchemaPointer& where) {
    return compile_node(value, where, s.child_depth);
  }

  // keyword: <schema>
  bool read_schema(const Scope& s, const char* keyword, const Node*& out) {
    const json* v = s.get(keyword);
    if (v == nullptr) return true;
    out = subschema(s, *v, child_pointer(s.where, keyword));
    return out != nullptr;
  }

  // keyword: [<schema>, ...]
  bool read_schema_array(const Scope& s, const char* keyword, std::vector<const Node*>& out) {
    const json* v = s.get(keyword);
    if (v == nullptr) return true;
    if (!v->is_array() || v->empty()) {
      fail(s.where, std::string(keyword) + " must be a non-empty array of schemas");
      return false;
    }
    const SchemaPointer base = child_pointer(s.where, keyword);
    for (std::size_t i = 0; i < v->size(); ++i) {
      const Node* sub = subschema(s, (*v)[i], base + "/" + std::to_string(i));
      if (sub == nullptr) return false;
      out.push_back(sub);
    }
    return true;
  }

  bool read_number(const Scope& s, const char* keyword, std::optional<json>& out) {
    const json* v = s.get(keyword);
    if (v == nullptr) return true;
    if (!v->is_number()) {
      fail(s.where, std::string(keyword) + " must be a number");
      return false;
    }
    out = *v;
    return true;
  }

  // Counts may be written 2 or 2.0; anything beyond SIZE_MAX is as good as unlimited.
  bool read_count(const Scope& s, const char* keyword, std::optional<std::size_t>& out) {
    const json* v = s.get(keyword);
    if (v == nullptr) return true;
    if (!is_integral(*v) || compare_numbers(*v, json(0)) < 0) {
      fail(s.where, std::string(keyword) + " must be a non-negative integer");
      return false;
    }
    if (v->is_number_float()) {
      const double d = v->get<double>();
      out = d >= 0x1p64 ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(d);
    } else {
      out = static_cast<std::size_t>(v->get<std::uint64_t>());
    }
    return true;
  }

  bool read_string_array(const Scope& s, const json& v, const std::string& what,
                         std::vector<std::string>& out) {
    if (!v.is_array()) {
      fail(s.where, what + " must be an array of strings");
      return false;
    }
    for (const auto& item : v) {
      if (!item.is_string()) {
        fail(s.where, what + " must be an array of strings");
        return false;
      }
      const auto& name = item.get_ref<const std::string&>();
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return true;
  }

  std::optional<Pattern> read_pattern(const Scope& s, const std::string& source, const char* keyword) {
    try {
      return make_pattern(source);
    } catch (const std::regex_error& e) {
      fail(s.where, std::string("invalid regex ") + json(source).dump() + " in " + keyword + ": " + e.what());
      return std::nullopt;
    }
  }

  bool compile_generic(const Scope& s, Node& node) {
    if (const json* type = s.get("type"); type != nullptr && !compile_type(s, *type, node)) return false;
    if (const json* values = s.get("enum")) {
      if (!values->is_array()) {
        fail(s.where, "enum must be an array");
        return false;
      }
      node.enum_values = values->get<std::vector<json>>();
    }
    if (const json* value = s.get("const")) node.const_value = *value;
    return true;
  }

  bool compile_type(const Scope& s, const json& type, Node& node) {
    const json names = type.is_string() ? json::array({type}) : type;
    if (!names.is_array() || names.empty()) {
      fail(s.where, "type must be a type name or a non-empty array of type names");
      return false;
    }
    for (const auto& name : names) {
      const auto bit = name.is_string() ? type_bit(name.get_ref<const std::string&>()) : std::nullopt;
      if (!bit) {
        fail(s.where, "unknown type " + name.dump());
        return false;
      }
      node.types |= *bit;
      if (!node.type_names.empty()) node.type_names += " or ";
      node.type_names += name.get_ref<const std::string&>();
    }
    return true;
  }

  bool compile_numeric(const Scope& s, Node& node) {
    if (!read_number(s, "minimum", node.minimum) || !read_number(s, "maximum", node.maximum) ||
        !read_number(s, "exclusiveMinimum", node.exclusive_minimum) ||
        !read_number(s, "exclusiveMaximum", node.exclusive_maximum) ||
        !read_number(s, "multipleOf", node.multiple_of)) {
      return false;
    }
    if (node.multiple_of && compare_numbers(*node.multiple_of, json(0)) <= 0) {
      fail(s.where, "multipleOf must be greater than 0");
      return false;
    }
    return true;
  }

  bool compile_string(const Scope& s, Node& node) {
    if (!read_count(s, "minLength", node.min_length) || !read_count(s, "maxLength", node.max_length)) {
      return false;
    }
    const json* pattern = s.get("pattern");
    if (pattern == nullptr) return true;
    if (!pattern->is_string()) {
      fail(s.where, "pattern must be a string");
      return false;
    }
    node.pattern = read_pattern(s, pattern->get<std::string>(), "pattern");
    return node.pattern.has_value();
  }

  bool compile_object(const Scope& s, Node& node) {
    return compile_properties(s, node) && compile_pattern_properties(s, node) &&
           read_schema(s, "additionalProperties", node.additional_properties) &&
           read_schema(s, "propertyNames", node.property_names) && compile_required(s, node) &&
           read_count(s, "minProperties", node.min_properties) &&
           read_count(s, "maxProperties", node.max_properties);
  }

  bool compile_properties(const Scope& s, Node& node) {
    const json* properties = s.get("properties");
    if (properties == nullptr) return true;
    if (!properties->is_object()) {
      fail(s.where, "properties must be an object");
      return false;
    }
    const SchemaPointer base = child_pointer(s.where, "properties");
    for (const auto& [name, sub_json] : properties->items()) {
      const Node* sub = subschema(s, sub_json, child_pointer(base, name));
      if (sub == nullptr) return false;
      node.properties.emplace(name, sub);
    }
    return true;
  }

  bool compile_pattern_properties(const Scope& s, Node& node) {
    const json* patterns = s.get("patternProperties");
    if (patterns == nullptr) return true;
    if (!patterns->is_object()) {
      fail(s.where, "patternProperties must be an object");
      return false;
    }
    const SchemaPointer base = child_pointer(s.where, "patternProperties");
    for (const auto& [source, sub_json] : patterns->items()) {
      auto pattern = read_pattern(s, source, "patternProperties");
      if (!pattern) return false;
      const Node* sub = subschema(s, sub_json, child_pointer(base, source));
      if (sub == nullptr) return false;
      node.pattern_properties.push_back({std::move(*pattern), sub});
    }
    return true;
  }

  bool compile_required(const Scope& s, Node& node) {
    if (const json* required = s.get("required");
        required != nullptr && !read_string_array(s, *required, "required", node.required)) {
      return false;
    }
    const json* dependent = s.get("dependentRequired");
    if (dependent == nullptr) return true;
    if (!dependent->is_object()) {
      fail(s.where, "dependentRequired must be an object of string arrays");
      return false;
    }
    for (const auto& [name, names] : dependent->items()) {
      std::vector<std::string> also_required;
      if (!read_string_array(s, names, "dependentRequired/" + name, also_required)) return false;
      node.dependent_required.emplace_back(name, std::move(also_required));
    }
    return true;
  }

  bool compile_array(const Scope& s, Node& node) {
    return compile_items(s, node) && read_count(s, "minItems", node.min_items) &&
           read_count(s, "maxItems", node.max_items) && compile_unique_items(s, node) &&
           read_schema(s, "contains", node.contains);
  }

  // draft-07: "items" is a schema for every item, or an array of per-position schemas with
  // "additionalItems" for the rest (ignored otherwise, §6.4.2). 2020-12: "prefixItems" holds
  // the per-position schemas and "items" is the schema for the rest.
  bool compile_items(const Scope& s, Node& node) {
    const json* items = s.get("items");
    if (items != nullptr && items->is_array()) {
      if (s.get("prefixItems") != nullptr) {
        fail(s.where, "items cannot be an array when prefixItems is present");
        return false;
      }
      return read_schema_array(s, "items", node.prefix_items) &&
             read_schema(s, "additionalItems", node.rest_items);
    }
    return read_schema_array(s, "prefixItems", node.prefix_items) &&
           read_schema(s, "items", node.rest_items);
  }

  bool compile_unique_items(const Scope& s, Node& node) {
    const json* unique = s.get("uniqueItems");
    if (unique == nullptr) return true;
    if (!unique->is_boolean()) {
      fail(s.where, "uniqueItems must be a boolean");
      return false;
    }
    node.unique_items = unique->get<bool>();
    return true;
  }

  // "then"/"else" without "if" have no effect (draft-07 §6.6), so they are not compiled.
  bool compile_combinators(const Scope& s, Node& node) {
    if (!read_schema_array(s, "allOf", node.all_of) || !read_schema_array(s, "anyOf", node.any_of) ||
        !read_schema_array(s, "oneOf", node.one_of) || !read_schema(s, "not", node.not_schema)) {
      return false;
    }
    if (s.get("if") == nullptr) return true;
    return read_schema(s, "if", node.if_schema) && read_schema(s, "then", node.then_schema) &&
           read_schema(s, "else", node.else_schema);
  }

  // Resolves one "$ref" against this document and links it; the target is compiled on demand
  // if the ordinary walk did not reach it (e.g. $defs, or any other JSON pointer).
  void link_ref(const PendingRef& pending) {
    const std::string& ref = pending.ref;
    if (ref.empty() || ref.front() != '#') {
      fail(pending.where, "only local $ref ('#...') is supported: " + ref);
      return;
    }
    const auto pointer = percent_decode(std::string_view(ref).substr(1));
    if (!pointer) {
      fail(pending.where, "invalid $ref: " + ref);
      return;
    }
    const json* target = nullptr;
    SchemaPointer canonical;
    try {
      const json::json_pointer parsed(*pointer);
      if (document_.contains(parsed)) target = &document_.at(parsed);
      canonical = parsed.to_string();
    } catch (const json::exception&) {
      target = nullptr;
    }
    if (target == nullptr) {
      fail(pending.where, "unresolvable $ref: " + ref);
      return;
    }
    pending.node->ref = compile_node(*target, canonical, 0);
  }

  const json& document_;
  bool ref_overrides_siblings_ = true;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<SchemaPointer, Node*> by_pointer_;
  std::vector<PendingRef> pending_refs_;
  std::optional<std::string> error_;
};

}  // namespace

Result<std::shared_ptr<const Schema>> Schema::compile(const nlohmann::json& schema) {
  try {
    return Compiler(schema).run();
  } catch (const std::exception& e) {
    // Only allocation failure is expected here; compile() must not throw.
    return Error{std::string("invalid schema: ") + e.what()};
  }
}

}  // namespace mcph::protocol
