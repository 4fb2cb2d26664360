// Reads mcp-host.yaml into a validated, immutable Config.
//
// The schema is described by one table of known keys per mapping (kTopFields, kLogFields,
// kServerFields, kPluginFields, kToolFields). Adding a section means writing its fields
// table and one entry in the parent's table; unknown-key messages list the keys from the
// same table, so they cannot drift apart.
//
// Secrets: values that come from the environment or from ${file:...} are never put into an
// error message. Messages quote only text written in the YAML file itself (keys, names, enum
// values, numbers) and never an interpolated value.
#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace mcph::config {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- Files -------------------------------------------------------------------------------

std::string os_reason(int error) {
  return error != 0 ? std::generic_category().message(error) : "read error";
}

// The error is only the OS reason ("No such file or directory") or a bound, so callers
// phrase the message themselves; it never contains file contents. Only regular files are
// read (a FIFO would block, /dev/zero never end), and at most `max_bytes`.
Result<std::string> read_whole_file(const fs::path& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Error{os_reason(errno)};
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  struct stat st{};
  if (::fstat(fd, &st) != 0) return Error{os_reason(errno)};
  if (!S_ISREG(st.st_mode)) return Error{S_ISDIR(st.st_mode) ? os_reason(EISDIR) : "not a regular file"};
  std::string text;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{os_reason(errno)};
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > max_bytes) return Error{"larger than " + std::to_string(max_bytes) + " bytes"};
  }
  return text;
}

constexpr size_t kMaxConfigBytes = 16 * 1024 * 1024;
constexpr size_t kMaxSecretFileBytes = 1024 * 1024;

// ---- Interpolation -----------------------------------------------------------------------

constexpr std::string_view kFilePrefix = "file:";
constexpr std::string_view kDefaultSeparator = ":-";

bool is_ascii_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

// Shell variable names: a letter or '_', then letters, digits, '_'.
bool is_variable_name(std::string_view name) {
  if (name.empty() || is_ascii_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_ascii_letter(c) || is_ascii_digit(c) || c == '_'; });
}

// Secret files are usually written with a trailing newline that is not part of the secret.
std::string strip_one_newline(std::string text) {
  if (text.ends_with("\r\n")) {
    text.resize(text.size() - 2);
  } else if (text.ends_with('\n')) {
    text.pop_back();
  }
  return text;
}

Result<std::string> expand_file(std::string_view path_text, const std::string& base_dir, std::vector<std::string>* files) {
  if (path_text.empty()) return Error{"${file:} needs a path"};
  fs::path path(path_text);
  if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
  path = path.lexically_normal();
  if (files != nullptr) files->push_back(path.string());
  auto contents = read_whole_file(path, kMaxSecretFileBytes);
  if (!contents) return Error{"cannot read file '" + path.string() + "': " + contents.error()};
  return strip_one_newline(std::move(*contents));
}

// ${VAR} or ${VAR:-default}. Like the shell, the default also replaces an empty value.
Result<std::string> expand_variable(std::string_view body) {
  const size_t separator = body.find(kDefaultSeparator);
  const std::string name(body.substr(0, separator));
  if (!is_variable_name(name)) return Error{"invalid variable name '" + name + "' in ${...}"};
  const char* value = std::getenv(name.c_str());
  if (value != nullptr && *value != '\0') return std::string(value);
  if (separator != std::string_view::npos) {
    return std::string(body.substr(separator + kDefaultSeparator.size()));
  }
  if (value != nullptr) return std::string();  // set but empty: "${VAR}" is "", as in the shell
  return Error{"environment variable " + name + " is not set (use ${" + name + ":-} for an optional value)"};
}

// `body` is the text between "${" and "}".
Result<std::string> expand_reference(std::string_view body, const std::string& base_dir, std::vector<std::string>* files) {
  if (body.starts_with(kFilePrefix)) return expand_file(body.substr(kFilePrefix.size()), base_dir, files);
  return expand_variable(body);
}

}  // namespace

Result<std::string> interpolate(const std::string& text, const std::string& base_dir, std::vector<std::string>* files) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // A '$' not followed by '{' or '$' (including a final '$') is an ordinary character.
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (text[i] != '$' || (next != '{' && next != '$')) {
      out += text[i++];
      continue;
    }
    if (next == '$') {
      out += '$';
      i += 2;
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string::npos) return Error{"unterminated '${' (missing '}')"};
    auto value = expand_reference(std::string_view(text).substr(i + 2, close - i - 2), base_dir, files);
    if (!value) return value;
    out += *value;
    i = close + 1;
  }
  return out;
}

namespace {

// ---- Reading context and values ----------------------------------------------------------

Error located_error(const std::string& source, int line, const std::string& what) {
  return Error{source + ":" + std::to_string(line) + ": " + what};
}

struct Context {
  std::string source;  // for messages
  fs::path base_dir;   // absolute; relative paths and ${file:...} resolve against it
  std::vector<std::string>* files = nullptr;  // collects the ${file:...} paths read

