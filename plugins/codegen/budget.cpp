#include "budget.hpp"

#include <algorithm>

namespace codegen {

void RateLimiter::expire(int64_t now) {
  while (!stamps_.empty() && stamps_.front() <= now - window_ms_) stamps_.pop_front();
}

size_t RateLimiter::used(int64_t now) {
  expire(now);
  return stamps_.size();
}

bool RateLimiter::try_acquire(int64_t now, size_t reserve) {
  expire(now);
  const size_t limit = capacity_ > reserve ? capacity_ - reserve : 0;
  if (stamps_.size() >= limit) return false;
  stamps_.push_back(now);
  return true;
}

int64_t RateLimiter::next_free(int64_t now, size_t reserve) {
  expire(now);
  const size_t limit = capacity_ > reserve ? capacity_ - reserve : 0;
  if (stamps_.size() < limit) return now;
  if (limit == 0) return now + window_ms_;
  // Enough of the oldest stamps must leave the window: the one at index size - limit.
  return stamps_[stamps_.size() - limit] + window_ms_;
}

bool OrgBudget::try_acquire(int64_t org, int64_t now, bool background, int64_t* retry_at) {
  std::lock_guard lock(mutex_);
  if (auto c = cool_until_.find(org); c != cool_until_.end()) {
    if (now < c->second) {
      if (retry_at) *retry_at = c->second;
      return false;
    }
    cool_until_.erase(c);
  }
  auto it = limiters_.try_emplace(org, per_window_, window_ms_).first;
  const size_t reserve = background ? reserve_ : 0;
  if (it->second.try_acquire(now, reserve)) return true;
  if (retry_at) *retry_at = it->second.next_free(now, reserve);
  return false;
}

void OrgBudget::cool_down(int64_t org, int64_t until) {
  std::lock_guard lock(mutex_);
  auto& c = cool_until_[org];
  c = std::max(c, until);
}

}  // namespace codegen
