#include "services/state_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mcph::services {
namespace {
namespace fs = std::filesystem;

using Pairs = std::vector<std::pair<std::string, std::string>>;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "state_store_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "nested" / "state";
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<StateStore> open_store() {
    auto store = StateStore::open(dir_.string());
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error());
    return store.ok() ? std::move(*store) : nullptr;
  }

  static Pairs list_all(StateStore& store, std::string_view ns, std::string_view prefix) {
    Pairs out;
    auto status = store.list(ns, prefix, [&](std::string_view k, std::string_view v) {
      out.emplace_back(std::string(k), std::string(v));
      return true;
    });
    EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error());
    return out;
  }

  static std::optional<std::string> get(StateStore& store, std::string_view ns,
                                        std::string_view key) {
    auto value = store.get(ns, key);
    EXPECT_TRUE(value.ok()) << (value.ok() ? "" : value.error());
    return value.ok() ? *value : std::nullopt;
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(StateStoreTest, PutGetOverwriteErase) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(get(*store, "ns", "k"), std::nullopt);

  ASSERT_TRUE(store->put("ns", "k", "v1").ok());
  EXPECT_EQ(get(*store, "ns", "k"), "v1");
  ASSERT_TRUE(store->put("ns", "k", "v2").ok());
  EXPECT_EQ(get(*store, "ns", "k"), "v2");

  ASSERT_TRUE(store->erase("ns", "k").ok());
  EXPECT_EQ(get(*store, "ns", "k"), std::nullopt);
  EXPECT_TRUE(store->erase("ns", "k").ok()) << "erasing a missing key is not an error";
}

TEST_F(StateStoreTest, EmptyValueIsStoredNotNull) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("ns", "empty", std::string_view()).ok());
  EXPECT_EQ(get(*store, "ns", "empty"), std::string());
  ASSERT_TRUE(store->put("ns", std::string_view(), "empty key").ok());
  EXPECT_EQ(get(*store, "ns", ""), "empty key");
}

TEST_F(StateStoreTest, NamespacesAreIsolated) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("a", "k", "from a").ok());
  ASSERT_TRUE(store->put("b", "k", "from b").ok());
  EXPECT_EQ(get(*store, "a", "k"), "from a");
  EXPECT_EQ(get(*store, "b", "k"), "from b");
  EXPECT_EQ(get(*store, "c", "k"), std::nullopt);

  ASSERT_TRUE(store->erase("a", "k").ok());
  EXPECT_EQ(get(*store, "b", "k"), "from b");
  EXPECT_EQ(list_all(*store, "b", ""), (Pairs{{"k", "from b"}}));
  EXPECT_TRUE(list_all(*store, "a", "").empty());
}

TEST_F(StateStoreTest, BinaryValuesKeepEveryByte) {
  auto store = open_store();
  ASSERT_TRUE(store);
  std::string value("a\0b\0\0c", 6);
  for (int byte = 0; byte < 256; ++byte) value.push_back(static_cast<char>(byte));
  ASSERT_TRUE(store->put("ns", "bin", value).ok());
  auto got = get(*store, "ns", "bin");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size(), value.size());
  EXPECT_EQ(*got, value);
  EXPECT_EQ(list_all(*store, "ns", "b"), (Pairs{{"bin", value}}));
}

TEST_F(StateStoreTest, ListByPrefixInKeyOrder) {
  auto store = open_store();
  ASSERT_TRUE(store);
  for (const char* key : {"user/2", "user/10", "user/1", "user0", "user", "usea", "other"}) {
    ASSERT_TRUE(store->put("ns", key, std::string("v:") + key).ok());
  }
  EXPECT_EQ(list_all(*store, "ns", "user/"),
            (Pairs{{"user/1", "v:user/1"}, {"user/10", "v:user/10"}, {"user/2", "v:user/2"}}));
  EXPECT_EQ(list_all(*store, "ns", "user"),
            (Pairs{{"user", "v:user"},
                   {"user/1", "v:user/1"},
                   {"user/10", "v:user/10"},
                   {"user/2", "v:user/2"},
                   {"user0", "v:user0"}}));
  EXPECT_EQ(list_all(*store, "ns", "").size(), 7u) << "empty prefix lists everything";
  EXPECT_EQ(list_all(*store, "ns", "").front().first, "other");
  EXPECT_TRUE(list_all(*store, "ns", "zzz").empty());
  EXPECT_TRUE(list_all(*store, "other-ns", "").empty());
}

TEST_F(StateStoreTest, ListPrefixEndingInFFBytes) {
  auto store = open_store();
  ASSERT_TRUE(store);
  const std::string a_ff = "a\xFF";
  const std::string keys[] = {"a",          "a\xFE",     a_ff,      a_ff + "\xFF",
                              a_ff + "x",   "b",         "\xFF",    "\xFF\xFF",
                              "\xFF\xFF\x01", "\xFE\xFF"};
  for (const auto& key : keys) ASSERT_TRUE(store->put("ns", key, "v").ok());

  auto keys_of = [&](std::string_view prefix) {
    std::vector<std::string> out;
    for (auto& [k, v] : list_all(*store, "ns", prefix)) out.push_back(k);
    return out;
  };
  // "a\xFF" has successor "b": "b" itself must not be listed.
  // Byte order: 'x' (0x78) sorts before 0xFF.
  EXPECT_EQ(keys_of(a_ff), (std::vector<std::string>{a_ff, a_ff + "x", a_ff + "\xFF"}));
  // "a" has successor "b": everything from "a" up to but excluding "b".
  EXPECT_EQ(keys_of("a"),
            (std::vector<std::string>{"a", "a\xFE", a_ff, a_ff + "x", a_ff + "\xFF"}));
  // All-0xFF prefixes have no successor: the range is open-ended.
  EXPECT_EQ(keys_of("\xFF"), (std::vector<std::string>{"\xFF", "\xFF\xFF", "\xFF\xFF\x01"}));
  EXPECT_EQ(keys_of("\xFF\xFF"), (std::vector<std::string>{"\xFF\xFF", "\xFF\xFF\x01"}));
  EXPECT_EQ(keys_of("\xFE"), (std::vector<std::string>{"\xFE\xFF"}));
}

