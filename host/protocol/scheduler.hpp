// Where plugin calls wait and run: a bounded set of worker threads shared fairly between
// plugin instances, bounded queues, and deadlines that hold whether or not a handler returns.
//
//  - Each plugin instance is a lane with its own cap on calls running at once and its own
//    bounded queue: one slow or flooded instance cannot take every thread, and a call
//    beyond its lane's queue is refused at once (the engine answers "busy").
//  - Free threads take work from the lanes in turn (round robin), so a call to another
//    instance waits for at most one call, not for the whole flood ahead of it.
//  - A job whose deadline passes gets its `expired` callback exactly once, on the watchdog
//    thread: a queued job is dropped, a running one counts as stuck (its thread is written
//    off, and another may start in its place, up to twice max_running). The engine answers
//    the client from that callback; the handler's own answer, if it ever comes, is dropped.
//    Killing a stuck handler takes a process of its own (plugin isolation).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace mcph::protocol {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using Lane = const void*;  // the plugin instance

  struct Options {
    size_t max_running = 64;  // calls running at once, over all lanes
    size_t max_queued = 1000;  // calls waiting, per lane
  };
  struct LaneStats {
    size_t running = 0;  // includes stuck
    size_t queued = 0;
    size_t stuck = 0;    // past their deadline, handler still running
  };

  explicit Scheduler(Options options);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The most calls of `lane` that may run at once (default: max_running).
  void set_cap(Lane lane, size_t cap);

  // Queues `run`. False (nothing queued) when the lane's queue is full or the scheduler
  // stopped. `expired` runs once if the deadline passes before `run` returns.
  bool submit(Lane lane, Clock::time_point deadline, std::function<void()> run, std::function<void()> expired);

  // For work the caller runs on its own thread: takes a running slot of `lane` if one is
  // free now and nothing of it waits (so the caller does not overtake the queue); null if
  // not. Past `deadline` it is a running job like any other: `expired` runs once on the
  // watchdog and the slot is free again while the caller's work goes on. leave() when done.
  struct Job;
  using Entry = std::shared_ptr<Job>;
  Entry try_enter(Lane lane, Clock::time_point deadline, std::function<void()> expired);
  void leave(const Entry& entry);

  // Like submit(), for work that goes on after `run` returns (a call waiting for another
  // process, which needs no thread meanwhile): `run` gets its slot's entry, which stays
  // taken until leave(entry).
  bool submit_detached(Lane lane, Clock::time_point deadline, std::function<void(const Entry&)> run,
                       std::function<void()> expired);

  LaneStats stats(Lane lane) const;
  size_t running() const;  // over all lanes, stuck included

  bool stopping() const;
  // Waits until nothing runs or waits (true), or until `until` (false).
  bool wait_idle(Clock::time_point until) const;

  // Refuses new work, expires what waits, and joins every thread once its call returned
  // (stuck ones too: a handler must not outlive what it runs on).
  void stop();

 private:
  struct LaneState {
    size_t cap = 0;
    size_t running = 0;
    size_t stuck = 0;
    std::deque<std::shared_ptr<Job>> queue;
    bool ready = false;  // listed in ready_
  };

  using Deadlines = std::map<std::pair<Clock::time_point, uint64_t>, std::shared_ptr<Job>>;

  bool queue(Lane lane, Clock::time_point deadline, std::function<void()> run, std::function<void(const Entry&)> detached,
             std::function<void()> expired);
  // A job of `lane`, made before the mutex is taken (with its deadlines_ entry: see Job::slot).
  static std::shared_ptr<Job> make_job(Lane lane, std::function<void()> expired);
  void worker();
  void watchdog();
  // With mutex_ held:
  std::shared_ptr<Job> next_job();  // null if none may run now
  std::shared_ptr<Job> next_detached(Lane lane);
  void watch(const std::shared_ptr<Job>& job, Clock::time_point deadline);  // lists its deadline
  void done(const std::shared_ptr<Job>& job);   // it returned
  void wake_worker();
  size_t cap(Lane lane) const;
  void forget_if_empty(Lane lane);

  const Options options_;
  mutable std::mutex mutex_;
  mutable std::condition_variable work_cv_, idle_cv_, watch_cv_;
  std::unordered_map<Lane, LaneState> lanes_;              // guarded by mutex_
  std::unordered_map<Lane, size_t> caps_;                  // guarded
  size_t queued_ = 0;                                      // over all lanes; guarded
  size_t wake_tokens_ = 0;                                 // idle threads told to wake; guarded
  bool watchdog_stop_ = false;                             // guarded
  Clock::time_point watch_until_ = Clock::time_point::max();  // the watchdog sleeps until; guarded
  std::deque<Lane> ready_;                                 // lanes with queued jobs; guarded
  Deadlines deadlines_;                                    // guarded
  uint64_t next_id_ = 0;                                   // guarded
  size_t running_ = 0, stuck_ = 0, idle_threads_ = 0;      // guarded
  std::unordered_map<std::thread::id, std::thread> threads_;  // guarded
  std::vector<std::thread::id> exited_;                    // guarded: threads to join
  bool stopping_ = false;                                  // guarded
  std::thread watchdog_;
};

}  // namespace mcph::protocol
