// Traces: W3C trace context (traceparent) and spans exported to an OpenTelemetry collector
// over OTLP/HTTP with JSON encoding (POST <endpoint>/v1/traces). A span is written as its
// OTLP/JSON text while it is built (one string: cheap to queue and to free on another
// thread; measured: half the cost of a struct of attributes encoded later). Finished
// spans go into a bounded queue that a background thread sends in batches; a full queue
// drops the span and counts it, so a slow or absent collector never slows a call. The
// queue is flushed when the tracer is destroyed.
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

#include "telemetry/otlp.hpp"

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

// One span, written as an OTLP/JSON Span object as it is built: the constructor writes
// the ids, name, kind and times; set() adds attributes; text() closes it.
class Span {
 public:
  enum class Kind { kInternal = 1, kServer = 2, kClient = 3 };
  // `parent`: its span id, or null for a root span; `tracestate`: the parent's, passed on.
  Span(std::string_view name, Kind kind, const SpanContext& self, const std::array<uint8_t, 8>* parent, uint64_t start_ns,
       uint64_t end_ns, std::string_view tracestate = {});
  const SpanContext& context() const { return context_; }
  void set(std::string_view key, std::string_view value);
  void set(std::string_view key, const char* value) { set(key, std::string_view(value)); }
  void set(std::string_view key, int64_t value);
  void set(std::string_view key, bool value);
  void set(std::string_view key, double value);
  void fail(std::string_view message);  // status ERROR with this description
  void link(const SpanContext& to);
  std::string text() &&;  // the finished Span object

 private:
  void key(std::string_view k);
  SpanContext context_;
  std::string out_;  // the attributes list is open until text()
  std::string status_, links_;  // written after it
  bool first_ = true;
};

uint64_t unix_ns(std::chrono::system_clock::time_point t = std::chrono::system_clock::now());

// Appends `s` as a JSON string literal; bytes that are not UTF-8 become U+FFFD.
void append_json_string(std::string& out, std::string_view s);

// A new span's context: a child of `parent` when it is valid (same trace, its sampled
// flag), else the root of a new trace, sampled at `sampling` (TraceIdRatioBased).
SpanContext new_span(const SpanContext* parent, double sampling);

class Tracer {
 public:
  struct Options {
    Collector collector;
    double sampling = 1.0;  // share of new traces recorded; a parent's sampled flag is followed
    size_t queue_size = 2048;
    size_t batch_size = 512;
    std::chrono::milliseconds batch_delay{5000};
  };

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

  const Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;  // finished spans' text; guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::atomic<uint64_t> exported_{0}, dropped_full_{0}, dropped_failed_{0};
  std::thread thread_;  // last: started once the rest exists
};

// The body of one export: an ExportTraceServiceRequest in OTLP/JSON of spans' text (from
// Span::text()), with the resource (service.*) from `collector`, into `out`.
void otlp_json(const std::vector<std::string>& spans, const Collector& collector, std::string& out);

}  // namespace mcph::telemetry
