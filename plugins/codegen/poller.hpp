// codegen plugin: the background poller. ONE thread per plugin instance (not one per task,
// the old server's design, §A.4/§D.5), started by the constructor and stopped and joined by
// the destructor. It polls every non-terminal task on its own schedule (interval with
// backoff, timed_out tasks slowly), within the org-wide GET budget, queues finished
// children for their orchestrators and delivers those batches, and prunes old records.
// After a restart (also after kill -9) it picks up every non-terminal task from the state
// store and reconciles unfinished orchestrator deliveries before sending anything new.
// With several replicas on one store, only the one holding the lease "poller" polls and
// delivers (see lead() in poller.cpp).
// A signed-in user's tasks poll with that user's token (host.user_credential) and nobody
// else's: once they are revoked their tasks are paused (kept, no request, looked at again
// every poll_max_interval_ms) until they sign in again.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "api.hpp"
#include "orchestrator.hpp"
#include "settings.hpp"
#include "tasks.hpp"

namespace codegen {

class Poller {
 public:
  Poller(const mcph::sdk::Host& host, const Settings& settings, Api& api, const ConfigStore& config,
         const TaskStore& store);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Starts polling a task that a handler has just written to the store.
  void track(const TaskRecord& t);
  // `principal` just made a call, so is signed in: their paused tasks are due now.
  void signed_in(const std::string& principal);

 private:
  void run() noexcept;
  bool lead(int64_t now);
  bool renew(int64_t now);
  void rescan(int64_t now);
  void startup(int64_t now);
  void poll(const std::string& key);
  void save(const std::string& key, const TaskRecord& t);
  void finish(const std::string& key, TaskRecord& t, int64_t now);
  void prune(int64_t now);
  bool stopping();

  void report(const TaskRecord& t);
  const mcph::sdk::Host& host_;
  const Settings& settings_;
  Api& api_;
  const ConfigStore& config_;
  const TaskStore& store_;
  Orchestrators orch_;  // the poller thread's alone

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool poked_ = false;
  std::map<std::string, TaskRecord> tasks_;  // non-terminal tasks by state key (guarded)
  int64_t next_prune_ = 0;
  // The lease "poller" (see lead()); the poller thread's alone.
  static constexpr int64_t kRescanMs = 2000;
  bool leading_ = false;
  int64_t renew_at_ = 0;
  int64_t rescan_at_ = 0;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace codegen
