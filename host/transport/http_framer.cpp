#include "transport/http_framer.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace mcph::transport {
namespace {

// A chunk-size line ("1a2b;ext=1") longer than this is not a chunk size.
constexpr size_t kMaxChunkLine = 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar, as a table: every byte of every header name is looked up, twice.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token_char(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

// A header value's characters: visible ones, obs-text, space and tab (RFC 9110 §5.5).
bool is_value_char(char c) { return static_cast<unsigned char>(c) >= 0x20 ? c != 0x7f : c == '\t'; }

// A Content-Length value: 1 to 18 digits (nothing else, not even a sign), else nullopt.
std::optional<size_t> content_length(std::string_view value) {
  if (value.empty() || value.size() > 18 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  size_t n = 0;
  for (char c : value) n = n * 10 + static_cast<size_t>(c - '0');
  return n;
}

}  // namespace

std::optional<PlainRequest> parse_plain_request(std::string_view request) {
  const size_t head_end = request.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return std::nullopt;
  std::string_view head = request.substr(0, head_end + 2);  // its lines, each with its CRLF
  auto next_line = [&]() -> std::optional<std::string_view> {
    const size_t end = head.find("\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    return line;
  };
  PlainRequest r;
  const auto request_line = next_line();
  if (!request_line) return std::nullopt;
  const size_t sp1 = request_line->find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line->find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || request_line->substr(sp2 + 1) != "HTTP/1.1") return std::nullopt;
  r.method = request_line->substr(0, sp1);
  r.target = request_line->substr(sp1 + 1, sp2 - sp1 - 1);
  if (!std::all_of(r.method.begin(), r.method.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) return std::nullopt;
  if (!r.target.starts_with('/') || !std::all_of(r.target.begin(), r.target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return std::nullopt;
  }
  std::optional<size_t> length;
  r.headers.reserve(16);
  while (auto line = next_line()) {
    const size_t colon = line->find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    const std::string_view name = line->substr(0, colon);
    const std::string_view value = trim(line->substr(colon + 1));
    if (!std::all_of(name.begin(), name.end(), is_token_char) || !std::all_of(value.begin(), value.end(), is_value_char)) {
      return std::nullopt;
    }
    if (iequals(name, "Transfer-Encoding")) return std::nullopt;
    if (iequals(name, "Content-Length")) {
      if (length) return std::nullopt;
      length = content_length(value);
      if (!length) return std::nullopt;
    }
    if (iequals(name, "Connection")) {
      if (value.find(',') != std::string_view::npos) return std::nullopt;
      r.close = r.close || iequals(value, "close");
    }
    r.headers.emplace_back(name, value);
  }
  r.body = request.substr(head_end + 4);
  if (r.body.size() != length.value_or(0)) return std::nullopt;
  return r;
}

RequestFramer::Outcome RequestFramer::fail(int status, std::string message) {
  Outcome o;
  o.state = State::kError;
  o.status = status;
  o.message = std::move(message);
  return o;
}

void RequestFramer::reset() {
  phase_ = Phase::kHead;
  scanned_ = header_count_ = content_length_ = remaining_ = body_bytes_ = trailer_bytes_ = 0;
  request_line_seen_ = chunked_ = has_length_ = false;
  expect_begin_ = expect_end_ = 0;
}

void RequestFramer::expect_removed() {
  scanned_ -= expect_end_ - expect_begin_;
  expect_begin_ = expect_end_ = 0;
}

RequestFramer::Outcome RequestFramer::head_line(std::string_view line, size_t line_begin, size_t line_end) {
  if (!request_line_seen_) {
    // RFC 9112 §2.2: empty lines before the request line are ignored (bounded by the head size).
    if (!line.empty()) request_line_seen_ = true;
    return {};
  }
  if (line.empty()) return end_of_head();
  if (++header_count_ > limits_.max_headers) {
    return fail(431, "Request Header Fields Too Large: more than " + std::to_string(limits_.max_headers) + " headers");
  }
  if (line.front() == ' ' || line.front() == '\t') return fail(400, "Bad Request: folded header lines are not accepted");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail(400, "Bad Request: a header line has no name");
  const std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), is_token_char)) return fail(400, "Bad Request: malformed header name");
  const std::string_view value = trim(line.substr(colon + 1));
  if (iequals(name, "Content-Length")) {
    const auto n = content_length(value);
    if (!n) return fail(400, "Bad Request: malformed Content-Length");
    if (has_length_ && *n != content_length_) return fail(400, "Bad Request: conflicting Content-Length headers");
    has_length_ = true;
    content_length_ = *n;
  } else if (iequals(name, "Transfer-Encoding")) {
    // Only "chunked", once: any other coding (or a list) would be framed differently by the
    // HTTP library than here, which is how requests get smuggled.
    if (chunked_ || !iequals(value, "chunked")) return fail(400, "Bad Request: only Transfer-Encoding: chunked is accepted");
    chunked_ = true;
  } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
    expect_begin_ = line_begin;
    expect_end_ = line_end;
  }
  return {};
}

