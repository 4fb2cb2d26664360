#include "telemetry/trace.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "http_stack/http_stack.hpp"
#include "json/bounded.hpp"

namespace mcph::telemetry {
namespace {

constexpr char kHex[] = "0123456789abcdef";

template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& bytes) {
  std::string out(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <size_t N>
bool from_hex(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  bool any = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
    any = any || out[i] != 0;
  }
  return any;  // all zeros is invalid
}

template <size_t N>
bool is_zero(const std::array<uint8_t, N>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

// Ids need to be unique, not secret: a per-thread generator seeded from the OS.
template <size_t N>
void fill_random(std::array<uint8_t, N>& bytes) {
  thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32)};
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = rng();
      std::memcpy(bytes.data() + i, &r, std::min<size_t>(8, N - i));
    }
  } while (is_zero(bytes));
}

}  // namespace

// JSON text of a string (OTLP/JSON is JSON; attribute values come from clients and plugins).
// Bytes that are not UTF-8 become U+FFFD: a collector refuses the whole batch otherwise.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    // Plain ASCII goes in runs (most text is that).
    size_t run = i;
    while (run < s.size() && static_cast<unsigned char>(s[run]) >= 0x20 && static_cast<unsigned char>(s[run]) < 0x7f &&
           s[run] != '"' && s[run] != '\\') {
      ++run;
    }
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run - 1;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = json_text::utf8_length(s.substr(i));
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

namespace {

void append_string(std::string& out, std::string_view s) { append_json_string(out, s); }

}  // namespace

uint64_t unix_ns(std::chrono::system_clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

bool SpanContext::valid() const { return !is_zero(trace_id) && !is_zero(span_id); }

std::string SpanContext::trace_hex() const { return to_hex(trace_id); }
std::string SpanContext::span_hex() const { return to_hex(span_id); }

std::string SpanContext::traceparent() const {
  return "00-" + to_hex(trace_id) + "-" + to_hex(span_id) + (sampled ? "-01" : "-00");
}

std::optional<SpanContext> SpanContext::parse(std::string_view t) {
  // version "-" trace-id "-" parent-id "-" flags; a later version may append "-..." fields.
  if (t.size() < 55 || t[2] != '-' || t[35] != '-' || t[52] != '-') return std::nullopt;
  std::array<uint8_t, 1> version{}, flags{};
  const bool version_ok = t.substr(0, 2) == "00" || (from_hex(t.substr(0, 2), version) && version[0] != 0xff);
  if (!version_ok) return std::nullopt;
  if (t.substr(0, 2) == "00" && t.size() != 55) return std::nullopt;
  if (t.size() > 55 && t[55] != '-') return std::nullopt;
  SpanContext c;
  if (!from_hex(t.substr(3, 32), c.trace_id) || !from_hex(t.substr(36, 16), c.span_id)) return std::nullopt;
  if (t.substr(53, 2) != "00" && !from_hex(t.substr(53, 2), flags)) return std::nullopt;
  c.sampled = (flags[0] & 1) != 0;
  return c;
}

Tracer::Tracer(Options options) : options_(std::move(options)), thread_([this] { run(); }) {}

Tracer::~Tracer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

SpanContext new_span(const SpanContext* parent, double sampling) {
  SpanContext c;
  if (parent != nullptr && parent->valid()) {
    c.trace_id = parent->trace_id;
    c.sampled = parent->sampled;
  } else {
    fill_random(c.trace_id);
    // TraceIdRatioBased: the trace id's last 8 bytes as a number below ratio * 2^64.
    uint64_t low = 0;
    for (size_t i = 8; i < 16; ++i) low = low << 8 | c.trace_id[i];
    c.sampled = sampling >= 1.0 || (sampling > 0 && static_cast<double>(low) < sampling * 18446744073709551616.0);
  }
  fill_random(c.span_id);
  return c;
}

void Tracer::finish(Span span) {
  if (!span.context().sampled) return;
  std::string text = std::move(span).text();
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.queue_size) {
      dropped_full_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(text));
    if (queue_.size() < options_.batch_size) return;
  }
  wake_.notify_one();
}