  Error fail(int line, const std::string& what) const { return located_error(source, line, what); }
};

// One YAML node being read, with its dotted path ("server.page_size", "plugins[0].name")
// and the 1-based line to report.
struct Value {
  YAML::Node node;
  std::string path;
  int line = 1;
};

// yaml-cpp marks are 0-based; null_mark() is -1.
int line_of(const YAML::Node& node) { return std::max(node.Mark().line + 1, 1); }

std::string child_path(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string item_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::string describe(const std::string& path) { return path.empty() ? "the top level" : path; }

std::string where(const std::string& path) { return path.empty() ? "at top level" : "in " + path; }

// Calls fn(key, key_line, value) for each entry of a mapping, in file order. yaml-cpp keeps duplicate
// keys (a lookup silently sees only the first), so they are rejected here.
template <class Fn>
Status for_each_entry(const Context& ctx, const Value& map, Fn&& fn) {
  if (!map.node.IsMap()) return ctx.fail(map.line, describe(map.path) + " must be a mapping");
  std::map<std::string, int> first_line;
  for (const auto& entry : map.node) {
    const int key_line = line_of(entry.first);
    if (!entry.first.IsScalar()) return ctx.fail(key_line, "keys " + where(map.path) + " must be strings");
    const std::string& key = entry.first.Scalar();
    const auto [first, inserted] = first_line.emplace(key, key_line);
    if (!inserted) {
      return ctx.fail(key_line, "duplicate key '" + key + "' " + where(map.path) + " (first at line " +
                                    std::to_string(first->second) + ")");
    }
    // An empty value (`key:`) is a null node whose mark points at the next token, possibly
    // on a later line; the key's line is the one the reader wants.
    const int value_line = entry.second.IsNull() ? key_line : line_of(entry.second);
    if (auto status = fn(key, key_line, Value{entry.second, child_path(map.path, key), value_line});
        !status) {
      return status;
    }
  }
  return Ok{};
}

// Calls fn(item) for each element of a sequence. A null (empty) list is an empty list.
template <class Fn>
Status for_each_item(const Context& ctx, const Value& list, Fn&& fn) {
  if (list.node.IsNull()) return Ok{};
  if (!list.node.IsSequence()) return ctx.fail(list.line, list.path + " must be a list");
  size_t index = 0;
  for (const auto& item : list.node) {
    if (auto status = fn(Value{item, item_path(list.path, index++), line_of(item)}); !status) return status;
  }
  return Ok{};
}

// ---- Known keys per mapping --------------------------------------------------------------

template <class T>
struct Field {
  std::string_view key;
  Status (*read)(const Context&, const Value&, T&);
};

template <class T, size_t N>
std::string known_keys(const Field<T> (&fields)[N]) {
  std::string list;
  for (const auto& field : fields) list += (list.empty() ? "" : ", ") + std::string(field.key);
  return list;
}

// Reads a mapping whose keys are all listed in `fields`; any other key is an error.
template <class T, size_t N>
Status read_fields(const Context& ctx, const Value& map, const Field<T> (&fields)[N], T& out) {
  return for_each_entry(ctx, map, [&](const std::string& key, int key_line, const Value& value) -> Status {
    const auto* field =
        std::find_if(std::begin(fields), std::end(fields), [&](const Field<T>& f) { return f.key == key; });
    if (field == std::end(fields)) {
      return ctx.fail(
          key_line, "unknown key '" + key + "' " + where(map.path) + " (known: " + known_keys(fields) + ")");
    }
    return field->read(ctx, value, out);
  });
}

// A section written with no value (`log:`) keeps its defaults.
template <class T, size_t N>
Status read_section(const Context& ctx, const Value& map, const Field<T> (&fields)[N], T& out) {
  if (map.node.IsNull()) return Ok{};
  return read_fields(ctx, map, fields, out);
}

// Owner<&ServerConfig::page_size> is ServerConfig, so one template can fill a field of any section.
template <class MemberPointer>
struct MemberOf;
template <class C, class M>
struct MemberOf<M C::*> {
  using Class = C;
};
template <auto member>
using Owner = typename MemberOf<decltype(member)>::Class;

// ---- Scalars -----------------------------------------------------------------------------

// Only an unquoted, untagged scalar may be a number, boolean or null: `enabled: "true"` is a
// string, as YAML says, and is reported rather than silently converted.
bool is_plain(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "?"; }

// YAML 1.2 core schema spellings.
std::optional<bool> parse_bool(const std::string& text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return std::nullopt;
}

bool is_null_text(const std::string& text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

std::string_view without_plus(std::string_view text) { return text.starts_with('+') ? text.substr(1) : text; }

// [-+]?[0-9]+
bool is_decimal_integer(std::string_view text) {
  if (text.starts_with('-') || text.starts_with('+')) text.remove_prefix(1);
  return !text.empty() && std::all_of(text.begin(), text.end(), is_ascii_digit);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_decimal_float(std::string_view text) {
  size_t i = 0;
  auto skip_sign = [&] {
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  };
  auto skip_digits = [&] {
    const size_t start = i;
    while (i < text.size() && is_ascii_digit(text[i])) ++i;
    return i - start;
  };
  skip_sign();
  size_t digits = skip_digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    digits += skip_digits();
  }
  if (digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    skip_sign();
    if (skip_digits() == 0) return false;
  }
  return i == text.size();
}

// Saturates on overflow so that range checks report it.
long long parse_integer(std::string_view text) {
  text = without_plus(text);
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::result_out_of_range) return text.starts_with('-') ? LLONG_MIN : LLONG_MAX;
  return value;
}

// The JSON value of an unquoted scalar in settings, or nothing if it is just a string.
// Hex/octal integers and .inf/.nan stay strings: JSON has no such numbers.
std::optional<json> plain_scalar_json(const std::string& text) {
  if (is_null_text(text)) return json(nullptr);
  if (auto boolean = parse_bool(text)) return json(*boolean);
  const std::string_view digits = without_plus(text);
  const char* begin = digits.data();
  const char* end = digits.data() + digits.size();
  if (is_decimal_integer(text)) {
    std::int64_t signed_value = 0;
    if (std::from_chars(begin, end, signed_value).ec == std::errc()) return json(signed_value);
    std::uint64_t unsigned_value = 0;
    if (std::from_chars(begin, end, unsigned_value).ec == std::errc()) return json(unsigned_value);
  }
  if (is_decimal_float(text)) {  // also integers too large for 64 bits
    double value = 0;
    if (std::from_chars(begin, end, value).ec == std::errc()) return json(value);
  }
  return std::nullopt;
}

Result<std::string> read_scalar_text(const Context& ctx, const Value& v) {
  // `key:`, `key: ~` and `key: null` are all YAML null; a string must then be quoted.
  if (v.node.IsNull()) {
    return ctx.fail(v.line, v.path + " must be a string, not null (quote it: \"~\", \"\")");
  }
  if (!v.node.IsScalar()) return ctx.fail(v.line, v.path + " must be a string");
  return v.node.Scalar();
}

// The interpolated value is a possible secret: it must not reach any message.
Result<std::string> read_interpolated(const Context& ctx, const Value& v) {
  auto raw = read_scalar_text(ctx, v);
  if (!raw) return raw;
  auto value = interpolate(*raw, ctx.base_dir.string(), ctx.files);
  if (!value) return ctx.fail(v.line, value.error());
  return value;
}

Status read_bool(const Context& ctx, const Value& v, bool& out) {
  const auto value = is_plain(v.node) ? parse_bool(v.node.Scalar()) : std::nullopt;
  if (!value) return ctx.fail(v.line, v.path + " must be a boolean");
  out = *value;
  return Ok{};
}

Status read_int(const Context& ctx, const Value& v, long long min, long long max, int& out) {
  if (!is_plain(v.node) || !is_decimal_integer(v.node.Scalar())) {
    return ctx.fail(v.line, v.path + " must be an integer");
  }
  const long long value = parse_integer(v.node.Scalar());
  if (value < min || value > max) {
    const std::string range = max == INT_MAX
                                  ? ">= " + std::to_string(min)
                                  : "between " + std::to_string(min) + " and " + std::to_string(max);
    const std::string bound = value > max && max == INT_MAX ? "<= " + std::to_string(max) : range;
    return ctx.fail(v.line, v.path + " must be an integer " + bound + " (got " + v.node.Scalar() + ")");
  }
  out = static_cast<int>(value);
  return Ok{};
}

// A share between 0 and 1 (sampling ratios).
Status read_ratio(const Context& ctx, const Value& v, double& out) {
  const std::string text = is_plain(v.node) ? v.node.Scalar() : "";
  char* end = nullptr;
  const double value = text.empty() ? -1 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(value >= 0 && value <= 1)) {
    return ctx.fail(v.line, v.path + " must be a number between 0 and 1" + (text.empty() ? "" : " (got " + text + ")"));
  }
  out = value;
  return Ok{};
}

// Enum values are matched as written (not interpolated), so quoting them is safe.
Status read_enum(const Context& ctx, const Value& v, std::span<const std::string_view> allowed,
                 std::string& out) {
  auto text = read_scalar_text(ctx, v);
  if (!text) return Error{text.error()};
  if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) {
    out = *text;
    return Ok{};
  }
  std::string list;
  for (const auto value : allowed) list += (list.empty() ? "" : ", ") + std::string(value);
  return ctx.fail(v.line, v.path + " must be one of " + list + " (got '" + *text + "')");
}

