// MCP tasks' records (host/tasks/task_table.cpp) on the SQLite store: bound to the user
// who made them, moved by compare-and-set (no update lost, a terminal task never changes),
// bounded per user and in size, removed once expired.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "host_fixture.hpp"
#include "tasks/task_table.hpp"

namespace mcph::tasks {
namespace {

class TaskTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = store::StateStore::open(dir.str() + "/state");
    ASSERT_TRUE(st) << st.error();
    store = std::move(*st);
  }
  testing::TempDir dir;
  std::unique_ptr<store::StateStore> store;
};

TEST_F(TaskTableTest, ATaskIsItsMakersOnly) {
  TaskTable table(*store);
  auto t = table.create("alice", "slow_count", "replica-1");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->id.size(), 43u) << "32 random bytes";
  EXPECT_EQ(t->status, Status::kWorking);
  auto mine = table.get(t->id, "alice");
  ASSERT_TRUE(mine && mine->has_value());
  EXPECT_EQ((*mine)->tool, "slow_count");
  auto theirs = table.get(t->id, "bob");
  ASSERT_TRUE(theirs);
  EXPECT_FALSE(theirs->has_value()) << "another user's task does not exist";
  EXPECT_FALSE(table.get("no-such-task", "alice")->has_value());
  EXPECT_EQ(table.list("alice")->size(), 1u);
  EXPECT_TRUE(table.list("bob")->empty());
}

TEST_F(TaskTableTest, TerminalStatesNeverChange) {
  TaskTable table(*store);
  const std::string id = table.create("alice", "t", "")->id;
  auto asked = table.update(id, [](Task& t) {
    t.status = Status::kInputRequired;
    t.input_requests = {{"confirm", {{"method", "elicitation/create"}}}};
    return true;
  });
  ASSERT_TRUE(asked);
  EXPECT_EQ(asked->status, Status::kInputRequired);
  auto done = table.complete(id, {{"content", {{{"type", "text"}, {"text", "ok"}}}}});
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, Status::kCompleted);
  EXPECT_TRUE(done->input_requests.is_null());
  auto later = table.fail(id, {{"code", -32603}, {"message", "too late"}});
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, Status::kCompleted) << "completed stays completed";
  EXPECT_EQ((*table.get(id, "alice"))->result["content"][0]["text"], "ok");
}

TEST_F(TaskTableTest, ConcurrentUpdatesLoseNothing) {
  TaskTable table(*store);
  const std::string id = table.create("alice", "t", "")->id;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 10; ++k) {
        auto r = table.update(id, [](Task& t) {
          t.status_message += "x";
          return true;
        });
        EXPECT_TRUE(r) << r.error();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*table.get(id, "alice"))->status_message.size(), 60u);
}

TEST_F(TaskTableTest, BoundedPerUserAndInResultSize) {
  TaskTable::Limits limits;
  limits.max_per_user = 2;
  limits.max_result_bytes = 100;
  TaskTable table(*store, limits);
  const std::string a = table.create("alice", "t", "")->id;
  ASSERT_TRUE(table.create("alice", "t", ""));
  auto third = table.create("alice", "t", "");
  ASSERT_FALSE(third);
  EXPECT_NE(third.error().find("tasks.max_per_user"), std::string::npos) << third.error();
  EXPECT_TRUE(table.create("bob", "t", "")) << "a bound per user";
  auto big = table.complete(a, {{"content", {{{"type", "text"}, {"text", std::string(500, 'x')}}}}});
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, Status::kFailed);
  EXPECT_NE(big->error["message"].get<std::string>().find("over the bound"), std::string::npos);
  EXPECT_TRUE(table.create("alice", "t", "")) << "a finished task frees its place";
}

TEST_F(TaskTableTest, ExpiredTasksArePurged) {
  TaskTable::Limits limits;
  limits.ttl = std::chrono::milliseconds(1);
  TaskTable table(*store, limits);
  const std::string id = table.create("alice", "t", "")->id;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(table.get(id, "alice")->has_value()) << "expired: gone for the client at once";
  EXPECT_EQ(table.purge(), 1u);
  size_t rows = 0;
  (void)store->list("tasks", "", [&](std::string_view, std::string_view) { return ++rows > 0; });
  EXPECT_EQ(rows, 0u) << "the task and its index row";
}

TEST(TaskWire, TimesAreRfc3339Utc) {
  EXPECT_EQ(iso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601(1764844800123), "2025-12-04T10:40:00.123Z");
  for (auto s : {Status::kWorking, Status::kInputRequired, Status::kCompleted, Status::kFailed, Status::kCancelled}) {
    EXPECT_EQ(parse_status(name(s)), s);
  }
  EXPECT_FALSE(parse_status("done"));
}

}  // namespace
}  // namespace mcph::tasks
