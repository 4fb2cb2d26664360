#include "telemetry/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>

namespace mcph::telemetry {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

void labels_text(std::string& out, const std::vector<std::pair<std::string, std::string>>& labels) {
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (value.empty()) continue;  // Prometheus: an empty label is an absent one
    out += first ? "{" : ",";
    out += key + "=\"" + escape_label(value) + "\"";
    first = false;
  }
  if (!first) out += "}";
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

// One sample line: name+suffix{labels} value
void write_sample(std::string& out, const std::string& name, const char* suffix,
            const std::vector<std::pair<std::string, std::string>>& labels, const std::string& value) {
  out.append(name).append(suffix);
  labels_text(out, labels);
  out.append(" ").append(value).append("\n");
}

}  // namespace

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

Family::Family(std::string name, std::string help, Type type, std::vector<std::string> keys, std::vector<double> bounds)
    : name_(std::move(name)), help_(std::move(help)), type_(type), keys_(std::move(keys)), bounds_(std::move(bounds)) {}

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

void Family::render(std::string& out) const {
  const bool histogram = type_ == Type::kHistogram;
  header(out, histogram ? name_ : std::string(name_).append("_total"), help_, histogram ? "histogram" : "counter");
  std::shared_lock lock(mutex_);
  std::vector<const Series*> sorted;  // a stable order from scrape to scrape
  for (const auto& [key, s] : series_) sorted.push_back(s.get());
  std::sort(sorted.begin(), sorted.end(), [](const Series* a, const Series* b) { return a->values < b->values; });
  for (const Series* s : sorted) {
    std::vector<std::pair<std::string, std::string>> labels;
    for (size_t i = 0; i < keys_.size() && i < s->values.size(); ++i) labels.emplace_back(keys_[i], s->values[i]);
    if (!histogram) {
      write_sample(out, name_, "_total", labels, number(s->sum.load()));
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= bounds_.size(); ++b) {
      cumulative += s->counts[b].load(std::memory_order_relaxed);
      auto with_le = labels;
      with_le.emplace_back("le", b < bounds_.size() ? number(bounds_[b]) : "+Inf");
      write_sample(out, name_, "_bucket", with_le, std::to_string(cumulative));
    }
    write_sample(out, name_, "_sum", labels, number(s->sum.load()));
    write_sample(out, name_, "_count", labels, std::to_string(cumulative));
  }
}

Family& Metrics::counter(std::string name, std::string help, std::vector<std::string> keys) {
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), Family::Type::kCounter, std::move(keys)));
  return *families_.back();
}

Family& Metrics::histogram(std::string name, std::string help, std::vector<std::string> keys, std::vector<double> bounds) {
  families_.push_back(
      std::make_unique<Family>(std::move(name), std::move(help), Family::Type::kHistogram, std::move(keys), std::move(bounds)));
  return *families_.back();
}

void Metrics::gauge(std::string name, std::string help, std::function<std::vector<Sample>()> read, std::string type) {
  reads_.push_back(Read{std::move(name), std::move(help), std::move(type), std::move(read)});
}

std::string Metrics::prometheus() const {
  std::string out;
  for (const auto& f : families_) f->render(out);
  for (const auto& r : reads_) {
    header(out, r.name, r.help, r.type.c_str());
    for (const auto& s : r.read()) write_sample(out, r.name, "", s.labels, number(s.value));
  }
  return out;
}

}  // namespace mcph::telemetry
