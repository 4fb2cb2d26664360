// The store contract: every backend of store::StateStore passes the same cases. SQLite
// in a temporary folder; PostgreSQL 15 started by the test (tests/support/postgres.hpp),
// each case in a database of its own. Then what only a shared server can show: two stores
// (two replicas) racing on put_if and leases, migrations run by replicas starting at once,
// and a server that goes away and comes back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "store/keyring.hpp"
#include "store/state_store.hpp"
#include "postgres.hpp"
#include "protocol/request_state.hpp"
#include "process.hpp"
#include "stdio_host.hpp"

namespace mcph::store {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using Pairs = std::vector<std::pair<std::string, std::string>>;

// One server for the whole binary, started on first use, stopped at exit.
testing::PostgresServer& postgres() {
  static testing::PostgresServer server;
  return server;
}

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "store_contract.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    cfg_.backend = GetParam();
    if (cfg_.backend == "postgresql") {
      static int n = 0;
      cfg_.url = postgres().url("contract_" + std::to_string(::getpid()) + "_" + std::to_string(++n));
    }
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Another handle on the same store: another replica.
  std::unique_ptr<StateStore> open_store() {
    auto store = StateStore::open(cfg_, (root_ / "state").string());
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

  static std::optional<std::string> get(StateStore& store, std::string_view ns, std::string_view key) {
    auto value = store.get(ns, key);
    EXPECT_TRUE(value.ok()) << (value.ok() ? "" : value.error());
    return value.ok() ? *value : std::nullopt;
  }

  static bool put_if(StateStore& store, std::string_view key, std::optional<std::string_view> expected,
                     std::optional<std::string_view> value) {
    auto r = store.put_if("ns", key, expected, value);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() && *r;
  }

  static bool acquire(StateStore& store, std::string_view name, std::string_view owner, std::chrono::milliseconds ttl) {
    auto r = store.acquire("ns", name, owner, ttl);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() && *r;
  }

  fs::path root_;
  config::StoreConfig cfg_;
};

TEST_P(StoreContract, PutGetOverwriteErase) {
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

TEST_P(StoreContract, EmptyValueIsStoredNotNull) {
  auto store = open_store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("ns", "empty", std::string_view()).ok());
  EXPECT_EQ(get(*store, "ns", "empty"), std::string());
  ASSERT_TRUE(store->put("ns", std::string_view(), "empty key").ok());
  EXPECT_EQ(get(*store, "ns", ""), "empty key");
}

TEST_P(StoreContract, NamespacesAreIsolated) {
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

TEST_P(StoreContract, BinaryValuesKeepEveryByte) {
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

TEST_P(StoreContract, ListByPrefixInKeyOrder) {
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

TEST_P(StoreContract, ListPrefixEndingInFFBytes) {
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

TEST_P(StoreContract, ListStopsWhenCallbackReturnsFalse) {
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

TEST_P(StoreContract, ConcurrentPutsAllLand) {
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

TEST_P(StoreContract, ReopenSeesData) {
  {
    auto store = open_store();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->put("ns", "persist", "yes").ok());
  }
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_EQ(get(*store, "ns", "persist"), "yes");
}

TEST_P(StoreContract, PutIfCompareAndSet) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_TRUE(put_if(*store, "k", std::nullopt, "v1")) << "create when absent";
  EXPECT_FALSE(put_if(*store, "k", std::nullopt, "other")) << "not when present";
  EXPECT_EQ(get(*store, "ns", "k"), "v1");
  EXPECT_FALSE(put_if(*store, "k", "wrong", "v2"));
  EXPECT_EQ(get(*store, "ns", "k"), "v1");
  EXPECT_TRUE(put_if(*store, "k", "v1", "v2"));
  EXPECT_EQ(get(*store, "ns", "k"), "v2");
  EXPECT_FALSE(put_if(*store, "k", "v1", std::nullopt)) << "erase only the expected value";
  EXPECT_TRUE(put_if(*store, "k", "v2", std::nullopt));
  EXPECT_EQ(get(*store, "ns", "k"), std::nullopt);
  EXPECT_TRUE(put_if(*store, "k", std::nullopt, std::nullopt)) << "absent, as expected";
  std::string binary("\0\xFF\0", 3);
  EXPECT_TRUE(put_if(*store, "b", std::nullopt, binary));
  EXPECT_TRUE(put_if(*store, "b", binary, std::string_view()));
  EXPECT_EQ(get(*store, "ns", "b"), std::string());
  EXPECT_TRUE(put_if(*store, "b", std::string_view(), "x")) << "an empty value is a value";
}

// Two replicas increment one counter with compare-and-set: no increment is lost.
TEST_P(StoreContract, PutIfRacesLoseNothing) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(put_if(*a, "counter", std::nullopt, "0"));
  constexpr int kEach = 100;
  std::atomic<int> conflicts{0};
  auto worker = [&](StateStore& s) {
    for (int done = 0; done < kEach;) {
      auto cur = s.get("ns", "counter");
      ASSERT_TRUE(cur.ok() && cur->has_value());
      const std::string next = std::to_string(std::stoi(**cur) + 1);
      auto r = s.put_if("ns", "counter", **cur, next);
      ASSERT_TRUE(r.ok()) << r.error();
      if (*r) ++done; else ++conflicts;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker, std::ref(i % 2 ? *a : *b));
  for (auto& t : threads) t.join();
  EXPECT_EQ(get(*a, "ns", "counter"), std::to_string(4 * kEach));
  RecordProperty("conflicts", conflicts.load());
}

TEST_P(StoreContract, LeasesHaveOneOwnerAndExpire) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(acquire(*a, "poll", "replica-a", 400ms));
  EXPECT_FALSE(acquire(*b, "poll", "replica-b", 400ms)) << "held by a";
  EXPECT_TRUE(acquire(*a, "poll", "replica-a", 400ms)) << "a renews";
  EXPECT_TRUE(acquire(*b, "other", "replica-b", 400ms)) << "leases are independent";
  EXPECT_TRUE(b->release("ns", "poll", "replica-b").ok()) << "releasing another's lease does nothing";
  EXPECT_FALSE(acquire(*b, "poll", "replica-b", 400ms));
  std::this_thread::sleep_for(600ms);  // a stopped renewing (it died)
  EXPECT_TRUE(acquire(*b, "poll", "replica-b", 10s)) << "b takes over after the lease time";
  EXPECT_FALSE(acquire(*a, "poll", "replica-a", 10s));
  ASSERT_TRUE(b->release("ns", "poll", "replica-b").ok());
  EXPECT_TRUE(acquire(*a, "poll", "replica-a", 10s)) << "free at once after release";
  EXPECT_FALSE(acquire(*a, "poll", "replica-a-other", 10s));
  auto other = a->acquire("other-ns", "poll", "x", 10s);
  EXPECT_TRUE(other.ok() && *other) << "namespaces apart";
}

// Many contenders, one lease: exactly one wins each round.
TEST_P(StoreContract, LeaseRaceHasOneWinner) {
  std::vector<std::unique_ptr<StateStore>> replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(open_store());
  for (auto& r : replicas) ASSERT_TRUE(r);
  for (int round = 0; round < 10; ++round) {
    std::atomic<int> winners{0};
    std::vector<std::thread> threads;
    const std::string name = "round-" + std::to_string(round);
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        auto r = replicas[t % 3]->acquire("ns", name, "owner-" + std::to_string(t), 10s);
        ASSERT_TRUE(r.ok()) << r.error();
        if (*r) ++winners;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1) << name;
  }
}

// Keys replicas share (sealing, signing): drawn once, the same for every replica; a
// requestState sealed under it by one replica opens on another.
TEST_P(StoreContract, SharedKeysAreDrawnOnceForAllReplicas) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_TRUE(a && b);
  std::vector<std::string> keys(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto k = shared_key(i % 2 ? *a : *b, "request_state");
      ASSERT_TRUE(k.ok()) << k.error();
      keys[i] = *k;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(keys[0].size(), 32u);
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  auto other = shared_key(*a, "oauth_signing.key");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, keys[0]) << "each name its own key";

  protocol::RequestStateSealer on_a(keys[0]), on_b(*shared_key(*b, "request_state")), elsewhere;
  const std::string token = on_a.seal("plugin state", "tools/call x", std::chrono::seconds(60));
  auto opened = on_b.open(token, "tools/call x");
  ASSERT_TRUE(opened.ok()) << opened.error();
  EXPECT_EQ(*opened, "plugin state");
  EXPECT_FALSE(elsewhere.open(token, "tools/call x").ok()) << "a host with its own key refuses it";
}

// A rotation made through one store reaches the keyrings on every replica: they seal with
// the new key, still open what the previous one sealed, and no longer what was sealed two
// rotations back.
TEST_P(StoreContract, KeyringsFollowARotation) {
  auto a = open_store();
  // SQLite's events stay in their process (one host per database): there, b is a.
  auto b = GetParam() == "postgresql" ? open_store() : nullptr;
  StateStore* sb = b ? b.get() : a.get();
  ASSERT_TRUE(a);
  auto ring_a = Keyring::shared(*a, "request_state");
  auto ring_b = Keyring::shared(*sb, "request_state");
  ASSERT_TRUE(ring_a.ok() && ring_b.ok());
  const protocol::RequestStateSealer on_a(*ring_a), on_b(*ring_b);
  const std::string before = on_a.seal("s", "x", std::chrono::seconds(60));
  const std::string first = (*ring_b)->current();
  auto rotated = rotate_shared_key(*a, "request_state");
  ASSERT_TRUE(rotated.ok()) << rotated.error();
  EXPECT_EQ(rotated->front(), first);
  const auto deadline = std::chrono::steady_clock::now() + 3s;  // b hears it (NOTIFY) or at once (one process)
  while ((*ring_b)->current() == first && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_NE((*ring_b)->current(), first) << "b did not follow the rotation";
  EXPECT_EQ((*ring_b)->all().size(), 2u);
  EXPECT_TRUE(on_b.open(before, "x").ok()) << "sealed before one rotation";
  const std::string after = on_b.seal("t", "x", std::chrono::seconds(60));
  EXPECT_TRUE(on_a.open(after, "x").ok());
  ASSERT_TRUE(rotate_shared_key(*sb, "request_state").ok());
  const auto deadline2 = std::chrono::steady_clock::now() + 3s;
  while (on_a.open(before, "x").ok() && std::chrono::steady_clock::now() < deadline2) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(on_a.open(before, "x").ok()) << "two rotations back";
  EXPECT_TRUE(on_a.open(after, "x").ok()) << "one rotation back";
}

// What a listener heard, to wait on from a test.
class Heard {
 public:
  StateStore::EventFn fn() {
    return [this](std::string_view topic, std::string_view body) {
      std::lock_guard lock(mutex_);
      events_.emplace_back(std::string(topic), std::string(body));
      cv_.notify_all();
    };
  }
  // Waits until `n` events arrived (or `within` passed); what arrived.
  Pairs wait(size_t n, std::chrono::milliseconds within = 3000ms) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, within, [&] { return events_.size() >= n; });
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  Pairs events_;
};

// Events reach this process's listeners before publish() returns, once each; a listener
// that unsubscribed hears no more; oversized and multi-line topics are refused.
TEST_P(StoreContract, EventsReachListenersAtOnce) {
  auto store = open_store();
  ASSERT_TRUE(store);
  Heard one, two;
  auto s1 = store->subscribe(one.fn());
  auto s2 = store->subscribe(two.fn());
  ASSERT_TRUE(store->publish("oauth.revoked", "grant-1").ok());
  EXPECT_EQ(one.wait(1, 0ms), (Pairs{{"oauth.revoked", "grant-1"}})) << "delivered before publish returns";
  EXPECT_EQ(two.wait(1, 0ms), (Pairs{{"oauth.revoked", "grant-1"}}));
  s2.reset();
  ASSERT_TRUE(store->publish("resource.updated", "file:///a").ok());
  EXPECT_EQ(one.wait(2, 0ms).size(), 2u);
  std::this_thread::sleep_for(200ms);  // a NOTIFY echo, if any, would arrive meanwhile
  EXPECT_EQ(one.wait(3, 0ms).size(), 2u) << "its own events are not heard twice";
  EXPECT_EQ(two.wait(2, 0ms).size(), 1u) << "unsubscribed";
  EXPECT_FALSE(store->publish("t", std::string(StateStore::kMaxEvent, 'x')).ok());
  EXPECT_FALSE(store->publish("two\nlines", "").ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// ---- PostgreSQL only --------------------------------------------------------------------

class PostgresStore : public ::testing::Test {
 protected:
  config::StoreConfig cfg(const std::string& db) {
    config::StoreConfig c;
    c.backend = "postgresql";
    c.url = postgres().url(db);
    return c;
  }
  static std::unique_ptr<StateStore> open(const config::StoreConfig& c) {
    auto s = StateStore::open(c, "/nonexistent");
    EXPECT_TRUE(s.ok());
    return s.ok() ? std::move(*s) : nullptr;
  }
};

// Replicas that start at once against an empty database each migrate it, or find it
// migrated: none fails, the schema is there once.
TEST_F(PostgresStore, ReplicasStartingAtOnceMigrateOnce) {
  const auto c = cfg("migrate_" + std::to_string(::getpid()));
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < 6; ++i) stores.push_back(open(c));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (auto& s : stores) {
    threads.emplace_back([&] {
      if (auto st = s->check(); !st) {
        ADD_FAILURE() << st.error();
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(stores[0]->put("ns", "k", "v").ok());
  auto got = stores[5]->get("ns", "k");
  ASSERT_TRUE(got.ok()) << got.error();
  EXPECT_EQ(*got, "v");
}

TEST_F(PostgresStore, LocationAndErrorsNeverShowThePassword) {
  auto c = cfg("postgres");
  auto store = open(c);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->backend(), "postgresql");
  EXPECT_EQ(store->location(), "postgresql://postgres@127.0.0.1:" + std::to_string(postgres().port()) + "/postgres");
  c.url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres";  // nothing listens on port 1
  auto down = open(c);
  ASSERT_TRUE(down);
  auto st = down->check();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().find("cannot reach postgresql://postgres@127.0.0.1:1/postgres"), std::string::npos) << st.error();
  EXPECT_EQ(st.error().find("s3cret-pw"), std::string::npos) << st.error();
}

// The server stops under load: calls fail fast with a clear error (no hang, no crash); it
// comes back and the same store object serves again, with every acknowledged write kept.
TEST_F(PostgresStore, ServerDownFailsFastThenRecovers) {
  auto store = open(cfg("outage_" + std::to_string(::getpid())));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->put("ns", "before", "kept").ok());
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::atomic<long long> slowest_failure_ms{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const auto start = std::chrono::steady_clock::now();
        auto st = store->put("ns", "t" + std::to_string(t), std::to_string(i));
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
        if (st.ok()) {
          ++ok;
        } else {
          ++failed;
          EXPECT_NE(st.error().find("store"), std::string::npos) << st.error();
          long long prev = slowest_failure_ms;
          while (ms > prev && !slowest_failure_ms.compare_exchange_weak(prev, ms)) {
          }
        }
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  postgres().stop();
  std::this_thread::sleep_for(1500ms);
  auto down = store->get("ns", "before");
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.error().find("store unavailable"), std::string::npos) << down.error();
  const int ok_while_down = ok.load();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ok.load(), ok_while_down) << "nothing succeeds while the server is down";
  postgres().start();
  // Recovery on its own, within the backoff (at most 5 s).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::optional<std::string> back;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = store->get("ns", "before");
    if (r.ok()) {
      back = *r;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_EQ(back, "kept");
  EXPECT_GT(failed.load(), 0);
  EXPECT_LT(slowest_failure_ms.load(), 1000) << "a call fails fast while the server is down";
  EXPECT_GE(store->errors(), static_cast<uint64_t>(failed.load()) + 1);  // mcp_host_store_errors_total
  EXPECT_TRUE(store->put("ns", "after", "yes").ok());
}

// Events cross replicas within milliseconds; a replica whose listening connection broke
// (the server restarted) hears store.resync once it is back, then events again.
TEST_F(PostgresStore, EventsReachOtherReplicasAndResyncAfterOutage) {
  const auto c = cfg("events_" + std::to_string(::getpid()));
  auto a = open(c), b = open(c);
  ASSERT_TRUE(a && b);
  Heard on_b;
  auto sub = b->subscribe(on_b.fn());
  // The listener connects in the background: publish until it hears.
  const auto start = std::chrono::steady_clock::now();
  while (on_b.wait(1, 100ms).empty() && std::chrono::steady_clock::now() - start < 10s) {
    ASSERT_TRUE(a->publish("hello", "").ok());
  }
  ASSERT_FALSE(on_b.wait(1, 0ms).empty()) << "b never heard a";
  std::this_thread::sleep_for(200ms);  // a late "hello" lands before counting
  const size_t before = on_b.wait(1, 0ms).size();
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(a->publish("oauth.revoked", "grant-7").ok());
  auto heard = on_b.wait(before + 1, 1000ms);
  ASSERT_EQ(heard.size(), before + 1);
  EXPECT_EQ(heard.back(), (Pairs::value_type{"oauth.revoked", "grant-7"}));
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 1000ms);

  postgres().stop();
  postgres().start();
  auto after = on_b.wait(before + 2, 15000ms);
  ASSERT_EQ(after.size(), before + 2);
  EXPECT_EQ(after.back().first, StateStore::kResync);
  const auto back = std::chrono::steady_clock::now();
  while (on_b.wait(before + 3, 100ms).size() < before + 3 && std::chrono::steady_clock::now() - back < 10s) {
    (void)a->publish("again", "");
  }
  EXPECT_EQ(on_b.wait(before + 3, 0ms).at(before + 2).first, "again");
}

// Two hosts (replicas, each with its own state_dir) on one PostgreSQL database: what a
// plugin stores through one is what the other reads. check-config names the store without
// its password.
TEST_F(PostgresStore, ReplicasShareTheirPluginsState) {
  const std::string url = postgres().url("hosts_" + std::to_string(::getpid()));
  const std::string top = "store: { backend: postgresql, url: \"" + url + "\" }\n";
  const std::string plugins = "  - { name: svc, library: test-services }\n";
  // b runs the same instance in a child process: its leases must still be b's.
  testing::StdioHost a(plugins, "", top), b("  - { name: svc, library: test-services, isolation: process }\n", "", top);
  auto ok = [](testing::StdioHost& h, int id, const nlohmann::json& args) {
    auto r = h.ask(testing::call(id, "state", args));
    EXPECT_TRUE(r["result"]["structuredContent"].contains("ok")) << r << h.p().stderr_text();
    return r["result"]["structuredContent"]["ok"] == true;
  };
  EXPECT_TRUE(ok(a, 1, {{"op", "put"}, {"key", "shared/k"}, {"value", "from a"}}));
  auto got = b.ask(testing::call(2, "state", {{"op", "get"}, {"key", "shared/k"}}));
  EXPECT_NE(got.dump().find("from a"), std::string::npos) << got << b.p().stderr_text();
  // Compare-and-set across replicas: b's write wins only with what it read.
  EXPECT_FALSE(ok(b, 3, {{"op", "put_if"}, {"key", "shared/k"}, {"expected", "stale"}, {"value", "from b"}}));
  EXPECT_TRUE(ok(b, 4, {{"op", "put_if"}, {"key", "shared/k"}, {"expected", "from a"}, {"value", "from b"}}));
  EXPECT_FALSE(ok(a, 5, {{"op", "put_if"}, {"key", "shared/k"}, {"expected", "from a"}, {"value", "again"}}));
  EXPECT_TRUE(ok(a, 6, {{"op", "put_if"}, {"key", "new"}, {"expected", nullptr}, {"value", "created"}}));
  // One lease, two replicas: a holds it; b may not until a releases it.
  EXPECT_TRUE(ok(a, 7, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}}));
  EXPECT_FALSE(ok(b, 8, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}}));
  EXPECT_TRUE(ok(a, 9, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}})) << "a renews";
  EXPECT_TRUE(ok(b, 10, {{"op", "lease_release"}, {"key", "poller"}}));
  EXPECT_FALSE(ok(b, 11, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}})) << "b cannot release a's lease";
  EXPECT_TRUE(ok(a, 12, {{"op", "lease_release"}, {"key", "poller"}}));
  EXPECT_TRUE(ok(b, 13, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}}));
  EXPECT_FALSE(ok(a, 14, {{"op", "lease_acquire"}, {"key", "poller"}, {"ttl_ms", 30000}}));

  testing::TempDir dir;
  const std::string cfg = dir.str() + "/c.yaml";
  std::ofstream(cfg) << top << testing::config_yaml(dir.str() + "/state", plugins);
  testing::Process check({MCPH_BINARY, "check-config", "--config", cfg});
  ASSERT_EQ(check.wait(std::chrono::seconds(30)), 0) << check.stderr_text();
  std::string out;
  while (auto line = check.read_line(std::chrono::milliseconds(200))) out += *line + "\n";
  EXPECT_NE(out.find("ok  store            postgresql at postgresql://postgres@127.0.0.1:"), std::string::npos) << out;
  EXPECT_EQ((out + check.stderr_text()).find("s3cret-pw"), std::string::npos);
}

