// A small metrics registry with two expositions: the Prometheus text format (0.0.4) and
// OTLP/JSON (an ExportMetricsServiceRequest, cumulative). Counters and histograms with
// fixed attribute keys are recorded from any thread (a map lookup under a mutex, then
// atomics); gauges are read when exported. Families are made once, at start-up.
// A metric is named as OpenTelemetry names it (`mcp.server.operation.duration`, unit "s",
// attributes such as `mcp.method.name`); its Prometheus name follows the usual mapping:
// dots become underscores, the unit "s" adds "_seconds", counters end in "_total"
// (`mcp_server_operation_duration_seconds`, label `mcp_method_name`).
// Cardinality is bounded: past kMaxSeries attribute sets a family folds new ones into one
// series whose values all read "_OTHER".
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "telemetry/otlp.hpp"

namespace mcph::telemetry {

// Attribute values in the family's key order; "" = absent.
using LabelValues = std::initializer_list<std::string_view>;

// What a metric is, in OpenTelemetry's terms.
struct MetricInfo {
  std::string name;         // e.g. "mcp.server.operation.duration"
  std::string unit;         // UCUM: "s", or an annotation such as "{request}"
  std::string description;
};

class Family {
 public:
  enum class Type { kCounter, kHistogram };
  static constexpr size_t kMaxSeries = 2000;

  Family(MetricInfo info, Type type, std::vector<std::string> keys, std::vector<double> bounds = {});

  // Counters: adds `v` (>= 0). Histograms: records one observation of `v`.
  void add(const LabelValues& labels, double v = 1) { record(labels, v); }
  void observe(const LabelValues& labels, double v) { record(labels, v); }
  void prometheus(std::string& out) const;
  // One OTLP Metric object; `times` is `"startTimeUnixNano":"…","timeUnixNano":"…"`. Nothing
  // while the family has no series.
  void otlp(std::string& out, const std::string& times) const;

 private:
  struct Series {
    Series(std::vector<std::string> v, size_t buckets) : values(std::move(v)), counts(buckets) {}
    const std::vector<std::string> values;
    std::vector<std::atomic<uint64_t>> counts;  // histograms: per bucket (not cumulative)
    std::atomic<uint64_t> count{0};
    std::atomic<double> sum{0};
  };
  void record(const LabelValues& labels, double v);
  Series& series(const LabelValues& labels);
  std::vector<const Series*> sorted() const;  // a stable order from export to export; under mutex_
  std::vector<std::pair<std::string, std::string>> labels(const Series& s) const;  // (key, value) in key order

  const MetricInfo info_;
  const std::string prometheus_name_;
  const Type type_;
  const std::vector<std::string> keys_;
  const std::vector<double> bounds_;
  // Recording looks up an existing series under a shared lock: the hot path never waits
  // for another recorder, only for a series being added.
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Series>> series_;  // by joined values; guarded by mutex_
};

// One sample of a gauge read at export time; its attributes by OpenTelemetry key.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Metrics {
 public:
  Metrics();
  Family& counter(MetricInfo info, std::vector<std::string> keys);
  Family& histogram(MetricInfo info, std::vector<std::string> keys, std::vector<double> bounds);
  // A gauge, or a counter kept elsewhere (`counter` true: a cumulative sum in OTLP, "_total"
  // in Prometheus), whose samples `read` produces.
  void gauge(MetricInfo info, std::function<std::vector<Sample>()> read, bool counter = false);

  std::string prometheus() const;
  // An ExportMetricsServiceRequest of every metric now, into `out`.
  void otlp_json(const Collector& collector, std::string& out) const;

 private:
  struct Read {
    MetricInfo info;
    std::string prometheus_name;
    bool counter;
    std::function<std::vector<Sample>()> read;
  };
  const std::chrono::system_clock::time_point started_;  // the start of every cumulative series
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<Read> reads_;
};

// Sends every metric to the collector (POST <endpoint>/v1/metrics) each `interval` on a
// thread of its own, and once more when destroyed.
class MetricsExporter {
 public:
  MetricsExporter(const Metrics& metrics, Collector collector, std::chrono::milliseconds interval);
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  uint64_t exported() const { return exported_.load(); }  // exports the collector accepted
  uint64_t failed() const { return failed_.load(); }

 private:
  void run();
  const Metrics& metrics_;
  const Collector collector_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::atomic<uint64_t> exported_{0}, failed_{0};
  std::thread thread_;  // last: started once the rest exists
};

// The Prometheus name of a metric: dots to underscores, "_seconds" for the unit "s".
std::string prometheus_name(const MetricInfo& info);
// Escapes a label value for the exposition (backslash, quote, newline).
std::string escape_label(const std::string& value);

}  // namespace mcph::telemetry
