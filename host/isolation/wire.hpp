// The framed protocol between mcp-host and an isolated plugin's child process
// (mcp-host-plugin), over one socketpair. A frame is
//
//   u32 size | u8 type | u32 id | u32 head size | head (JSON text) | body (raw bytes)
//
// little-endian, `size` counting everything after itself. `id` names the call (host's
// calls) or the service request (the child's) a frame belongs to. The head carries the
// small structured part; the body carries bulk bytes untouched (a tool's input and result,
// a state value, an HTTP body), so nothing is escaped twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "plugins/instance.hpp"
#include "result.hpp"

namespace mcph::isolation {

enum class Msg : uint8_t {
  // host -> child
  kCreate = 1,    // head: {name, library, search_dirs, credentials, settings, create_timeout_ms, cpu_seconds_per_call,
                  //   sandbox, log_level, replica}
  kCall = 2,      // id: call. head: {kind, index, what, deadline_ms, principal?, caller?, client_capabilities?, traceparent?,
                  //   input_responses?, may_hand_over?, state?} (? absent when empty); body: the input JSON
  kCancel = 3,    // id: call
  kReply = 4,     // id: service request. head: the answer; body: bytes it carries
  kHttpHead = 5,  // id: service request (streamed HTTP). head: {status, headers}
  kHttpBody = 6,  // id: service request (streamed HTTP). body: a chunk
  kShutdown = 7,  // end calls (they see call_cancelled), destroy the instance, exit 0
  // child -> host
  kCreated = 20,  // head: {ok, error?, library: {path, name, version}, registration}
  kResult = 21,   // id: call. head: the outcome {has_outcome, is_error?, error_status?, error_text?, input_requests?,
                  //   missing_capability?, next_state?, task_handle?}, none for a plain result (has_outcome alone);
                  //   body: the result JSON (when not an error)
  kProgress = 22, // id: call. head: {progress, total, message}
  kCallLog = 23,  // id: call. head: {level, logger}; body: data JSON
  kLog = 24,      // head: {level}; body: a log line of the plugin (or the runner)
  kService = 25,  // id: service request. head: {op, key?, ...}; body: bytes it carries. op: state_get|put|delete|
                  //   list|put_if, lease_acquire|release, user, http (with the call's traceparent? or a trace_link?)
  kHttpStop = 26, // id: service request: the plugin stopped reading a streamed body
  kResourceUpdated = 27,  // body: the URI
  kOverCpu = 28,  // id: call: its handler used more CPU than cpu_seconds_per_call; cancelled
};

struct Frame {
  Msg type{};
  uint32_t id = 0;
  nlohmann::json head;    // null when the frame had none, or when it is a call's:
  std::string head_text;  // a kCall frame's head, as written: every call has one, and the
                          // child reads it from its text (Child::take_call) instead of
                          // building it
  std::string body;
};

// How long a reader that expects a frame soon looks for it before it sleeps: the peer
// answers a quick call within this, and waking a sleeping thread costs more (on a VM every
// wake-up from idle is a hypervisor exit: a blocking round trip over a socketpair takes
// ~31 µs here, ~10 µs when both ends look without sleeping).
constexpr auto kSpin = std::chrono::microseconds(60);

// Frames larger than this end the connection (a confused or hostile peer).
constexpr size_t kMaxFrameBytes = 256u << 20;

// One end of the socketpair. send() is thread-safe; read() belongs to one reader at a time.
class Channel {
 public:
  explicit Channel(int fd) : fd_(fd) {}
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  int fd() const { return fd_; }
  // False once the peer is gone (or the socket was shut down). With `hold`, the frame
  // waits in the channel for flush_held(), which sends all that wait in one system call
  // (a thread that sends several frames in a row holds them); while any wait, every frame
  // queues behind them, so frames keep the order they were sent in.
  bool send(Msg type, uint32_t id, const nlohmann::json& head = nullptr, std::string_view body = {}, bool hold = false);
  // The same with the head already written as JSON text (empty: none), for the frames of
  // every call.
  bool send_written(Msg type, uint32_t id, std::string_view head, std::string_view body = {}, bool hold = false);
  bool flush_held();
  // Blocks for the next frame. An error when the peer closed, the socket failed, or a frame
  // was malformed ("closed" for an orderly end).
  Status read(Frame& frame);
  // Wakes a blocked read() and fails every later send (the fd stays open until destruction).
  void shutdown();
  // Bytes already read from the socket that read() has not returned yet (by the reader).
  bool buffered() const { return pos_ < end_; }
  // Whether bytes are buffered or arrive within `spin` (looked for without sleeping, at
  // least once when `spin` is positive; an error or the peer's end counts as arriving:
  // read() reports it).
  bool readable_within(std::chrono::steady_clock::duration spin) const;

 private:
  bool fill(size_t need);  // until buf_ holds `need` bytes after pos_ (up to end_)
  bool write_all(std::string_view bytes);  // with write_mutex_ held
  int fd_;
  std::mutex write_mutex_;
  std::string held_;  // guarded by write_mutex_: frames waiting for flush_held()
  // Read side: bytes [pos_, end_) of buf_ are read and not yet taken; cap_ bytes of room
  // are kept between reads (it only grows). Not a std::string: growing one clears what it
  // adds, and clearing 64 KiB touches 16 fresh pages at a channel's first read (~25 µs a
  // page fault on the VMs measured: 0.4 ms of every child's start, and of the host's).
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, pos_ = 0, end_ = 0;
};

// state_list's rows as they travel in a body (values are bytes, not JSON): u32-prefixed
// key, u32-prefixed value, repeated. read_pairs stops at the first incomplete pair or when
// `each` returns false.
void append_pair(std::string& body, std::string_view key, std::string_view value);
void read_pairs(std::string_view body, const std::function<bool(std::string_view, std::string_view)>& each);

// What an instance registered in create(), as it travels from child to host: tools,
// resources, prompts, user credentials, the credential check, public credential keys.
nlohmann::json registration_to_json(const mcph_host_instance& hi);
// Fills hi's registration from it (handlers stay null: they live in the child).
Status registration_from_json(const nlohmann::json& j, mcph_host_instance& hi);

}  // namespace mcph::isolation