// The database is down when the host starts: it starts anyway, a plugin's state call
// fails (and says why in the log) without hanging, and works once the database is back.
TEST_F(PostgresStore, HostStartsWhileTheDatabaseIsDownAndRecovers) {
  const std::string url = postgres().url("late_" + std::to_string(::getpid()));
  postgres().stop();
  const std::string top = "store: { backend: postgresql, url: \"" + url + "\" }\n";
  testing::StdioHost host("  - { name: svc, library: test-services }\n", "", top);
  const auto start = std::chrono::steady_clock::now();
  auto put = host.ask(testing::call(1, "state", {{"op", "put"}, {"key", "k"}, {"value", "v"}}));
  EXPECT_EQ(put["result"]["structuredContent"]["ok"], false) << put;
  EXPECT_LT(testing::seconds_since(start), 2.0);
  postgres().start();
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    auto r = host.ask(testing::call(2 + i, "state", {{"op", "put"}, {"key", "k"}, {"value", "v"}}));
    ok = r["result"]["structuredContent"]["ok"] == true;
    if (!ok) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ok) << host.p().stderr_text();
  EXPECT_NE(host.p().stderr_text().find("store unavailable"), std::string::npos);
  EXPECT_EQ(host.p().stderr_text().find("s3cret-pw"), std::string::npos);
}

}  // namespace
}  // namespace mcph::store