Status read_string_list(const Context& ctx, const Value& v, std::vector<std::string>& out) {
  return for_each_item(ctx, v, [&](const Value& item) -> Status {
    auto text = read_scalar_text(ctx, item);
    if (!text) return Error{text.error()};
    out.push_back(std::move(*text));
    return Ok{};
  });
}

// [A-Za-z0-9_.-]*
bool is_identifier_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return is_ascii_letter(c) || is_ascii_digit(c) || c == '_' || c == '.' || c == '-';
  });
}

// ---- Paths -------------------------------------------------------------------------------

// `~` and `~/...` mean $HOME, as in a shell; any other relative path is taken relative to the
// config file's folder, so the result does not depend on the host's working directory.
Result<std::string> resolve_path(const Context& ctx, const Value& v, const std::string& text) {
  if (text.empty()) return ctx.fail(v.line, v.path + " must not be empty");
  fs::path path(text);
  if (text == "~" || text.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return ctx.fail(v.line, "cannot expand '~' in " + v.path + ": HOME is not set");
    }
    path = fs::path(home) / text.substr(std::min<size_t>(text.size(), 2));
  }
  path = (ctx.base_dir / path).lexically_normal();
  if (!path.has_filename() && path.has_relative_path()) path = path.parent_path();  // drop a trailing '/'
  return path.string();
}

Result<std::string> read_path(const Context& ctx, const Value& v) {
  auto text = read_interpolated(ctx, v);
  if (!text) return text;
  return resolve_path(ctx, v, *text);
}

// ---- Settings (YAML -> JSON) -------------------------------------------------------------

// YAML aliases can make cycles (`&a [*a]`) or grow exponentially; these bound both.
constexpr int kMaxSettingsDepth = 64;
constexpr size_t kMaxSettingsValues = 100000;

// Messages for the limits name the settings root: an inner path can be very long, and an
// aliased node's mark is the anchor's, far from where the repetition happens.
class SettingsConverter {
 public:
  SettingsConverter(const Context& ctx, const Value& root)
      : ctx_(ctx), root_(root.path), root_line_(root.line) {}

  Result<json> convert(const Value& v, int depth) {
    if (depth > kMaxSettingsDepth) {
      return ctx_.fail(root_line_, root_ + " is nested more than " + std::to_string(kMaxSettingsDepth) +
                                       " levels deep (does a YAML alias contain itself?)");
    }
    if (++values_ > kMaxSettingsValues) {
      return ctx_.fail(root_line_, root_ + " has more than " + std::to_string(kMaxSettingsValues) +
                                       " values (are YAML aliases repeating it?)");
    }
    if (v.node.IsMap()) return object(v, depth);
    if (v.node.IsSequence()) return array(v, depth);
    if (v.node.IsScalar()) return scalar(v);
    return json(nullptr);  // `key:` with no value
  }

