#include "sse.hpp"

namespace codesphere {

bool SseParser::feed(std::string_view chunk, const Sink& sink) {
  if (!skipped_bom_) {
    // The BOM may itself arrive split; wait until three bytes (or a mismatch) are known.
    std::string head = buf_ + std::string(chunk.substr(0, 3));
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    const std::size_t n = std::min(head.size(), kBom.size());
    if (head.compare(0, n, kBom.substr(0, n)) == 0 && n < kBom.size()) {
      buf_ = head;  // a partial BOM so far
      return true;
    }
    skipped_bom_ = true;
    if (head.compare(0, kBom.size(), kBom) == 0) {
      const std::size_t from_chunk = kBom.size() - buf_.size();
      buf_.clear();
      chunk.remove_prefix(from_chunk);
    }
  }
  std::size_t start = 0;
  for (std::size_t i = 0; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (c != '\r' && c != '\n') {
      after_cr_ = false;
      continue;
    }
    if (c == '\n' && after_cr_ && i == start) {  // the LF of a CRLF split across chunks
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    if (buf_.size() < kMaxLine) buf_.append(chunk.substr(start, std::min(i - start, kMaxLine - buf_.size())));
    const bool keep_going = line(buf_, sink);
    buf_.clear();
    if (c == '\r' && i + 1 < chunk.size() && chunk[i + 1] == '\n') ++i;  // CRLF in one chunk
    after_cr_ = c == '\r' && i + 1 == chunk.size();
    start = i + 1;
    if (!keep_going) return false;
  }
  if (start < chunk.size() && buf_.size() < kMaxLine) {
    buf_.append(chunk.substr(start, std::min(chunk.size() - start, kMaxLine - buf_.size())));
  }
  return true;
}

bool SseParser::line(std::string_view l, const Sink& sink) {
  if (l.empty()) {
    if (!has_data_) {
      reset_event();
      return true;
    }
    SseEvent e;
    if (!type_.empty()) e.type = type_;
    e.data = std::move(data_);
    if (!e.data.empty() && e.data.back() == '\n') e.data.pop_back();
    e.id = last_id_;
    reset_event();
    return sink(e);
  }
  if (l.front() == ':') return true;  // comment (keep-alives)
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_ += '\n';
    has_data_ = true;
  } else if (field == "event") {
    type_ = value;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = value;
  }
  return true;
}

void SseParser::reset_event() {
  type_.clear();
  data_.clear();
  has_data_ = false;
}

std::string format_log_entry(const LogEntry& e) {
  std::string data = e.data;
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  std::string out = e.timestamp.empty() ? std::string("-") : e.timestamp;
  out += " [" + (e.kind.empty() ? std::string("?") : e.kind) + "] ";
  return out + data;
}

bool LogCollector::feed(std::string_view chunk) {
  return parser_.feed(chunk, [this](const SseEvent& e) { return on_event(e); });
}

bool LogCollector::on_event(const SseEvent& e) {
  if (e.type == "end" || e.type == "close" || e.type == "done" || e.type == "complete") {
    ended_ = true;
    return false;
  }
  json j = json::parse(e.data, nullptr, false);
  if (j.is_array()) {
    for (const auto& item : j) {
      if (!item.is_object()) continue;
      LogEntry entry;
      entry.timestamp = text_field(item, "timestamp");
      entry.kind = text_field(item, "kind");
      if (auto d = item.find("data"); d != item.end()) entry.data = d->is_string() ? d->get<std::string>() : d->dump();
      entries_.push_back(std::move(entry));
      ++total_;
      if (entries_.size() > max_) entries_.pop_front();
    }
    return true;
  }
  if (j.is_object() || e.type == "problem") {
    if (auto p = parse_problem(e.data)) {
      problem_ = *p;
      return false;
    }
    if (e.type == "problem") {  // a problem we cannot read is still a problem
      problem_ = Problem{0, "problem", one_line(e.data), ""};
      return false;
    }
  }
  ++ignored_;  // not ours (or a heartbeat payload): skip it rather than fail the whole read
  return true;
}

}  // namespace codesphere
