#include "telemetry/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "http_stack/http_stack.hpp"
#include "telemetry/trace.hpp"

namespace mcph::telemetry {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

// An attribute key as a Prometheus label name.
std::string label_name(std::string key) {
  std::replace(key.begin(), key.end(), '.', '_');
  return key;
}

void labels_text(std::string& out, const Labels& labels) {
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (value.empty()) continue;  // Prometheus: an empty label is an absent one
    out += first ? "{" : ",";
    out += label_name(key) + "=\"" + escape_label(value) + "\"";
    first = false;
  }
  if (!first) out += "}";
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

// One sample line: name+suffix{labels} value
void write_sample(std::string& out, const std::string& name, const char* suffix, const Labels& labels, const std::string& value) {
  out.append(name).append(suffix);
  labels_text(out, labels);
  out.append(" ").append(value).append("\n");
}

// OTLP/JSON pieces. 64-bit integers are decimal strings; doubles are numbers.
void otlp_attributes(std::string& out, const Labels& labels) {
  out += "\"attributes\":[";
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (value.empty()) continue;
    out += first ? "{\"key\":" : ",{\"key\":";
    append_json_string(out, key);
    out += ",\"value\":{\"stringValue\":";
    append_json_string(out, value);
    out += "}}";
    first = false;
  }
  out += ']';
}

void otlp_header(std::string& out, const MetricInfo& info) {
  out += "{\"name\":";
  append_json_string(out, info.name);
  out += ",\"description\":";
  append_json_string(out, info.description);
  out += ",\"unit\":";
  append_json_string(out, info.unit);
}

// `"sum":{...}` (cumulative, monotonic) or `"gauge":{...}` of number points.
void otlp_numbers(std::string& out, bool sum, const std::vector<std::pair<Labels, double>>& points, const std::string& times,
                  const std::string& now) {
  out += sum ? ",\"sum\":{\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[" : ",\"gauge\":{\"dataPoints\":[";
  for (size_t i = 0; i < points.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    otlp_attributes(out, points[i].first);
    out += ',';
    out += sum ? times : now;
    out += ",\"asDouble\":";
    out += number(points[i].second);
    out += '}';
  }
  out += "]}}";
}

std::string nanos_text(std::chrono::system_clock::time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

}  // namespace

std::string prometheus_name(const MetricInfo& info) {
  std::string name = label_name(info.name);
  if (info.unit == "s") name += "_seconds";
  return name;
}

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

Family::Family(MetricInfo info, Type type, std::vector<std::string> keys, std::vector<double> bounds)
    : info_(std::move(info)), prometheus_name_(prometheus_name(info_)), type_(type), keys_(std::move(keys)), bounds_(std::move(bounds)) {}

Family::Series& Family::series(const LabelValues& labels) {
  thread_local std::string key;  // no allocation once warm
  key.clear();
  for (std::string_view v : labels) {
    key.append(v);
    key += '\x1f';
  }
  {
    std::shared_lock lock(mutex_);
    if (auto it = series_.find(key); it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mutex_);
  std::vector<std::string> values(labels.begin(), labels.end());
  if (series_.size() >= kMaxSeries) {
    values.assign(keys_.size(), "_OTHER");
    key.clear();
    for (const auto& v : values) key += v + '\x1f';
  }
  auto& slot = series_[key];
  if (!slot) slot = std::make_unique<Series>(std::move(values), type_ == Type::kHistogram ? bounds_.size() + 1 : 0);
  return *slot;
}

void Family::record(const LabelValues& labels, double v) {
  Series& s = series(labels);
  if (type_ == Type::kHistogram) {
    const size_t bucket = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    s.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  }
  s.count.fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(v, std::memory_order_relaxed);
}

std::vector<const Family::Series*> Family::sorted() const {
  std::vector<const Series*> out;
  for (const auto& [key, s] : series_) out.push_back(s.get());
  std::sort(out.begin(), out.end(), [](const Series* a, const Series* b) { return a->values < b->values; });
  return out;
}

Labels Family::labels(const Series& s) const {
  Labels out;
  for (size_t i = 0; i < keys_.size() && i < s.values.size(); ++i) out.emplace_back(keys_[i], s.values[i]);
  return out;
}

void Family::prometheus(std::string& out) const {
  const bool histogram = type_ == Type::kHistogram;
  header(out, histogram ? prometheus_name_ : prometheus_name_ + "_total", info_.description, histogram ? "histogram" : "counter");
  std::shared_lock lock(mutex_);
  for (const Series* s : sorted()) {
    const Labels labels = this->labels(*s);
    if (!histogram) {
      write_sample(out, prometheus_name_, "_total", labels, number(s->sum.load()));
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      cumulative += s->counts[b].load(std::memory_order_relaxed);
      auto with_le = labels;
      with_le.emplace_back("le", b < bounds_.size() ? number(bounds_[b]) : "+Inf");
      write_sample(out, prometheus_name_, "_bucket", with_le, std::to_string(cumulative));
    }
    write_sample(out, prometheus_name_, "_sum", labels, number(s->sum.load()));
    write_sample(out, prometheus_name_, "_count", labels, std::to_string(cumulative));
  }
}

void Family::otlp(std::string& out, const std::string& times) const {
  std::shared_lock lock(mutex_);
  if (series_.empty()) return;
  if (out.back() == '}') out += ',';
  otlp_header(out, info_);
  if (type_ == Type::kCounter) {
    std::vector<std::pair<Labels, double>> points;
    for (const Series* s : sorted()) points.emplace_back(labels(*s), s->sum.load());
    return otlp_numbers(out, true, points, times, times);
  }
  out += ",\"histogram\":{\"aggregationTemporality\":2,\"dataPoints\":[";
  bool first = true;
  for (const Series* s : sorted()) {
    out += first ? "{" : ",{";
    first = false;
    otlp_attributes(out, labels(*s));
    out += ',';
    out += times;
    // Counted from the buckets, so that count and bucketCounts agree even while recording goes on.
    std::string buckets;
    uint64_t count = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      const uint64_t n = s->counts[b].load(std::memory_order_relaxed);
      count += n;
      buckets.append(b == 0 ? "\"" : ",\"").append(std::to_string(n)).append("\"");
    }
    out.append(",\"count\":\"").append(std::to_string(count)).append("\",\"sum\":").append(number(s->sum.load()));
    out.append(",\"bucketCounts\":[").append(buckets).append("],\"explicitBounds\":[");
    for (size_t b = 0; b < bounds_.size(); ++b) out.append(b == 0 ? "" : ",").append(number(bounds_[b]));
    out += "]}";
  }
  out += "]}}";
}

