// Traces: W3C trace context (traceparent) and spans exported to an OpenTelemetry collector
// over OTLP/HTTP with JSON encoding (POST <endpoint>/v1/traces). Finished spans go into a
// bounded queue that a background thread sends in batches; a full queue drops the span
// and counts it, so a slow or absent collector never slows a call. The queue is flushed
// when the tracer is destroyed.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace mcph::telemetry {

// Where a span sits in its trace (W3C Trace Context level 1).
struct SpanContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  bool sampled = false;

  bool valid() const;  // non-zero ids
  std::string traceparent() const;  // "00-<trace id>-<span id>-<flags>"
  std::string trace_hex() const;
  std::string span_hex() const;
  // A traceparent header or _meta value; nullopt when malformed (it is then ignored, as
  // the W3C spec asks).
  static std::optional<SpanContext> parse(std::string_view traceparent);
};

using AttributeValue = std::variant<std::string, int64_t, bool, double>;

struct Span {
  enum class Kind { kInternal = 1, kServer = 2, kClient = 3 };
  std::string name;
  Kind kind = Kind::kInternal;
  SpanContext context;
  std::array<uint8_t, 8> parent{};  // zero: a root span
  std::string tracestate;           // the parent's, passed on unchanged
  uint64_t start_ns = 0, end_ns = 0;  // Unix time
  std::vector<std::pair<std::string, AttributeValue>> attributes;
  bool error = false;
  std::string status_message;  // with error
  std::vector<SpanContext> links;

  void set(std::string key, AttributeValue value) { attributes.emplace_back(std::move(key), std::move(value)); }
};

uint64_t unix_ns(std::chrono::system_clock::time_point t = std::chrono::system_clock::now());

// A new span's context: a child of `parent` when it is valid (same trace, its sampled
// flag), else the root of a new trace, sampled at `sampling` (TraceIdRatioBased).
SpanContext new_span(const SpanContext* parent, double sampling);

class Tracer {
 public:
  struct Options {
    std::string endpoint;  // base URL of the collector's OTLP/HTTP receiver (http or https)
    std::vector<std::pair<std::string, std::string>> headers;  // sent with every export (may hold secrets)
    double sampling = 1.0;  // share of new traces recorded; a parent's sampled flag is followed
    size_t queue_size = 2048;
    size_t batch_size = 512;
    std::chrono::milliseconds batch_delay{5000};
    std::chrono::milliseconds timeout{10000};
    std::string service_name = "mcp-host";
    std::string service_version;
    std::string service_instance;  // the replica id
  };
  // Fails (a message) when the endpoint is not an http(s) URL.
  static std::optional<std::string> check(const Options& options);

  explicit Tracer(Options options);
  ~Tracer();  // exports what is queued (one attempt, bounded by the timeout), then stops
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  SpanContext start(const SpanContext* parent) const { return new_span(parent, options_.sampling); }
  // Queues a finished span for export (unsampled ones are ignored). Never blocks.
  void finish(Span span);

  uint64_t exported() const { return exported_.load(); }
  uint64_t dropped_full() const { return dropped_full_.load(); }        // the queue was full
  uint64_t dropped_failed() const { return dropped_failed_.load(); }    // the collector refused or was unreachable

 private:
  void run();
  bool send(const std::vector<Span>& batch);
  std::string encode(const std::vector<Span>& batch) const;

  const Options options_;
  std::string host_, path_;  // the collector: scheme://host:port, and <base path>/v1/traces
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Span> queue_;  // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::atomic<uint64_t> exported_{0}, dropped_full_{0}, dropped_failed_{0};
  std::thread thread_;  // last: started once the rest exists
};

// The body of one export: an ExportTraceServiceRequest in OTLP/JSON, with the resource
// (service.*) from `options`.
std::string otlp_json(const std::vector<Span>& batch, const Tracer::Options& options);

}  // namespace mcph::telemetry
