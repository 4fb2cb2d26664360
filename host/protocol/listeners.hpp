// 2026-07-28 subscriptions/listen streams (mcp-spec §2.11): a client opens one with a
// filter, the host acknowledges what it honours, and from then on sends only those
// notifications on it, each marked with the stream's id, until the client cancels (stdio:
// notifications/cancelled; HTTP: closing the response stream) or the host ends it.
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcph::protocol {

class ReplyChannel;

struct ListenFilter {
  bool tools = false, prompts = false, resources = false;  // ...ListChanged
  std::set<std::string, std::less<>> uris;                  // resourceSubscriptions
  std::vector<std::string> task_ids;                        // taskIds (the tasks extension)

  // The filter as the acknowledgement states it.
  nlohmann::json to_json() const;
};

class Listeners {
 public:
  struct Stream {
    nlohmann::json id;  // the listen request's id: the subscriptionId
    std::shared_ptr<ReplyChannel> channel;
    ListenFilter filter;
    std::string principal;
  };
  enum class List { kTools, kPrompts, kResources };

  // Opens a stream and sends its acknowledgement; null (with `why`) when `principal`
  // already holds `max_per_principal` open streams.
  std::shared_ptr<Stream> open(nlohmann::json id, std::shared_ptr<ReplyChannel> channel, ListenFilter filter,
                               std::string principal, size_t max_per_principal, std::string& why);
  // The client ended it: nothing more is sent; its channel closes.
  void close(const std::shared_ptr<Stream>& stream);
  // Sends `method` with `params` on `stream` (the subscriptionId added), if it is still open.
  void send(const Stream& stream, const std::string& method, nlohmann::json params);

  void resource_updated(const std::string& uri);
  void list_changed(List which);
  // The host is going away: every stream gets its final answer and closes.
  void end_all();
  size_t open_count() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Stream>> streams_;  // guarded by mutex_
};

}  // namespace mcph::protocol
