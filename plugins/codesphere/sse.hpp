// codesphere plugin: an incremental Server-Sent Events parser and the log-stream reader built
// on it (pure; unit-tested byte by byte and in odd chunks).
//
// Codesphere's logs endpoints are SSE streams (reference §2.7): `data` events carry a JSON
// array of {timestamp, kind: "I"|"E", data}; `problem` events carry {status, title, detail,
// traceId}. A finished stage's stream closes; a running one stays open (§4, our reading of
// CSGO/PY), so the reader must work on whatever arrived so far and stop on its own bounds.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "errors.hpp"

namespace codesphere {

struct SseEvent {
  std::string type = "message";  // the `event:` field, "message" when absent
  std::string data;              // `data:` lines joined with '\n'
  std::string id;                // the last `id:` seen (persists across events, as in the spec)
};

// The WHATWG "event stream interpretation": lines end in CRLF, LF or CR (also split across
// chunks); a leading BOM is skipped; `:` lines are comments; one space after the colon is
// dropped; an empty line dispatches the event if it has data. Unknown fields (and `retry:`)
// are ignored. Feed it chunks exactly as they arrive.
class SseParser {
 public:
  // Return false from the callback to stop: feed() then returns false at once and the
  // parser should not be fed again.
  using Sink = std::function<bool(const SseEvent&)>;

  bool feed(std::string_view chunk, const Sink& sink);
  // End of stream. The spec drops an event that was not terminated by an empty line; a
  // stream that is cut while closing loses nothing of value that way, and we follow it.
  void finish() { reset_event(); }

  // Longest line kept (longer ones are cut): a runaway stream must not exhaust memory.
  static constexpr std::size_t kMaxLine = 4 * 1024 * 1024;

 private:
  bool line(std::string_view l, const Sink& sink);
  void reset_event();

  std::string buf_;  // the current, unterminated line
  bool skipped_bom_ = false;
  bool after_cr_ = false;  // the last chunk ended in CR: a leading LF of the next one is part of it
  std::string type_, data_, last_id_;
  bool has_data_ = false;
};

struct LogEntry {
  std::string timestamp;
  std::string kind;  // "I" (stdout/info) or "E" (stderr/error); as sent
  std::string data;
};

// "2026-02-15T10:00:00.000Z [E] text" (one line per entry; trailing newlines dropped).
std::string format_log_entry(const LogEntry& e);

// Reads one log stream: keeps the last `max_entries` entries, notes a problem, and tells the
// caller to stop reading once the stream says it is done or reported a problem.
//
// Events are judged by their payload, not their name (§4: SPEC names them `data`/`problem`,
// CSGO's mock sends `message`): a JSON array is entries, an object with a status or title is
// a problem. Events named end/close/done/complete end the stream (PY does the same).
class LogCollector {
 public:
  explicit LogCollector(std::size_t max_entries) : max_(max_entries == 0 ? 1 : max_entries) {}

  // False once reading should stop (problem or end event).
  bool feed(std::string_view chunk);
  void finish() { parser_.finish(); }

  const std::deque<LogEntry>& entries() const { return entries_; }
  std::size_t total_seen() const { return total_; }  // entries received, including dropped ones
  const std::optional<Problem>& problem() const { return problem_; }
  bool ended_by_event() const { return ended_; }
  std::size_t ignored_events() const { return ignored_; }

 private:
  bool on_event(const SseEvent& e);

  SseParser parser_;
  std::size_t max_;
  std::deque<LogEntry> entries_;
  std::size_t total_ = 0;
  std::size_t ignored_ = 0;
  std::optional<Problem> problem_;
  bool ended_ = false;
};

}  // namespace codesphere
