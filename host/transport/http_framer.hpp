// Where one HTTP/1.1 request ends in the bytes a connection has sent so far, with every
// limit enforced while the bytes arrive: the head's size and header count (431), the body's
// size whatever its encoding (413), and malformed framing (400). The HTTP library parses
// the request only once it is whole, so a slow or endless sender never holds a worker and
// never makes the host buffer more than the limits allow (RFC 9112 §6 message body length).
//
// Incremental: call feed() with the whole buffer each time more bytes arrived; it resumes
// where it stopped.
#pragma once

#include <strings.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mcph::transport {

// Whether two HTTP tokens (header names, "chunked") are equal, ASCII case folded.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// A whole request (as RequestFramer framed it) in the plainest form HTTP/1.1 has, which the
// listener serves without cpp-httplib's parser (Listener::route_directly): the request
// line "METHOD /target HTTP/1.1", lines ending in CRLF, header lines "Name: value" with a
// token name and a value of visible characters, spaces and tabs, at most one
// Content-Length, which counts the bytes after the head exactly, and no Transfer-Encoding.
// Views into the request's bytes.
struct PlainRequest {
  std::string_view method, target;
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // values trimmed
  std::string_view body;
  bool close = false;  // "Connection: close"
};
// nullopt for any other request: cpp-httplib parses it, as it parses every request it is
// not asked to leave (the framer has enforced the limits either way).
std::optional<PlainRequest> parse_plain_request(std::string_view request);

class RequestFramer {
 public:
  struct Limits {
    size_t max_head_bytes = 64 * 1024;  // request line + headers
    size_t max_headers = 100;
    size_t max_body_bytes = 4 * 1024 * 1024;  // decoded body
  };
  enum class State { kNeedMore, kComplete, kError };
  struct Outcome {
    State state = State::kNeedMore;
    int status = 0;        // kError: 400, 413 or 431
    std::string message;   // kError: what is wrong, safe to show the client
    size_t length = 0;     // kComplete: the request's bytes at the start of the buffer
  };

  explicit RequestFramer(Limits limits) : limits_(limits) {}

  Outcome feed(std::string_view buffer);
  // Forget the request just framed; the next feed() starts at a new request.
  void reset();

  bool started() const { return phase_ != Phase::kHead || scanned_ > 0; }
  bool head_done() const { return phase_ != Phase::kHead; }
  // The "Expect: 100-continue" header line of the head, as [begin, end) in the buffer, or
  // begin == end when there is none: the caller answers it itself and removes the line.
  size_t expect_begin() const { return expect_begin_; }
  size_t expect_end() const { return expect_end_; }
  // The body still to come is not empty (for 100-continue).
  bool body_pending() const { return phase_ != Phase::kHead && phase_ != Phase::kDone; }
  // Call after removing the Expect line from the buffer.
  void expect_removed();

 private:
  enum class Phase { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers, kDone };
  Outcome fail(int status, std::string message);
  Outcome head_line(std::string_view line, size_t line_begin, size_t line_end);
  Outcome end_of_head();

  const Limits limits_;
  Phase phase_ = Phase::kHead;
  size_t scanned_ = 0;        // bytes of the buffer consumed so far
  size_t header_count_ = 0;
  bool request_line_seen_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  size_t content_length_ = 0;
  size_t remaining_ = 0;      // of the fixed body, or of the current chunk
  size_t body_bytes_ = 0;     // decoded so far
  size_t trailer_bytes_ = 0;
  size_t expect_begin_ = 0, expect_end_ = 0;
};

}  // namespace mcph::transport
