#include "protocol/listeners.hpp"

#include <algorithm>

#include "protocol/engine.hpp"

namespace mcph::protocol {
namespace {

constexpr const char* kSubscriptionId = "io.modelcontextprotocol/subscriptionId";

}  // namespace

nlohmann::json ListenFilter::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (tools) j["toolsListChanged"] = true;
  if (prompts) j["promptsListChanged"] = true;
  if (resources) j["resourcesListChanged"] = true;
  if (!uris.empty()) j["resourceSubscriptions"] = uris;
  if (!task_ids.empty()) j["taskIds"] = task_ids;
  return j;
}

std::shared_ptr<Listeners::Stream> Listeners::open(nlohmann::json id, std::shared_ptr<ReplyChannel> channel, ListenFilter filter,
                                                   std::string principal, size_t max_per_principal, std::string& why) {
  auto s = std::make_shared<Stream>(Stream{std::move(id), std::move(channel), std::move(filter), std::move(principal)});
  {
    std::lock_guard lock(mutex_);
    const auto mine = std::count_if(streams_.begin(), streams_.end(), [&](const auto& o) { return o->principal == s->principal; });
    if (static_cast<size_t>(mine) >= max_per_principal) {
      why = "too many subscriptions/listen streams open (" + std::to_string(mine) + "); close one first";
      return nullptr;
    }
    streams_.push_back(s);
  }
  send(*s, "notifications/subscriptions/acknowledged", nlohmann::json{{"notifications", s->filter.to_json()}});
  return s;
}

void Listeners::close(const std::shared_ptr<Stream>& stream) {
  {
    std::lock_guard lock(mutex_);
    auto it = std::find(streams_.begin(), streams_.end(), stream);
    if (it == streams_.end()) return;
    streams_.erase(it);
  }
  stream->channel->close();
}

void Listeners::send(const Stream& s, const std::string& method, nlohmann::json params) {
  {
    std::lock_guard lock(mutex_);
    if (std::none_of(streams_.begin(), streams_.end(), [&](const auto& o) { return o.get() == &s; })) return;
  }
  params["_meta"][kSubscriptionId] = s.id;
  s.channel->send(make_notification(method.c_str(), std::move(params)));
}

void Listeners::resource_updated(const std::string& uri) {
  std::vector<std::shared_ptr<Stream>> to;
  {
    std::lock_guard lock(mutex_);
    for (const auto& s : streams_) {
      if (s->filter.uris.contains(uri)) to.push_back(s);
    }
  }
  for (const auto& s : to) send(*s, "notifications/resources/updated", nlohmann::json{{"uri", uri}});
}

void Listeners::list_changed(List which) {
  static constexpr const char* kMethods[] = {"notifications/tools/list_changed", "notifications/prompts/list_changed",
                                             "notifications/resources/list_changed"};
  std::vector<std::shared_ptr<Stream>> to;
  {
    std::lock_guard lock(mutex_);
    for (const auto& s : streams_) {
      const bool wants = which == List::kTools ? s->filter.tools : which == List::kPrompts ? s->filter.prompts : s->filter.resources;
      if (wants) to.push_back(s);
    }
  }
  for (const auto& s : to) send(*s, kMethods[static_cast<int>(which)], nlohmann::json::object());
}

void Listeners::end_all() {
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(streams_);
  }
  for (const auto& s : all) {
    // A graceful end: the listen request's answer (mcp-spec §2.11).
    s->channel->send(make_result(s->id, nlohmann::json{{"resultType", "complete"}, {"_meta", {{kSubscriptionId, s->id}}}}));
    s->channel->close();
  }
}

size_t Listeners::open_count() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

}  // namespace mcph::protocol
