#include "protocol/scheduler.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace mcph::protocol {

struct Scheduler::Job {
  enum class State { kQueued, kRunning, kDone, kExpired };
  Lane lane;
  std::pair<Clock::time_point, uint64_t> key;  // in deadlines_
  // Its deadlines_ entry while it is not listed there: made with the job, so listing and
  // unlisting a call's deadline under the mutex allocate and free nothing (with many
  // threads on few cores, a thread preempted while it holds the mutex stalls every call).
  Deadlines::node_type slot;
  std::function<void()> run;
  std::function<void(const Entry&)> detached;  // instead of run: leaves its slot itself
  std::function<void()> expired;
  State state = State::kQueued;
  bool stuck = false;
};

Scheduler::Scheduler(Options options) : options_(options) {
  if (options_.max_running == 0) const_cast<size_t&>(options_.max_running) = 1;
  watchdog_ = std::thread([this] { watchdog(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_cap(Lane lane, size_t cap) {
  std::lock_guard lock(mutex_);
  caps_[lane] = std::max<size_t>(cap, 1);
}

size_t Scheduler::cap(Lane lane) const {
  auto it = caps_.find(lane);
  return it == caps_.end() ? options_.max_running : it->second;
}

bool Scheduler::submit(Lane lane, Clock::time_point deadline, std::function<void()> run, std::function<void()> expired) {
  return queue(lane, deadline, std::move(run), nullptr, std::move(expired));
}

bool Scheduler::submit_detached(Lane lane, Clock::time_point deadline, std::function<void(const Entry&)> run,
                                std::function<void()> expired) {
  return queue(lane, deadline, nullptr, std::move(run), std::move(expired));
}

bool Scheduler::queue(Lane lane, Clock::time_point deadline, std::function<void()> run, std::function<void(const Entry&)> detached,
                      std::function<void()> expired) {
  auto job = make_job(lane, std::move(expired));
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  LaneState& l = lanes_[lane];
  // Jobs that free slots will take at once do not count as waiting.
  const size_t lane_free = cap(lane) - std::min(cap(lane), l.running - l.stuck);
  const size_t all_free = options_.max_running - std::min(options_.max_running, running_ - stuck_);
  const size_t waiting = l.queue.size() - std::min(l.queue.size(), std::min(lane_free, all_free));
  if (waiting >= options_.max_queued) return false;
  watch(job, deadline);
  job->run = std::move(run);
  job->detached = std::move(detached);
  l.queue.push_back(job);
  ++queued_;
  if (!l.ready) {
    l.ready = true;
    ready_.push_back(lane);
  }
  // A thread is woken for it only if it could run now; else the call that frees its slot
  // (leave(), or a worker that finished) takes it up.
  if (l.queue.size() <= std::min(lane_free, all_free)) wake_worker();
  return true;
}

Scheduler::Entry Scheduler::try_enter(Lane lane, Clock::time_point deadline, std::function<void()> expired) {
  auto job = make_job(lane, std::move(expired));
  std::lock_guard lock(mutex_);
  LaneState& l = lanes_[lane];
  if (stopping_ || !l.queue.empty() || l.running - l.stuck >= cap(lane) || running_ - stuck_ >= options_.max_running) {
    forget_if_empty(lane);
    return nullptr;
  }
  watch(job, deadline);
  job->state = Job::State::kRunning;
  ++l.running;
  ++running_;
  return job;
}

void Scheduler::leave(const Entry& entry) {
  // A job leave() started runs on this thread now (its own leave() wakes a worker instead).
  static thread_local bool starting = false;
  std::shared_ptr<Job> next;
  {
    std::lock_guard lock(mutex_);
    done(entry);
    if (!starting) next = next_detached(entry->lane);
    if (!next && !ready_.empty()) wake_worker();
  }
  if (!next) return;
  starting = true;
  try {
    next->detached(next);
  } catch (...) {
    spdlog::error("starting a call failed");
  }
  starting = false;
}

// With mutex_ held: the next job of `lane` if it is detached and may run now, taken off
// the queue. The slot a detached job left goes to it on the leaving thread: it only starts
// (the work goes on elsewhere), so no worker need wake for it.
std::shared_ptr<Scheduler::Job> Scheduler::next_detached(Lane lane) {
  auto it = lanes_.find(lane);
  if (it == lanes_.end()) return nullptr;
  LaneState& l = it->second;
  if (l.queue.empty() || !l.queue.front()->detached || l.running - l.stuck >= cap(lane) || running_ - stuck_ >= options_.max_running) {
    return nullptr;
  }
  auto job = std::move(l.queue.front());
  l.queue.pop_front();
  --queued_;
  if (l.queue.empty() && l.ready) {
    l.ready = false;
    ready_.erase(std::find(ready_.begin(), ready_.end(), lane));
  }
  job->state = Job::State::kRunning;
  ++l.running;
  ++running_;
  return job;
}

std::shared_ptr<Scheduler::Job> Scheduler::make_job(Lane lane, std::function<void()> expired) {
  auto job = std::make_shared<Job>();
  job->lane = lane;
  job->expired = std::move(expired);
  Deadlines one;
  job->slot = one.extract(one.emplace().first);
  return job;
}

// With mutex_ held: a new job's deadline watched. The watchdog is woken only for a
// deadline before the time it sleeps until (not per call: calls come and go, and their
// deadlines are mostly later).
void Scheduler::watch(const std::shared_ptr<Job>& job, Clock::time_point deadline) {
  job->key = {deadline, next_id_++};
  job->slot.key() = job->key;
  job->slot.mapped() = job;
  deadlines_.insert(std::move(job->slot));
  if (deadline < watch_until_) watch_cv_.notify_one();
}

// With mutex_ held: a running job returned (its deadline passed or not).
void Scheduler::done(const std::shared_ptr<Job>& job) {
  LaneState& l = lanes_[job->lane];
  --l.running;
  --running_;
  if (job->stuck) {
    --l.stuck;
    --stuck_;
    spdlog::warn("a call that passed its deadline has returned after all");
  } else {
    job->slot = deadlines_.extract(job->key);        // freed with the job, after the mutex
    if (job->slot) job->slot.mapped().reset();       // (which it held: no cycle)
  }
  job->state = Job::State::kDone;
  forget_if_empty(job->lane);
  idle_cv_.notify_all();
}

Scheduler::LaneStats Scheduler::stats(Lane lane) const {
  std::lock_guard lock(mutex_);
  auto it = lanes_.find(lane);
  if (it == lanes_.end()) return {};
  return {it->second.running, it->second.queue.size(), it->second.stuck};
}

size_t Scheduler::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

bool Scheduler::stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool Scheduler::wait_idle(Clock::time_point until) const {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_until(lock, until, [&] { return running_ == 0 && queued_ == 0; });
}

// With mutex_ held. A job is waiting: wake an idle thread, or start one if the limit allows
// (threads of stuck calls do not count against max_running, up to as many again).
void Scheduler::wake_worker() {
  if (idle_threads_ > wake_tokens_) {
    ++wake_tokens_;
    work_cv_.notify_one();
    return;
  }
  const size_t limit = std::min(options_.max_running + stuck_, 2 * options_.max_running);
  if (threads_.size() >= limit || stopping_) return;
  std::thread t([this] { worker(); });
  threads_.emplace(t.get_id(), std::move(t));
}

// With mutex_ held: the next job that may run now, taking lanes in turn.
std::shared_ptr<Scheduler::Job> Scheduler::next_job() {
  if (running_ - stuck_ >= options_.max_running) return nullptr;
  for (size_t i = 0, n = ready_.size(); i < n; ++i) {
    const Lane lane = ready_.front();
    ready_.pop_front();
    LaneState& l = lanes_[lane];
    if (l.queue.empty()) {
      l.ready = false;
      continue;
    }
    ready_.push_back(lane);  // its turn comes again after the others'
    if (l.running - l.stuck >= cap(lane)) continue;  // stuck calls hold threads, not slots
    auto job = std::move(l.queue.front());
    l.queue.pop_front();
    --queued_;
    if (l.queue.empty()) {
      l.ready = false;
      ready_.pop_back();
    }
    job->state = Job::State::kRunning;
    ++l.running;
    ++running_;
    return job;
  }
  return nullptr;
}

// With mutex_ held: drops a lane's bookkeeping once nothing of it runs or waits (its cap
// stays in caps_).
void Scheduler::forget_if_empty(Lane lane) {
  auto it = lanes_.find(lane);
  if (it != lanes_.end() && it->second.running == 0 && it->second.queue.empty() && !it->second.ready) lanes_.erase(it);
}

void Scheduler::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto job = next_job();
    if (!job) {
      if (stopping_) break;
      ++idle_threads_;
      work_cv_.wait(lock, [&] { return stopping_ || wake_tokens_ > 0; });
      --idle_threads_;
      if (wake_tokens_ > 0) --wake_tokens_;
      continue;
    }
    lock.unlock();
    try {
      if (job->detached) {
        job->detached(job);
      } else {
        job->run();
      }
    } catch (const std::exception& e) {  // the engine guards its jobs; this is the last net
      spdlog::error("a call ended with an exception: {}", e.what());
    } catch (...) {
      spdlog::error("a call ended with an unknown exception");
    }
    lock.lock();
    if (!job->detached) done(job);
  }
  exited_.push_back(std::this_thread::get_id());
  idle_cv_.notify_all();
}

void Scheduler::watchdog() {
  std::unique_lock lock(mutex_);
  while (!watchdog_stop_) {
    if (deadlines_.empty()) {
      watch_until_ = Clock::time_point::max();
      watch_cv_.wait(lock);
      continue;
    }
    auto first = deadlines_.begin();
    const Clock::time_point when = first->first.first;  // a copy: the entry may go while we wait
    if (when > Clock::now()) {
      watch_until_ = when;
      watch_cv_.wait_until(lock, when);
      continue;
    }
    auto job = std::move(first->second);
    deadlines_.erase(first);
    LaneState& l = lanes_[job->lane];
    if (job->state == Job::State::kQueued) {
      l.queue.erase(std::find(l.queue.begin(), l.queue.end(), job));
      --queued_;
      job->state = Job::State::kExpired;
      forget_if_empty(job->lane);
      idle_cv_.notify_all();
    } else {  // running past its deadline: its thread is written off until it returns
      job->stuck = true;
      ++l.stuck;
      ++stuck_;
      if (!ready_.empty()) wake_worker();
    }
    lock.unlock();
    try {
      job->expired();
    } catch (...) {
      spdlog::error("answering a call at its deadline failed");
    }
    lock.lock();
  }
}

void Scheduler::stop() {
  std::vector<std::shared_ptr<Job>> dropped;
  std::unique_lock lock(mutex_);
  if (!stopping_) {
    stopping_ = true;
    for (auto& [lane, l] : lanes_) {
      for (auto& job : l.queue) {
        job->state = Job::State::kExpired;
        deadlines_.erase(job->key);
        dropped.push_back(std::move(job));
      }
      queued_ -= l.queue.size();
      l.queue.clear();
      l.ready = false;
    }
    ready_.clear();
    work_cv_.notify_all();
  }
  lock.unlock();
  for (auto& job : dropped) job->expired();  // answered: the host is stopping
  lock.lock();
  // Every thread is joined, stuck ones included: a handler may not outlive the scheduler
  // (nor the instance it belongs to). A host that must stop despite a stuck handler exits
  // without destroying anything (main.cpp).
  idle_cv_.wait(lock, [&] { return exited_.size() >= threads_.size(); });
  watchdog_stop_ = true;
  watch_cv_.notify_all();
  for (auto& [id, t] : threads_) t.join();
  threads_.clear();
  exited_.clear();
  lock.unlock();
  if (watchdog_.joinable()) watchdog_.join();
}

}  // namespace mcph::protocol