void Tracer::run() {
  const auto sender = http_stack::otlp_sender(options_.collector, "traces");  // null without the HTTP stack
  std::vector<std::string> batch;
  std::string body;  // kept to reuse its memory
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, options_.batch_delay, [this] { return stopping_ || queue_.size() >= options_.batch_size; });
    const bool last = stopping_;
    while (!queue_.empty()) {
      const size_t n = std::min(queue_.size(), options_.batch_size);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
      lock.unlock();
      otlp_json(batch, options_.collector, body);
      const bool sent = sender != nullptr && sender->post(body, std::to_string(batch.size()) + " spans");
      (sent ? exported_ : dropped_failed_).fetch_add(batch.size());
      lock.lock();
      // Stopping: one attempt for what is left, and none after a failure (the host must end).
      if (last && !sent) {
        dropped_failed_.fetch_add(queue_.size());
        queue_.clear();
      }
      if (!last && queue_.size() < options_.batch_size) break;  // wait for more
    }
    if (last) return;
  }
}

// OTLP/JSON (ExportTraceServiceRequest): ids in hex, enums as numbers, int64 as strings.
void otlp_json(const std::vector<std::string>& spans, const Collector& collector, std::string& out) {
  out.clear();
  out += "{\"resourceSpans\":[{";
  append_resource(out, collector);
  out += ",\"scopeSpans\":[{";
  append_scope(out, collector);
  out += ",\"spans\":[";
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    out += spans[i];
  }
  out += "]}]}]}";
}

Span::Span(std::string_view name, Kind kind, const SpanContext& self, const std::array<uint8_t, 8>* parent, uint64_t start_ns,
           uint64_t end_ns, std::string_view tracestate)
    : context_(self) {
  out_.reserve(768);
  out_ += "{\"traceId\":\"";
  out_ += to_hex(self.trace_id);
  out_ += "\",\"spanId\":\"";
  out_ += to_hex(self.span_id);
  out_ += '"';
  if (parent != nullptr && !is_zero(*parent)) {
    out_ += ",\"parentSpanId\":\"";
    out_ += to_hex(*parent);
    out_ += '"';
  }
  if (!tracestate.empty()) {
    out_ += ",\"traceState\":";
    append_string(out_, tracestate);
  }
  out_ += ",\"name\":";
  append_string(out_, name);
  out_ += ",\"kind\":";
  out_ += std::to_string(static_cast<int>(kind));
  out_ += ",\"startTimeUnixNano\":\"";
  out_ += std::to_string(start_ns);
  out_ += "\",\"endTimeUnixNano\":\"";
  out_ += std::to_string(std::max(start_ns, end_ns));
  out_ += "\",\"attributes\":[";
}

void Span::key(std::string_view k) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += "{\"key\":";
  append_string(out_, k);
  out_ += ",\"value\":{";
}

void Span::set(std::string_view k, std::string_view value) {
  key(k);
  out_ += "\"stringValue\":";
  append_string(out_, value);
  out_ += "}}";
}

void Span::set(std::string_view k, int64_t value) {
  key(k);
  out_ += "\"intValue\":\"";  // int64 travels as a string in OTLP/JSON
  out_ += std::to_string(value);
  out_ += "\"}}";
}

void Span::set(std::string_view k, bool value) {
  key(k);
  out_ += value ? "\"boolValue\":true}}" : "\"boolValue\":false}}";
}

void Span::set(std::string_view k, double value) {
  key(k);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  out_ += "\"doubleValue\":";
  out_ += std::isfinite(value) ? buf : "0";
  out_ += "}}";
}

void Span::fail(std::string_view message) {
  status_ = ",\"status\":{\"code\":2,\"message\":";  // STATUS_CODE_ERROR
  append_string(status_, message);
  status_ += '}';
}

void Span::link(const SpanContext& to) {
  if (!links_.empty()) links_ += ',';
  links_ += "{\"traceId\":\"" + to_hex(to.trace_id) + "\",\"spanId\":\"" + to_hex(to.span_id) + "\"}";
}

std::string Span::text() && {
  out_ += ']';
  out_ += status_;
  if (!links_.empty()) {
    out_ += ",\"links\":[";
    out_ += links_;
    out_ += ']';
  }
  out_ += '}';
  return std::move(out_);
}

}  // namespace mcph::telemetry
