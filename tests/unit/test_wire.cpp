// The framed protocol between the host and an isolated plugin's process (isolation/wire):
// frames come back whole however the socket splits or joins them, a frame larger than the
// read buffer grows it, and a malformed or cut frame is an error that says so.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "isolation/wire.hpp"

namespace mcph::isolation {
namespace {

using json = nlohmann::json;

struct Pair {
  int fds[2] = {-1, -1};
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
};

// The bytes send() would write for this frame, taken from the other end of a socketpair.
std::string frame_bytes(Msg type, uint32_t id, const json& head, const std::string& body) {
  Pair p;
  Channel out(p.fds[0]);
  std::string bytes;
  std::thread reader([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(p.fds[1], buf, sizeof buf)) > 0;) bytes.append(buf, static_cast<size_t>(n));
  });
  EXPECT_TRUE(out.send(type, id, head, body));
  out.shutdown();
  reader.join();
  ::close(p.fds[1]);
  return bytes;
}

TEST(Wire, FramesComeBackWholeHoweverTheBytesArrive) {
  const std::string big(300 * 1024, 'x');  // larger than one read's buffer
  std::string stream = frame_bytes(Msg::kCall, 7, json{{"what", "tool 'echo'"}}, R"({"text":"hi"})") +
                       frame_bytes(Msg::kCancel, 7, nullptr, "") + frame_bytes(Msg::kResult, 9, json{{"has_outcome", true}}, big);
  for (size_t chunk : {stream.size(), size_t{1}, size_t{7}, size_t{4096}}) {
    Pair p;
    Channel in(p.fds[0]);
    std::thread writer([&] {
      for (size_t at = 0; at < stream.size(); at += chunk) {
        const size_t n = std::min(chunk, stream.size() - at);
        ASSERT_EQ(::write(p.fds[1], stream.data() + at, n), static_cast<ssize_t>(n));
      }
      ::close(p.fds[1]);
    });
    Frame f;
    ASSERT_TRUE(in.read(f)) << chunk;
    EXPECT_EQ(f.type, Msg::kCall);
    EXPECT_EQ(f.id, 7u);
    EXPECT_EQ(f.head["what"], "tool 'echo'");
    EXPECT_EQ(f.body, R"({"text":"hi"})");
    ASSERT_TRUE(in.read(f)) << chunk;
    EXPECT_EQ(f.type, Msg::kCancel);
    EXPECT_TRUE(f.head.is_null());
    EXPECT_TRUE(f.body.empty());
    ASSERT_TRUE(in.read(f)) << chunk;
    EXPECT_EQ(f.type, Msg::kResult);
    EXPECT_EQ(f.id, 9u);
    EXPECT_EQ(f.body, big);
    auto end = in.read(f);  // the writer closed at a frame's end
    ASSERT_FALSE(end);
    EXPECT_EQ(end.error(), "closed");
    writer.join();
  }
}

TEST(Wire, ABrokenFrameIsAnErrorThatSaysHow) {
  const std::string frame = frame_bytes(Msg::kResult, 1, json{{"has_outcome", true}}, "{}");
  auto read_of = [](const std::string& bytes) {
    Pair p;
    Channel in(p.fds[0]);
    EXPECT_EQ(::write(p.fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(p.fds[1]);
    Frame f;
    auto st = in.read(f);
    return st ? std::string("ok") : st.error();
  };
  EXPECT_EQ(read_of(frame), "ok");
  EXPECT_EQ(read_of(frame.substr(0, frame.size() - 1)), "connection broken inside a frame");
  EXPECT_EQ(read_of(frame.substr(0, 3)), "connection broken inside a frame");
  std::string huge = frame;
  const uint32_t too_big = 0x7fffffff;
  std::memcpy(huge.data(), &too_big, 4);  // little-endian, as the protocol
  EXPECT_NE(read_of(huge).find("malformed frame"), std::string::npos);
  std::string bad_head = frame;
  bad_head[13] = '[';  // the head's first byte: no longer JSON
  EXPECT_EQ(read_of(bad_head), "malformed frame head");
}

}  // namespace
}  // namespace mcph::isolation