Metrics::Metrics() : started_(std::chrono::system_clock::now()) {}

Family& Metrics::counter(MetricInfo info, std::vector<std::string> keys) {
  families_.push_back(std::make_unique<Family>(std::move(info), Family::Type::kCounter, std::move(keys)));
  return *families_.back();
}

Family& Metrics::histogram(MetricInfo info, std::vector<std::string> keys, std::vector<double> bounds) {
  families_.push_back(std::make_unique<Family>(std::move(info), Family::Type::kHistogram, std::move(keys), std::move(bounds)));
  return *families_.back();
}

void Metrics::gauge(MetricInfo info, std::function<std::vector<Sample>()> read, bool counter) {
  std::string name = prometheus_name(info);
  if (counter) name += "_total";
  reads_.push_back(Read{std::move(info), std::move(name), counter, std::move(read)});
}

std::string Metrics::prometheus() const {
  std::string out;
  for (const auto& f : families_) f->prometheus(out);
  for (const auto& r : reads_) {
    header(out, r.prometheus_name, r.info.description, r.counter ? "counter" : "gauge");
    for (const auto& s : r.read()) write_sample(out, r.prometheus_name, "", s.labels, number(s.value));
  }
  return out;
}

void Metrics::otlp_json(const Collector& collector, std::string& out) const {
  const std::string now = "\"timeUnixNano\":\"" + nanos_text(std::chrono::system_clock::now()) + '"';
  const std::string times = "\"startTimeUnixNano\":\"" + nanos_text(started_) + "\"," + now;
  out.clear();
  out += "{\"resourceMetrics\":[{";
  append_resource(out, collector);
  out += ",\"scopeMetrics\":[{";
  append_scope(out, collector);
  out += ",\"metrics\":[";
  for (const auto& f : families_) f->otlp(out, times);
  for (const auto& r : reads_) {
    std::vector<std::pair<Labels, double>> points;
    for (auto& s : r.read()) points.emplace_back(std::move(s.labels), s.value);
    if (points.empty()) continue;
    if (out.back() == '}') out += ',';
    otlp_header(out, r.info);
    otlp_numbers(out, r.counter, points, times, now);
  }
  out += "]}]}]}";
}

MetricsExporter::MetricsExporter(const Metrics& metrics, Collector collector, std::chrono::milliseconds interval)
    : metrics_(metrics), collector_(std::move(collector)), interval_(interval), thread_([this] { run(); }) {}

MetricsExporter::~MetricsExporter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MetricsExporter::run() {
  const auto sender = http_stack::otlp_sender(collector_, "metrics");  // null without the HTTP stack
  std::string body;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    const bool last = stopping_;
    lock.unlock();
    metrics_.otlp_json(collector_, body);
    (sender != nullptr && sender->post(body, "metrics") ? exported_ : failed_).fetch_add(1);
    lock.lock();
    if (last) return;
  }
}

}  // namespace mcph::telemetry