 private:
  Result<json> object(const Value& v, int depth) {
    json out = json::object();
    auto status = for_each_entry(ctx_, v, [&](const std::string& key, int, const Value& value) -> Status {
      auto converted = convert(value, depth + 1);
      if (!converted) return Error{converted.error()};
      out[key] = std::move(*converted);
      return Ok{};
    });
    if (!status) return Error{status.error()};
    return out;
  }

  Result<json> array(const Value& v, int depth) {
    json out = json::array();
    auto status = for_each_item(ctx_, v, [&](const Value& item) -> Status {
      auto converted = convert(item, depth + 1);
      if (!converted) return Error{converted.error()};
      out.push_back(std::move(*converted));
      return Ok{};
    });
    if (!status) return Error{status.error()};
    return out;
  }

  // Quoted or explicitly tagged scalars are strings; only plain ones are typed.
  Result<json> scalar(const Value& v) {
    if (is_plain(v.node)) {
      if (auto typed = plain_scalar_json(v.node.Scalar())) return std::move(*typed);
    }
    auto text = read_interpolated(ctx_, v);
    if (!text) return Error{text.error()};
    return json(std::move(*text));
  }

  const Context& ctx_;
  std::string root_;
  int root_line_;
  size_t values_ = 0;
};

// ---- Field kinds for the tables ---------------------------------------------------------

// Table entries for the common kinds of field, so that a table line reads like the schema:
// {"page_size", int_field<&ServerConfig::page_size, 1, 1000>}.

template <auto member>
Status bool_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_bool(ctx, v, out.*member);
}

template <auto member, long long min, long long max>
Status int_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_int(ctx, v, min, max, out.*member);
}

template <auto member>
Status ratio_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_ratio(ctx, v, out.*member);
}

template <auto member, const auto& allowed>
Status enum_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_enum(ctx, v, allowed, out.*member);
}

template <auto member>
Status string_list_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_string_list(ctx, v, out.*member);
}

// Strings may carry secrets (${ENV}, ${file:...}): interpolated, never echoed in messages.
template <auto member>
Status string_field(const Context& ctx, const Value& v, Owner<member>& out) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  out.*member = std::move(*text);
  return Ok{};
}

// name -> value, interpolated (credentials, headers: secrets, never echoed).
template <auto member>
Status string_map_field(const Context& ctx, const Value& v, Owner<member>& out) {
  if (v.node.IsNull()) return Ok{};
  return for_each_entry(ctx, v, [&](const std::string& key, int, const Value& value) -> Status {
    auto text = read_interpolated(ctx, value);
    if (!text) return Error{text.error()};
    (out.*member)[key] = std::move(*text);
    return Ok{};
  });
}

template <auto member>
Status interpolated_list_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return for_each_item(ctx, v, [&](const Value& item) -> Status {
    auto text = read_interpolated(ctx, item);
    if (!text) return Error{text.error()};
    (out.*member).push_back(std::move(*text));
    return Ok{};
  });
}

// An optional path: empty means "not set".
template <auto member>
Status path_field(const Context& ctx, const Value& v, Owner<member>& out) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  if (text->empty()) {
    (out.*member).clear();
    return Ok{};
  }
  auto path = resolve_path(ctx, v, *text);
  if (!path) return Error{path.error()};
  out.*member = std::move(*path);
  return Ok{};
}

template <auto member, const auto& fields>
Status section_field(const Context& ctx, const Value& v, Owner<member>& out) {
  return read_section(ctx, v, fields, out.*member);
}

// ---- Sections ----------------------------------------------------------------------------

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kLogFormats[] = {"text", "json"};
constexpr std::string_view kTransports[] = {"stdio", "http"};

constexpr Field<ReloadConfig> kReloadFields[] = {
    {"watch", bool_field<&ReloadConfig::watch>},
    {"drain_ms", int_field<&ReloadConfig::drain_ms, 0, INT_MAX>},
};

Status read_otlp_endpoint(const Context& ctx, const Value& v, OtlpConfig& o) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  if (!text->empty() && !text->starts_with("http://") && !text->starts_with("https://")) {
    return ctx.fail(v.line, v.path + " must be the base URL of an OTLP/HTTP receiver, e.g. http://localhost:4318");
  }
  o.endpoint = std::move(*text);
  return Ok{};
}

constexpr Field<OtlpConfig> kOtlpFields[] = {
    {"endpoint", read_otlp_endpoint},
    {"headers", string_map_field<&OtlpConfig::headers>},
    {"sampling", ratio_field<&OtlpConfig::sampling>},
    {"batch_delay_ms", int_field<&OtlpConfig::batch_delay_ms, 10, 600000>},
    {"queue_size", int_field<&OtlpConfig::queue_size, 1, 1000000>},
    {"timeout_ms", int_field<&OtlpConfig::timeout_ms, 100, 600000>},
    {"metrics_interval_ms", int_field<&OtlpConfig::metrics_interval_ms, 0, 86400000>},
};

// "stderr", or a file (relative to the YAML's folder).
Status read_audit_log(const Context& ctx, const Value& v, TelemetryConfig& t) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  if (text->empty() || *text == "stderr") {
    t.audit_log = std::move(*text);
    return Ok{};
  }
  return path_field<&TelemetryConfig::audit_log>(ctx, v, t);
}

constexpr Field<TelemetryConfig> kTelemetryFields[] = {
    {"metrics", bool_field<&TelemetryConfig::metrics>},
    {"metrics_listen", string_field<&TelemetryConfig::metrics_listen>},
    {"otlp", section_field<&TelemetryConfig::otlp, kOtlpFields>},
    {"audit_log", read_audit_log},
};

