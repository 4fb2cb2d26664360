#include "plugins/in_process.hpp"

#include <thread>

#include "json/bounded.hpp"

namespace mcph::plugins {

Result<std::unique_ptr<InProcessInstance>> InProcessInstance::create(const config::PluginConfig& cfg,
                                                                     std::shared_ptr<Library> library,
                                                                     Services services) {
  std::unique_ptr<InProcessInstance> self(new InProcessInstance());
  self->config_ = cfg;
  self->library_ = std::move(library);
  self->library_path_ = self->library_->path();
  self->library_id_ = self->library_->id();
  self->library_name_ = self->library_->name();
  self->library_version_ = self->library_->version();
  self->host_.name = cfg.name;
  self->host_.credentials = cfg.credentials;
  self->host_.services = services;
  // Until the plugin declares which credentials are public, every one is a secret.
  self->host_.fix_credential_secrets();

  // create() runs on a thread of its own, under a deadline: a plugin that hangs there must
  // not hang the host's start (nor keep SIGTERM from ending it). One that does is given up:
  // the instance (and its library) are left alone for good, since the thread still uses them.
  struct Pending {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    mcph_status status = MCPH_ERR_INTERNAL;
  };
  auto pending = std::make_shared<Pending>();
  InProcessInstance* raw = self.get();
  std::thread([raw, pending, settings = json_text::dump(cfg.settings)] {
    raw->host_.registering = true;
    const mcph_status st = raw->library_->descriptor().create(&host_api(), &raw->host_, mcph_str{settings.c_str(), settings.size()},
                                                             &raw->plugin_instance_);
    raw->host_.registering = false;
    std::lock_guard lock(pending->mutex);
    pending->status = st;
    pending->done = true;
    pending->cv.notify_all();
  }).detach();
  const auto timeout = std::chrono::milliseconds(cfg.create_timeout_ms);
  std::unique_lock wait_lock(pending->mutex);
  if (!pending->cv.wait_for(wait_lock, timeout, [&] { return pending->done; })) {
    (void)self.release();  // still in use by the thread inside create()
    return Error{"plugin instance '" + cfg.name + "' (" + raw->library_path_ + ") did not finish starting within " +
                 std::to_string(timeout.count()) + " ms (plugins[].create_timeout_ms); it is left disabled"};
  }
  const mcph_status st = pending->status;
  wait_lock.unlock();
  if (st == MCPH_OK) self->host_.fix_credential_secrets();
  if (st != MCPH_OK) {
    std::string why = self->host_.create_error.empty() ? status_name(st) : self->host_.create_error;
    self->host_.redact(why);
    return Error{"plugin instance '" + cfg.name + "' (" + self->library_path_ + ") failed to start: " + why};
  }
  self->created_ = true;
  if (!self->host_.create_error.empty()) {
    // A registration error (e.g. a duplicate tool name) that the plugin ignored.
    std::string why = self->host_.create_error;
    self->host_.redact(why);
    return Error{"plugin instance '" + cfg.name + "' (" + self->library_path_ + "): " + why};
  }
  return self;
}

InProcessInstance::~InProcessInstance() {
  if (!created_) return;
  {
    std::unique_lock lock(drain_mutex_);
    drained_.wait(lock, [&] { return in_flight_.load() == 0; });
  }
  library_->descriptor().destroy(plugin_instance_);
}

void InProcessInstance::run(const std::string& what, HandlerRef ref, const std::string& input, mcph_call& call) const {
  // The handler `ref` names; null if the index is out of range (a confused caller).
  mcph_tool_handler handler = nullptr;
  void* user = nullptr;
  auto pick = [&](const auto& list, auto member) {
    if (ref.index < list.size()) std::tie(handler, user) = std::pair(list[ref.index].*member, list[ref.index].user);
  };
  switch (ref.kind) {
    case HandlerRef::Kind::kTool: pick(host_.tools, &Tool::handler); break;
    case HandlerRef::Kind::kRead: pick(host_.resources, &Resource::read); break;
    case HandlerRef::Kind::kResourceComplete: pick(host_.resources, &Resource::complete); break;
    case HandlerRef::Kind::kPrompt: pick(host_.prompts, &Prompt::get); break;
    case HandlerRef::Kind::kPromptComplete: pick(host_.prompts, &Prompt::complete); break;
    case HandlerRef::Kind::kCredentialCheck: std::tie(handler, user) = std::pair(host_.credential_check, host_.credential_check_user); break;
  }
  call.host = &host_;
  call.reset_outcome();
  if (handler == nullptr) {
    call.has_outcome = call.is_error = true;
    call.error_status = MCPH_ERR_NOT_FOUND;
    call.error_text = what + ": the plugin has no such handler";
    return;
  }
  in_flight_.fetch_add(1);
  const ParsedInput parsed(input, call.input_value);
  mcph_status st = handler(plugin_instance_, user, &call, mcph_str{input.c_str(), input.size()});
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(drain_mutex_);
    drained_.notify_all();
  }
  finish(what, st, call);
}

}  // namespace mcph::plugins
