// A bounded pool of worker threads for tool calls. Threads are started on demand (so an
// idle host starts fast) up to `max_threads`; beyond that, work waits in a queue.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mcph::protocol {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads) : max_threads_(max_threads == 0 ? 1 : max_threads) {}
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> job) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
    queued_.store(queue_.size(), std::memory_order_release);
    // Each idle thread takes one job; start another thread when the queue outgrows them.
    if (queue_.size() > idle_ && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { loop(); });
    } else {
      wake_.notify_one();
    }
  }

  // Runs every queued job, then joins the threads.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (queue_.empty() && !stopping_) {
        // Jobs often come in quick succession (a client with many requests in flight):
        // yielding a little before sleeping saves a futex sleep and wake-up per job, which
        // measured as half the stdio time (perf: finish_task_switch).
        lock.unlock();
        for (int i = 0; i < 32 && queued_.load(std::memory_order_acquire) == 0; ++i) std::this_thread::yield();
        lock.lock();
      }
      ++idle_;
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping and drained
      auto job = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_relaxed);
      lock.unlock();
      job();
      lock.lock();
    }
  }

  const size_t max_threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  std::vector<std::thread> threads_;         // guarded by mutex_
  size_t idle_ = 0;                          // guarded by mutex_
  std::atomic<size_t> queued_{0};            // queue_.size(), readable without the lock
  bool stopping_ = false;                    // guarded by mutex_
};

}  // namespace mcph::protocol