constexpr Field<LogConfig> kLogFields[] = {
    {"level", enum_field<&LogConfig::level, kLogLevels>},
    {"format", enum_field<&LogConfig::format, kLogFormats>},
};

constexpr Field<TlsConfig> kTlsFields[] = {
    {"cert", path_field<&TlsConfig::cert>},
    {"key", path_field<&TlsConfig::key>},
};

constexpr std::string_view kAuthModes[] = {"none", "bearer", "oauth"};

Status read_issuer(const Context& ctx, const Value& v, OAuthConfig& o) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  while (!text->empty() && text->back() == '/') text->pop_back();
  if (!(text->starts_with("https://") || text->starts_with("http://")) || text->find_first_of("?# ") != std::string::npos) {
    return ctx.fail(v.line, v.path + " must be the public base URL, e.g. https://mcp.example.com");
  }
  o.issuer = std::move(*text);
  return Ok{};
}

constexpr Field<OAuthConfig> kOAuthFields[] = {
    {"issuer", read_issuer},
    {"access_token_ttl_s", int_field<&OAuthConfig::access_token_ttl_s, 60, 86400>},
    {"refresh_token_ttl_s", int_field<&OAuthConfig::refresh_token_ttl_s, 300, 365 * 86400>},
    {"signing_key", string_field<&OAuthConfig::signing_key>},
    {"encryption_key", string_field<&OAuthConfig::encryption_key>},
};

constexpr Field<HttpAuthConfig> kHttpAuthFields[] = {
    {"mode", enum_field<&HttpAuthConfig::mode, kAuthModes>},
    {"bearer_tokens", interpolated_list_field<&HttpAuthConfig::bearer_tokens>},
    {"oauth", section_field<&HttpAuthConfig::oauth, kOAuthFields>},
};

// listen is host:port with a numeric port; the host may be a name, IPv4 or [IPv6].
Status read_listen(const Context& ctx, const Value& v, HttpConfig& http) {
  auto text = read_interpolated(ctx, v);
  if (!text) return Error{text.error()};
  const size_t colon = text->rfind(':');
  const std::string port = colon == std::string::npos ? "" : text->substr(colon + 1);
  if (colon == 0 || port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), is_ascii_digit) ||
      std::stoi(port) > 65535) {
    return ctx.fail(v.line, v.path + " must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
  }
  http.listen = std::move(*text);
  return Ok{};
}

Status read_http_path(const Context& ctx, const Value& v, HttpConfig& http) {
  auto text = read_scalar_text(ctx, v);
  if (!text) return Error{text.error()};
  if (!text->starts_with('/') || text->find_first_of(" ?#") != std::string::npos) {
    return ctx.fail(v.line, v.path + " must be an absolute URL path such as /mcp (got '" + *text + "')");
  }
  http.path = std::move(*text);
  return Ok{};
}

Status read_endpoint_path(const Context& ctx, const Value& v, CommandEndpoint& e) {
  auto text = read_scalar_text(ctx, v);
  if (!text) return Error{text.error()};
  if (!text->starts_with('/') || text->find_first_of(" ?#") != std::string::npos) {
    return ctx.fail(v.line, v.path + " must be an absolute URL path such as /codegen (got '" + *text + "')");
  }
  e.path = std::move(*text);
  return Ok{};
}

Status read_endpoint_prefix(const Context& ctx, const Value& v, CommandEndpoint& e) {
  auto text = read_scalar_text(ctx, v);
  if (!text) return Error{text.error()};
  if (!is_identifier_text(*text)) return ctx.fail(v.line, v.path + " may contain only letters, digits, '_', '.' and '-'");
  e.tool_prefix = std::move(*text);
  return Ok{};
}

constexpr Field<CommandEndpoint> kCommandEndpointFields[] = {
    {"path", read_endpoint_path},
    {"tool_prefix", read_endpoint_prefix},
};

Status read_command_endpoints(const Context& ctx, const Value& v, HttpConfig& http) {
  return for_each_item(ctx, v, [&](const Value& item) -> Status {
    if (!item.node.IsMap()) return ctx.fail(item.line, item.path + " must be a mapping");
    CommandEndpoint e;
    if (auto st = read_fields(ctx, item, kCommandEndpointFields, e); !st) return st;
    if (e.path.empty()) return ctx.fail(item.line, item.path + " is missing required key 'path'");
    http.command_endpoints.push_back(std::move(e));
    return Ok{};
  });
}

constexpr Field<HttpConfig> kHttpFields[] = {
    {"listen", read_listen},
    {"path", read_http_path},
    {"allowed_origins", string_list_field<&HttpConfig::allowed_origins>},
    {"allowed_hosts", string_list_field<&HttpConfig::allowed_hosts>},
    {"auth", section_field<&HttpConfig::auth, kHttpAuthFields>},
    {"max_body_bytes", int_field<&HttpConfig::max_body_bytes, 1024, INT_MAX>},
    {"max_header_bytes", int_field<&HttpConfig::max_header_bytes, 1024, 16 * 1024 * 1024>},
    {"max_headers", int_field<&HttpConfig::max_headers, 8, 10000>},
    {"header_timeout_ms", int_field<&HttpConfig::header_timeout_ms, 100, INT_MAX>},
    {"body_timeout_ms", int_field<&HttpConfig::body_timeout_ms, 100, INT_MAX>},
    {"keep_alive_timeout_ms", int_field<&HttpConfig::keep_alive_timeout_ms, 100, INT_MAX>},
    {"max_connections", int_field<&HttpConfig::max_connections, 1, 1000000>},
    {"request_timeout_ms", int_field<&HttpConfig::request_timeout_ms, 1, INT_MAX>},
    {"worker_threads", int_field<&HttpConfig::worker_threads, 2, 4096>},
    {"max_streams", int_field<&HttpConfig::max_streams, 1, 4096>},
    {"session_idle_timeout_ms", int_field<&HttpConfig::session_idle_timeout_ms, 1000, INT_MAX>},
    {"max_sessions", int_field<&HttpConfig::max_sessions, 1, 1000000>},
    {"max_sessions_per_client", int_field<&HttpConfig::max_sessions_per_client, 1, 1000000>},
    {"tls", section_field<&HttpConfig::tls, kTlsFields>},
    {"command_endpoints", read_command_endpoints},
};