TEST_F(StateStoreTest, ListStopsWhenCallbackReturnsFalse) {
  auto store = open_store();
  ASSERT_TRUE(store);
  for (const char* key : {"k1", "k2", "k3"}) ASSERT_TRUE(store->put("ns", key, "v").ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(store
                  ->list("ns", "k",
                         [&](std::string_view k, std::string_view) {
                           seen.emplace_back(k);
                           return seen.size() < 2;
                         })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"k1", "k2"}));
  // The cached statement was reset: the store is still usable for reads and writes.
  ASSERT_TRUE(store->put("ns", "k4", "v").ok());
  EXPECT_EQ(list_all(*store, "ns", "k").size(), 4u);
}

TEST_F(StateStoreTest, ReopenSeesData) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put("ns", "persist", "yes").ok());
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(get(*store, "ns", "persist"), "yes");
}

TEST_F(StateStoreTest, FilesArePrivate) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("ns", "k", "v").ok());

  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((dir_ / "state.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // SQLite gives the WAL the database file's mode.
  ASSERT_EQ(::stat((dir_ / "state.db-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(StateStoreTest, OpenFailureNamesThePath) {
  // A regular file where the folder should be.
  const fs::path blocker = root_ / "blocker";
  { std::ofstream(blocker.string()) << "x"; }
  auto store = StateStore::open((blocker / "state").string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().find(blocker.string()), std::string::npos) << store.error();
}

TEST_F(StateStoreTest, CorruptFileErrorNamesPathAndSqliteMessage) {
  fs::create_directories(dir_);
  {
    std::ofstream out((dir_ / "state.db").string(), std::ios::binary);
    out << std::string(4096, 'x');
  }
  auto store = StateStore::open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.error();  // the database opens on first use
  auto checked = (*store)->check();
  ASSERT_FALSE(checked.ok());
  EXPECT_NE(checked.error().find((dir_ / "state.db").string()), std::string::npos) << checked.error();
  EXPECT_NE(checked.error().find("file is not a database"), std::string::npos) << checked.error();
  // Every later use reports the same cause.
  auto got = (*store)->get("ns", "k");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().find("file is not a database"), std::string::npos) << got.error();
  EXPECT_FALSE((*store)->put("ns", "k", "v").ok());
}

TEST_F(StateStoreTest, ConcurrentPutsAllLand) {
  auto store = open_store();
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  constexpr int kPuts = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        if (!store->put("ns", key, key).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  size_t count = 0;
  ASSERT_TRUE(store
                  ->list("ns", "",
                         [&](std::string_view k, std::string_view v) {
                           EXPECT_EQ(k, v);
                           ++count;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(count, static_cast<size_t>(kThreads * kPuts));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(get(*store, "ns", "t" + std::to_string(t) + "/" + std::to_string(kPuts - 1)),
              "t" + std::to_string(t) + "/" + std::to_string(kPuts - 1));
  }
}

// A committed put must survive the process being SIGKILLed right after put() returned.
// The child only reports keys whose put() has returned; it then blocks until killed, so
// nothing (destructors, sqlite3_close, a final checkpoint) runs after the acknowledgement.
TEST_F(StateStoreTest, AcknowledgedWritesSurviveSigkill) {
  constexpr int kKeys = 50;
  int ack_pipe[2];
  ASSERT_EQ(::pipe(ack_pipe), 0);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ack_pipe[0]);
    auto store = StateStore::open(dir_.string());
    if (!store.ok()) ::_exit(2);
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "crash/" + std::to_string(i);
      if (!(*store)->put("ns", key, "value " + std::to_string(i)).ok()) ::_exit(3);
    }
    const char written[] = "written";
    if (::write(ack_pipe[1], written, sizeof written - 1) != sizeof written - 1) ::_exit(4);
    for (;;) ::pause();  // wait for SIGKILL with the connection still open
  }

  ::close(ack_pipe[1]);
  std::string ack;
  char buf[16];
  for (ssize_t n; (n = ::read(ack_pipe[0], buf, sizeof buf)) > 0;) {
    ack.append(buf, static_cast<size_t>(n));
    if (ack == "written") break;
  }
  ::close(ack_pipe[0]);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  // If the child failed it exited before writing the acknowledgement.
  ASSERT_EQ(ack, "written") << "child exit status " << WEXITSTATUS(wstatus);
  ASSERT_TRUE(WIFSIGNALED(wstatus));

  auto store = open_store();
  ASSERT_TRUE(store);
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_EQ(get(*store, "ns", "crash/" + std::to_string(i)), "value " + std::to_string(i));
  }
}

}  // namespace
}  // namespace mcph::services
