// codegen plugin: the org-wide request budget. The API allows 60 GETs per 30 s per
// organisation on its standard endpoints (codegen.md §B.2, overview.mdx); the poller and
// every tool call of one plugin instance share one budget per org, kept below that limit.
// Part of it is held back for interactive calls (list pages, orchestrator checks by a tool),
// so a busy poller never starves a user's request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>

namespace codegen {

// A sliding-window log: at most `capacity` acquisitions in any `window_ms`. Not
// thread-safe; times are passed in (steady milliseconds) so it is a pure, testable value.
class RateLimiter {
 public:
  RateLimiter(size_t capacity, int64_t window_ms) : capacity_(capacity), window_ms_(window_ms) {}

  // Takes one slot if fewer than capacity - reserve are in use in the window ending now.
  bool try_acquire(int64_t now, size_t reserve = 0);
  // The earliest time try_acquire(·, reserve) can succeed (now if it can now).
  int64_t next_free(int64_t now, size_t reserve = 0);
  size_t used(int64_t now);
  size_t capacity() const { return capacity_; }

 private:
  void expire(int64_t now);
  size_t capacity_;
  int64_t window_ms_;
  std::deque<int64_t> stamps_;
};

// One limiter per organisation plus a cool-down after a 429 (Retry-After when the API sends
// one, §B.5 says it is undocumented). Thread-safe.
class OrgBudget {
 public:
  // `per_window` GETs per `window_ms`; background work leaves `reserve` of them free.
  OrgBudget(size_t per_window, int64_t window_ms, size_t reserve)
      : per_window_(per_window), window_ms_(window_ms), reserve_(reserve < per_window ? reserve : 0) {}

  // Takes a slot for org now, or returns false and sets *retry_at (steady ms) to when to try.
  bool try_acquire(int64_t org, int64_t now, bool background, int64_t* retry_at);
  // After a 429: no request to this org before `until` (steady ms).
  void cool_down(int64_t org, int64_t until);

 private:
  std::mutex mutex_;
  size_t per_window_;
  int64_t window_ms_;
  size_t reserve_;
  std::map<int64_t, RateLimiter> limiters_;
  std::map<int64_t, int64_t> cool_until_;
};

}  // namespace codegen