constexpr Field<ServerConfig> kServerFields[] = {
    {"transport", enum_field<&ServerConfig::transport, kTransports>},
    {"page_size", int_field<&ServerConfig::page_size, 1, 1000>},
    {"list_ttl_ms", int_field<&ServerConfig::list_ttl_ms, 0, 86400000>},
    {"max_concurrent_calls", int_field<&ServerConfig::max_concurrent_calls, 1, 4096>},
    {"max_queued_calls", int_field<&ServerConfig::max_queued_calls, 0, 1000000>},
    {"call_timeout_ms", int_field<&ServerConfig::call_timeout_ms, 1, INT_MAX>},
    {"shutdown_grace_ms", int_field<&ServerConfig::shutdown_grace_ms, 0, INT_MAX>},
    {"http", section_field<&ServerConfig::http, kHttpFields>},
};

constexpr Field<ToolFilter> kToolFields[] = {
    {"allow", string_list_field<&ToolFilter::allow>},
    {"deny", string_list_field<&ToolFilter::deny>},
};

// The name is not interpolated: it identifies the instance in logs and messages.
Status read_plugin_name(const Context& ctx, const Value& v, PluginConfig& plugin) {
  auto name = read_scalar_text(ctx, v);
  if (!name) return Error{name.error()};
  if (name->empty() || !is_identifier_text(*name)) {
    return ctx.fail(v.line, v.path + " must match [A-Za-z0-9_.-]+ (got '" + *name + "')");
  }
  plugin.name = std::move(*name);
  return Ok{};
}

Status read_library(const Context& ctx, const Value& v, PluginConfig& plugin) {
  auto library = read_interpolated(ctx, v);
  if (!library) return Error{library.error()};
  if (library->empty()) return ctx.fail(v.line, v.path + " must not be empty");
  plugin.library = std::move(*library);
  return Ok{};
}

// The value may come from the environment, so the message does not repeat it.
Status read_tool_prefix(const Context& ctx, const Value& v, PluginConfig& plugin) {
  auto prefix = read_interpolated(ctx, v);
  if (!prefix) return Error{prefix.error()};
  if (!is_identifier_text(*prefix)) {
    return ctx.fail(v.line, v.path + " may contain only letters, digits, '_', '.' and '-'");
  }
  plugin.tool_prefix = std::move(*prefix);
  return Ok{};
}

Status read_settings(const Context& ctx, const Value& v, PluginConfig& plugin) {
  if (v.node.IsNull()) return Ok{};
  if (!v.node.IsMap()) return ctx.fail(v.line, v.path + " must be a mapping");
  auto settings = SettingsConverter(ctx, v).convert(v, 0);
  if (!settings) return Error{settings.error()};
  plugin.settings = std::move(*settings);
  return Ok{};
}

constexpr std::string_view kIsolationModes[] = {"none", "process"};
constexpr std::string_view kSandboxModes[] = {"none", "strict"};
constexpr Field<IsolationLimits> kLimitFields[] = {
    {"memory_mb", int_field<&IsolationLimits::memory_mb, 0, 1 << 22>},
    {"cpu_seconds_per_call", int_field<&IsolationLimits::cpu_seconds_per_call, 0, 1 << 22>},
    {"open_files", int_field<&IsolationLimits::open_files, 16, 1 << 20>},
};
constexpr Field<RestartPolicy> kRestartFields[] = {
    {"max_per_minute", int_field<&RestartPolicy::max_per_minute, 0, 10000>},
    {"backoff_ms", int_field<&RestartPolicy::backoff_ms, 0, 600000>},
};

constexpr std::string_view kTaskSupport[] = {"forbidden", "optional", "required"};

// task_support: a mode for every tool of the instance, or a mapping tool -> mode.
Status read_task_support(const Context& ctx, const Value& v, PluginConfig& plugin) {
  if (!v.node.IsMap()) return read_enum(ctx, v, kTaskSupport, plugin.task_support);
  return for_each_entry(ctx, v, [&](const std::string& tool, int, const Value& value) -> Status {
    return read_enum(ctx, value, kTaskSupport, plugin.tool_task_support[tool]);
  });
}

constexpr Field<PluginConfig> kPluginFields[] = {
    {"name", read_plugin_name},
    {"library", read_library},
    {"enabled", bool_field<&PluginConfig::enabled>},
    {"tool_prefix", read_tool_prefix},
    {"tools", section_field<&PluginConfig::tools, kToolFields>},
    {"credentials", string_map_field<&PluginConfig::credentials>},
    {"settings", read_settings},
    {"max_concurrent_calls", int_field<&PluginConfig::max_concurrent_calls, 1, 4096>},
    {"create_timeout_ms", int_field<&PluginConfig::create_timeout_ms, 1, INT_MAX>},
    {"isolation", enum_field<&PluginConfig::isolation, kIsolationModes>},
    {"limits", section_field<&PluginConfig::limits, kLimitFields>},
    {"restart", section_field<&PluginConfig::restart, kRestartFields>},
    {"sandbox", enum_field<&PluginConfig::sandbox, kSandboxModes>},
    {"record_arguments", bool_field<&PluginConfig::record_arguments>},
    {"task_support", read_task_support},
};

