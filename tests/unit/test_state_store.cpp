// SQLite-only cases (files, permissions, corruption, kill -9); what every backend must do
// is in tests/integration/test_store_contract.cpp.
#include "store/state_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mcph::store {
namespace {
namespace fs = std::filesystem;

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

  static std::optional<std::string> get(StateStore& store, std::string_view ns,
                                        std::string_view key) {
    auto value = store.get(ns, key);
    EXPECT_TRUE(value.ok()) << (value.ok() ? "" : value.error());
    return value.ok() ? *value : std::nullopt;
  }

  fs::path root_;
  fs::path dir_;
};

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

// Also while the database opens: a metrics export reads the count from another thread.
TEST_F(StateStoreTest, AWorkingStoreCountsNoErrors) {
  auto store = StateStore::open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.error();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> most{0};
  std::thread watcher([&] {
    while (!done.load()) most = std::max(most.load(), (*store)->errors());
  });
  ASSERT_TRUE((*store)->put("ns", "k", "v").ok());
  done = true;
  watcher.join();
  ASSERT_TRUE((*store)->get("ns", "k").ok());
  EXPECT_EQ((*store)->errors(), 0u);
  EXPECT_EQ(most.load(), 0u);
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
  EXPECT_EQ((*store)->errors(), 3u);  // what mcp_host_store_errors_total counts
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
}  // namespace mcph::store
