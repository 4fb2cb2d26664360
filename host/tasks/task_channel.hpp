// Where a call running as a task reports, once its client already has the CreateTaskResult:
// progress becomes the task's status message (and, for a legacy client that gave a
// progressToken, which stays valid for the task's life, also goes to it on the session's
// stream); log messages are dropped (tasks carry none, SEP-2663); requests to the client
// (legacy input rounds) and their cancellations go to the session's own channel (stdout,
// or the HTTP session's GET stream) marked with the task.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "protocol/engine.hpp"
#include "tasks/task_service.hpp"

namespace mcph::tasks {

class TaskChannel final : public protocol::ReplyChannel {
 public:
  // `session`: the legacy session's channel (null for 2026-07-28); `token`: the client's
  // progressToken (null for none).
  TaskChannel(TaskService& tasks, std::string id, std::optional<plugins::Caller> caller,
              std::shared_ptr<protocol::ReplyChannel> session, json token)
      : tasks_(tasks), id_(std::move(id)), caller_(std::move(caller)), session_(std::move(session)), token_(std::move(token)) {}

  void send(const json& m) override {
    const std::string method = m.value("method", "");
    if (method == "notifications/progress") {
      const json& p = m["params"];
      std::string text = p.value("message", "");
      if (text.empty()) {
        const double done = p.value("progress", 0.0), total = p.value("total", 0.0);
        text = total > 0 ? std::to_string(static_cast<int>(100 * done / total)) + " %" : "";
      }
      if (!text.empty()) tasks_.progress(id_, text);
      if (session_ && !token_.is_null()) {
        json forwarded = m;
        forwarded["params"]["progressToken"] = token_;
        forwarded["params"]["_meta"][kRelatedTask] = json{{"taskId", id_}};
        session_->send(forwarded);
      }
      return;
    }
    if (method == "notifications/message" || !session_) return;
    json copy = m;
    copy["params"]["_meta"][kRelatedTask] = json{{"taskId", id_}};
    session_->send(copy);
  }
  bool carries_requests() const override { return session_ != nullptr; }
  const plugins::Caller* caller() const override { return caller_ ? &*caller_ : nullptr; }

 private:
  TaskService& tasks_;
  const std::string id_;
  const std::optional<plugins::Caller> caller_;  // a copy: the request that carried it is over
  const std::shared_ptr<protocol::ReplyChannel> session_;
  const json token_;
};

}  // namespace mcph::tasks