Result<PluginConfig> read_plugin(const Context& ctx, const Value& v) {
  if (!v.node.IsMap()) return ctx.fail(v.line, v.path + " must be a mapping");
  PluginConfig plugin;
  plugin.line = v.line;
  if (auto status = read_fields(ctx, v, kPluginFields, plugin); !status) return Error{status.error()};
  // Both readers reject empty values, so empty here means the key was absent.
  if (plugin.name.empty()) return ctx.fail(v.line, v.path + " is missing required key 'name'");
  if (plugin.library.empty()) return ctx.fail(v.line, v.path + " is missing required key 'library'");
  if (plugin.isolation != "process") {  // limits and restarts are a child process's
    for (const char* key : {"limits", "restart", "sandbox"}) {
      if (v.node[key]) return ctx.fail(line_of(v.node[key]), v.path + "." + key + " applies only with isolation: process");
    }
  }
  return plugin;
}

Status read_plugins(const Context& ctx, const Value& v, Config& config) {
  std::map<std::string, int> first_line;  // plugin name -> line of its `name:` value
  return for_each_item(ctx, v, [&](const Value& item) -> Status {
    auto plugin = read_plugin(ctx, item);
    if (!plugin) return Error{plugin.error()};
    const int name_line = line_of(item.node["name"]);
    const auto [first, inserted] = first_line.emplace(plugin->name, name_line);
    if (!inserted) {
      return ctx.fail(name_line, "duplicate plugin name '" + plugin->name + "' (first at line " +
                                     std::to_string(first->second) + ")");
    }
    config.plugins.push_back(std::move(*plugin));
    return Ok{};
  });
}

Status read_state_dir(const Context& ctx, const Value& v, Config& config) {
  auto path = read_path(ctx, v);
  if (!path) return Error{path.error()};
  config.state_dir = std::move(*path);
  return Ok{};
}

Status read_plugin_paths(const Context& ctx, const Value& v, Config& config) {
  return for_each_item(ctx, v, [&](const Value& item) -> Status {
    auto path = read_path(ctx, item);
    if (!path) return Error{path.error()};
    config.plugin_paths.push_back(std::move(*path));
    return Ok{};
  });
}

constexpr std::string_view kStoreBackends[] = {"sqlite", "postgresql"};
constexpr Field<StoreConfig> kStoreFields[] = {
    {"backend", enum_field<&StoreConfig::backend, kStoreBackends>},
    {"url", string_field<&StoreConfig::url>},
    {"pool_size", int_field<&StoreConfig::pool_size, 1, 1024>},
    {"connect_timeout_ms", int_field<&StoreConfig::connect_timeout_ms, 100, 600000>},
    {"statement_timeout_ms", int_field<&StoreConfig::statement_timeout_ms, 100, 3600000>},
};

Status read_store(const Context& ctx, const Value& v, Config& config) {
  if (auto st = read_section(ctx, v, kStoreFields, config.store); !st) return st;
  const StoreConfig& s = config.store;
  if (s.backend == "postgresql") {
    // The URL is a secret (it may hold the password): the message never quotes it.
    if (!s.url.starts_with("postgresql://") && !s.url.starts_with("postgres://")) {
      return ctx.fail(v.node["url"] ? line_of(v.node["url"]) : v.line,
                      v.path + ".url must be a postgresql:// URL for backend: postgresql");
    }
  } else {
    for (const char* key : {"url", "pool_size", "connect_timeout_ms", "statement_timeout_ms"}) {
      if (v.node[key]) return ctx.fail(line_of(v.node[key]), v.path + "." + key + " applies only with backend: postgresql");
    }
  }
  return Ok{};
}

constexpr Field<TasksConfig> kTasksFields[] = {
    {"enabled", bool_field<&TasksConfig::enabled>},
    {"max_per_user", int_field<&TasksConfig::max_per_user, 1, 1000000>},
    {"max_total", int_field<&TasksConfig::max_total, 1, 100000000>},
    {"ttl_ms", int_field<&TasksConfig::ttl_ms, 1000, INT_MAX>},
    {"poll_interval_ms", int_field<&TasksConfig::poll_interval_ms, 10, 3600000>},
    {"timeout_ms", int_field<&TasksConfig::timeout_ms, 1, INT_MAX>},
    {"max_result_bytes", int_field<&TasksConfig::max_result_bytes, 1024, INT_MAX>},
};

// One key per line, like the YAML it describes.
// clang-format off
constexpr Field<Config> kTopFields[] = {
    {"state_dir", read_state_dir},
    {"store", read_store},
    {"tasks", section_field<&Config::tasks, kTasksFields>},
    {"reload", section_field<&Config::reload, kReloadFields>},
    {"telemetry", section_field<&Config::telemetry, kTelemetryFields>},
    {"log", section_field<&Config::log, kLogFields>},
    {"plugin_paths", read_plugin_paths},
    {"server", section_field<&Config::server, kServerFields>},
    {"plugins", read_plugins},
};
// clang-format on

// ---- Loading -----------------------------------------------------------------------------

fs::path absolute_dir(const std::string& dir) {
  std::error_code error;
  const fs::path path = fs::absolute(dir.empty() ? fs::path(".") : fs::path(dir), error);
  return error ? fs::path(dir) : path.lexically_normal();
}

// Where each YAML document starts, and nothing else (a YAML::EventHandler that builds nothing).
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;  // where each document starts
  std::vector<YAML::Mark> content;  // where each one's first node is (for messages)
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { node(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { node(mark); }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override { node(mark); }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (content.size() < starts.size()) content.push_back(mark);
  }
};

