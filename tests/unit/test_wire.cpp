// The framed protocol between the host and an isolated plugin's process (isolation/wire):
// frames come back whole however the socket splits or joins them, a frame larger than the
// read buffer grows it, a malformed or cut frame is an error that says so, and held frames
// wait for their flush with every later frame behind them.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "isolation/wire.hpp"
#include "plugins/instance.hpp"

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
    EXPECT_EQ(f.head_text, R"({"what":"tool 'echo'"})");  // a call's head is left as written
    EXPECT_TRUE(f.head.is_null());
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

TEST(Wire, HeldFramesWaitForTheFlushAndKeepTheirOrder) {
  Pair p;
  Channel out(p.fds[0]);
  Channel in(p.fds[1]);
  ASSERT_TRUE(out.send(Msg::kCall, 1, json{{"n", 1}}, "one", /*hold=*/true));
  ASSERT_TRUE(out.send(Msg::kCall, 2, nullptr, "two", /*hold=*/true));
  // Not held, but sent while others wait: it queues behind them (a cancel never overtakes
  // the call it cancels).
  ASSERT_TRUE(out.send(Msg::kCancel, 1));
  EXPECT_FALSE(in.readable_within(std::chrono::milliseconds(20)));  // nothing went out yet
  ASSERT_TRUE(out.flush_held());
  Frame f;
  ASSERT_TRUE(in.read(f));
  EXPECT_EQ(f.type, Msg::kCall);
  EXPECT_EQ(f.id, 1u);
  EXPECT_EQ(f.head_text, R"({"n":1})");
  EXPECT_EQ(f.body, "one");
  ASSERT_TRUE(in.read(f));
  EXPECT_EQ(f.id, 2u);
  EXPECT_TRUE(f.head.is_null());
  EXPECT_EQ(f.body, "two");
  ASSERT_TRUE(in.read(f));
  EXPECT_EQ(f.type, Msg::kCancel);
  EXPECT_EQ(f.id, 1u);
  // Nothing waits any more: the next frame goes at once.
  ASSERT_TRUE(out.send(Msg::kCancel, 2));
  ASSERT_TRUE(in.readable_within(std::chrono::seconds(5)));
  ASSERT_TRUE(in.read(f));
  EXPECT_EQ(f.id, 2u);
  EXPECT_TRUE(out.flush_held());  // with nothing held: nothing to do
}

// How an isolated instance's reader sends the calls it starts while it finishes others:
// held in a plugins::DoneBatch, flushed once when the outermost batch ends.
TEST(Wire, FramesHeldInADoneBatchGoOutWhenItEnds) {
  Pair p;
  auto out = std::make_shared<Channel>(p.fds[0]);
  Channel in(p.fds[1]);
  int flushes = 0;
  struct Owner {
    std::shared_ptr<Channel> ch;
    int* flushes;
  };
  auto owner = std::make_shared<Owner>(Owner{out, &flushes});
  auto flush = [](void* o) {
    auto* self = static_cast<Owner*>(o);
    ++*self->flushes;
    self->ch->flush_held();
  };
  EXPECT_FALSE(plugins::DoneBatch::defer(owner, flush));  // no batch open: send now
  {
    plugins::DoneBatch batch;
    for (uint32_t id = 1; id <= 3; ++id) {
      {
        plugins::DoneBatch nested;  // one with the outer batch
        ASSERT_TRUE(plugins::DoneBatch::defer(owner, flush));
      }
      ASSERT_TRUE(out->send(Msg::kCall, id, nullptr, "{}", /*hold=*/true));
    }
    EXPECT_FALSE(in.readable_within(std::chrono::milliseconds(20)));
    EXPECT_EQ(flushes, 0);
  }
  EXPECT_EQ(flushes, 1);  // once for its owner, however often it asked
  Frame f;
  for (uint32_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(in.read(f));
    EXPECT_EQ(f.id, id);
  }
  EXPECT_FALSE(plugins::DoneBatch::defer(owner, flush));  // the batch is over
}

// What a thread that is about to wait (or run a handler) calls: what it held goes out, and
// the batch stays open for what comes after.
TEST(Wire, AFlushedDoneBatchSendsWhatItHeldAndStaysOpen) {
  Pair p;
  auto out = std::make_shared<Channel>(p.fds[0]);
  Channel in(p.fds[1]);
  auto flush = [](void* o) { static_cast<Channel*>(o)->flush_held(); };
  Frame f;
  plugins::DoneBatch::flush();  // none open: nothing to do
  {
    plugins::DoneBatch batch;
    ASSERT_TRUE(plugins::DoneBatch::defer(out, flush));
    ASSERT_TRUE(out->send(Msg::kCall, 1, nullptr, "{}", /*hold=*/true));
    EXPECT_FALSE(in.readable_within(std::chrono::milliseconds(20)));
    plugins::DoneBatch::flush();
    ASSERT_TRUE(in.read(f));
    EXPECT_EQ(f.id, 1u);
    ASSERT_TRUE(plugins::DoneBatch::open());
    ASSERT_TRUE(plugins::DoneBatch::defer(out, flush));  // asked again: it had been run
    ASSERT_TRUE(out->send(Msg::kCall, 2, nullptr, "{}", /*hold=*/true));
    EXPECT_FALSE(in.readable_within(std::chrono::milliseconds(20)));
  }
  ASSERT_TRUE(in.read(f));
  EXPECT_EQ(f.id, 2u);
}

}  // namespace
}  // namespace mcph::isolation