RequestFramer::Outcome RequestFramer::end_of_head() {
  if (chunked_ && has_length_) return fail(400, "Bad Request: both Content-Length and Transfer-Encoding");
  if (chunked_) {
    phase_ = Phase::kChunkSize;
  } else if (content_length_ > limits_.max_body_bytes) {
    return fail(413, "Payload Too Large (server.http.max_body_bytes)");
  } else if (content_length_ > 0) {
    remaining_ = content_length_;
    phase_ = Phase::kBody;
  } else {
    phase_ = Phase::kDone;
  }
  return {};
}

RequestFramer::Outcome RequestFramer::feed(std::string_view buffer) {
  for (;;) {
    switch (phase_) {
      case Phase::kDone: {
        Outcome o;
        o.state = State::kComplete;
        o.length = scanned_;
        return o;
      }
      case Phase::kBody:
      case Phase::kChunkData: {
        const size_t take = std::min(buffer.size() - scanned_, remaining_);
        scanned_ += take;
        remaining_ -= take;
        if (remaining_ > 0) return {};
        phase_ = phase_ == Phase::kBody ? Phase::kDone : Phase::kChunkEnd;
        continue;
      }
      case Phase::kChunkEnd: {
        if (buffer.size() - scanned_ < 2) {
          if (buffer.size() > scanned_ && buffer[scanned_] != '\r') return fail(400, "Bad Request: malformed chunk");
          return {};
        }
        if (buffer[scanned_] != '\r' || buffer[scanned_ + 1] != '\n') return fail(400, "Bad Request: malformed chunk");
        scanned_ += 2;
        phase_ = Phase::kChunkSize;
        continue;
      }
      case Phase::kHead:
      case Phase::kChunkSize:
      case Phase::kTrailers: {
        const size_t nl = buffer.find('\n', scanned_);
        const size_t line_end = nl == std::string_view::npos ? buffer.size() : nl + 1;
        const size_t line_bytes = line_end - scanned_;
        // Limits hold for the bytes already here, not only for finished lines.
        if (phase_ == Phase::kHead && line_end > limits_.max_head_bytes) {
          return fail(431, "Request Header Fields Too Large: the head is over " + std::to_string(limits_.max_head_bytes) + " bytes");
        }
        if (phase_ == Phase::kChunkSize && line_bytes > kMaxChunkLine) return fail(400, "Bad Request: malformed chunk size");
        if (phase_ == Phase::kTrailers && trailer_bytes_ + line_bytes > limits_.max_head_bytes) {
          return fail(431, "Request Header Fields Too Large: trailers");
        }
        if (nl == std::string_view::npos) return {};
        std::string_view line = buffer.substr(scanned_, nl - scanned_);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const size_t line_begin = scanned_;
        scanned_ = line_end;
        if (phase_ == Phase::kHead) {
          if (Outcome o = head_line(line, line_begin, line_end); o.state == State::kError) return o;
        } else if (phase_ == Phase::kTrailers) {
          trailer_bytes_ += line_bytes;
          if (line.empty()) phase_ = Phase::kDone;
        } else {
          const std::string_view size_text = trim(line.substr(0, line.find(';')));
          if (size_text.empty() || size_text.size() > 15 ||
              !std::all_of(size_text.begin(), size_text.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
            return fail(400, "Bad Request: malformed chunk size");
          }
          const size_t size = std::stoull(std::string(size_text), nullptr, 16);
          if (size == 0) {
            phase_ = Phase::kTrailers;
          } else {
            body_bytes_ += size;
            if (body_bytes_ > limits_.max_body_bytes) return fail(413, "Payload Too Large (server.http.max_body_bytes)");
            remaining_ = size;
            phase_ = Phase::kChunkData;
          }
        }
        continue;
      }
    }
  }
}

}  // namespace mcph::transport