// The file must hold one document. Counted with a bound, never with YAML::LoadAll: on some
// malformed input (a stray ',' or an unclosed '[' at the top level) yaml-cpp 0.7 hands back
// the same empty document for ever, and LoadAll allocates until memory runs out
// (jbeder/yaml-cpp#1040, fixed upstream by #1319; found by tests/fuzz/fuzz_config).
Status check_one_document(const Context& ctx, const std::string& yaml) {
  std::istringstream in(yaml);
  YAML::Parser parser(in);
  DocumentStarts seen;
  while (seen.starts.size() < 2 && parser.HandleNextDocument(seen)) {
  }
  if (seen.starts.size() < 2) return Ok{};
  const YAML::Mark& second = seen.starts[1];
  if (second.pos == seen.starts[0].pos) {  // no progress: yaml-cpp is stuck on a token it cannot use
    // (marks are 0-based)
    return ctx.fail(second.line + 1, "YAML syntax error: unexpected '" + std::string(1, yaml[std::min<size_t>(second.pos, yaml.size() - 1)]) +
                                         "' at column " + std::to_string(second.column + 1));
  }
  const YAML::Mark& where = seen.content.size() > 1 ? seen.content[1] : second;
  return ctx.fail(where.line + 1, "only one YAML document is allowed");
}

Result<std::shared_ptr<const Config>> load_yaml(Context ctx, const std::string& yaml) {
  if (auto st = check_one_document(ctx, yaml); !st) return Error{st.error()};
  std::vector<YAML::Node> documents;
  if (YAML::Node root = YAML::Load(yaml); root.IsDefined()) documents.push_back(root);

  auto config = std::make_shared<Config>();
  config->source = ctx.source;
  ctx.files = &config->files;
  const std::string default_state_dir = config->state_dir;
  config->state_dir.clear();  // read_state_dir never stores "", so "" below means "not in the file"

  // No document, or one with only comments, means all defaults.
  if (!documents.empty() && !documents[0].IsNull()) {
    const YAML::Node& root = documents[0];
    if (!root.IsMap()) return ctx.fail(line_of(root), "the top level must be a mapping");
    if (auto status = read_fields(ctx, Value{root, "", line_of(root)}, kTopFields, *config); !status) {
      return Error{status.error()};
    }
  }

  // The default needs ~ expansion too, but only when used: a missing HOME matters only then.
  if (config->state_dir.empty()) {
    auto path = resolve_path(ctx, Value{YAML::Node(), "state_dir", 1}, default_state_dir);
    if (!path) return Error{path.error()};
    config->state_dir = std::move(*path);
  }
  // MCP_HOST_ISOLATION=process runs every instance in a child process, whatever the file
  // says (=none: every one in the host): to try a deployment's plugins isolated, and how
  // the test suite runs its plugin tests in both modes.
  if (const char* mode = std::getenv("MCP_HOST_ISOLATION"); mode != nullptr && *mode != '\0') {
    if (std::string_view(mode) != "none" && std::string_view(mode) != "process") {
      return Error{"MCP_HOST_ISOLATION must be none or process, not '" + std::string(mode) + "'"};
    }
    for (auto& plugin : config->plugins) plugin.isolation = mode;
  }
  return std::shared_ptr<const Config>(std::move(config));
}

}  // namespace

bool PluginConfig::same_instance(const PluginConfig& other) const {
  PluginConfig moved = other;
  moved.line = line;
  return *this == moved;
}

Result<std::shared_ptr<const Config>> load_string(const std::string& yaml, const std::string& base_dir,
                                                  const std::string& source_name) {
  // yaml-cpp reports syntax errors (and a few others) by throwing; nothing may escape.
  try {
    return load_yaml(Context{source_name, absolute_dir(base_dir)}, yaml);
  } catch (const YAML::DeepRecursion& e) {
    return located_error(source_name, std::max(e.mark.line + 1, 1),
                         "the YAML nests too deep (" + std::to_string(e.depth()) + " levels)");
  } catch (const YAML::ParserException& e) {
    return located_error(source_name, std::max(e.mark.line + 1, 1), "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    return located_error(source_name, std::max(e.mark.line + 1, 1), e.msg);
  } catch (...) {
    // what() of other exceptions is not shown: it could carry an interpolated value.
    return located_error(source_name, 1, "internal error while reading the configuration");
  }
}

Result<std::string> state_dir_of(const std::string& path) {
  auto text = read_whole_file(path, kMaxConfigBytes);
  if (!text) return Error{"cannot read config file '" + path + "': " + text.error()};
  // Only its own top-level line is read, so the rest of the file may be broken.
  std::istringstream in(*text);
  std::string line, found;
  while (std::getline(in, line)) {
    if (line.starts_with("state_dir:")) found = line;
  }
  auto config = load_string(found, absolute_dir(path).parent_path().string(), path);
  if (!config) return Error{config.error()};
  return (*config)->state_dir;
}

Result<std::shared_ptr<const Config>> load_file(const std::string& path) {
  try {
    auto text = read_whole_file(path, kMaxConfigBytes);
    if (!text) return Error{"cannot read config file '" + path + "': " + text.error()};
    auto config = load_string(*text, absolute_dir(path).parent_path().string(), path);
    if (!config) return config;
    auto with_file = std::make_shared<Config>(**config);
    with_file->files.insert(with_file->files.begin(), absolute_dir(path).string());
    return std::shared_ptr<const Config>(std::move(with_file));
  } catch (...) {
    return Error{"cannot read config file '" + path + "': internal error"};
  }
}

}  // namespace mcph::config
