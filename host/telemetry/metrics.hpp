// A small metrics registry with the Prometheus text exposition (format 0.0.4): counters and
// histograms with fixed label keys, recorded from any thread (a map lookup under a mutex,
// then atomics), and gauges read at scrape time. Families are made once, at start-up.
// Cardinality is bounded: past kMaxSeries label sets a family folds new ones into one
// series whose labels all read "_OTHER".
#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mcph::telemetry {

// Label values in the family's key order; "" = absent.
using LabelValues = std::initializer_list<std::string_view>;

class Family {
 public:
  enum class Type { kCounter, kHistogram };
  static constexpr size_t kMaxSeries = 2000;

  Family(std::string name, std::string help, Type type, std::vector<std::string> keys, std::vector<double> bounds = {});

  // Counters: adds `v` (>= 0). Histograms: records one observation of `v`.
  void add(const LabelValues& labels, double v = 1) { record(labels, v); }
  void observe(const LabelValues& labels, double v) { record(labels, v); }
  void render(std::string& out) const;

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

  const std::string name_, help_;
  const Type type_;
  const std::vector<std::string> keys_;
  const std::vector<double> bounds_;
  // Recording looks up an existing series under a shared lock: the hot path never waits
  // for another recorder, only for a series being added.
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::unique_ptr<Series>> series_;  // by joined values; guarded by mutex_
};

// One gauge sample read at scrape time.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Metrics {
 public:
  Family& counter(std::string name, std::string help, std::vector<std::string> keys);
  Family& histogram(std::string name, std::string help, std::vector<std::string> keys, std::vector<double> bounds);
  // A gauge (or a counter kept elsewhere: type "counter") whose samples `read` produces.
  void gauge(std::string name, std::string help, std::function<std::vector<Sample>()> read, std::string type = "gauge");

  std::string prometheus() const;

 private:
  struct Read {
    std::string name, help, type;
    std::function<std::vector<Sample>()> read;
  };
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<Read> reads_;
};

// Escapes a label value for the exposition (backslash, quote, newline).
std::string escape_label(const std::string& value);

}  // namespace mcph::telemetry
