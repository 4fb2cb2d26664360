// StateStore's events, this process's half: listeners and local delivery. Backends that
// reach other processes (postgres.cpp) override broadcast() and start_listening(). Part of
// the runtime library: an isolated plugin's child has a StateStore too (it forwards to its
// host) and needs the base class, not a database.
#include <utility>

#include "store/state_store.hpp"

namespace mcph::store {

Status StateStore::publish(std::string_view topic, std::string_view body) {
  if (topic.find('\n') != std::string_view::npos) return Error{"an event topic is one line"};
  if (topic.size() + body.size() > kMaxEvent) {
    return Error{"event '" + std::string(topic) + "' too large (" + std::to_string(body.size()) + " bytes)"};
  }
  deliver(topic, body);
  return broadcast(topic, body);
}

Status StateStore::broadcast(std::string_view, std::string_view) { return Ok{}; }

StateStore::Subscription StateStore::subscribe(EventFn fn) {
  auto l = std::make_shared<Listener>();
  l->fn = std::move(fn);
  bool first = false;
  {
    std::lock_guard lock(listeners_mutex_);
    listeners_.push_back(l);
    first = !std::exchange(listening_, true);
  }
  if (first) start_listening();
  return Subscription(this, l);
}

void StateStore::deliver(std::string_view topic, std::string_view body) {
  std::vector<std::shared_ptr<Listener>> to;
  {
    std::lock_guard lock(listeners_mutex_);
    to = listeners_;
  }
  for (const auto& l : to) {
    std::lock_guard lock(l->mutex);
    if (l->fn) l->fn(topic, body);
  }
}

StateStore::Subscription& StateStore::Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    reset();
    store_ = o.store_;
    listener_ = std::move(o.listener_);
  }
  return *this;
}

void StateStore::Subscription::reset() {
  if (!listener_) return;
  {
    std::lock_guard lock(listener_->mutex);
    listener_->fn = nullptr;
  }
  std::lock_guard lock(store_->listeners_mutex_);
  std::erase(store_->listeners_, listener_);
  listener_.reset();
}

}  // namespace mcph::store
