// The in-process runner: the plugin library loaded into this process, its handlers called
// directly on the calling thread. The default (isolation: none), and what a child process
// of isolation: process runs inside itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "plugins/instance.hpp"

namespace mcph::plugins {

class InProcessInstance final : public Instance {
 public:
  // Runs the plugin's create() with the entry's settings, under cfg.create_timeout_ms.
  // Errors name the instance.
  static Result<std::unique_ptr<InProcessInstance>> create(const config::PluginConfig& cfg, std::shared_ptr<Library> library,
                                                           Services services);
  ~InProcessInstance() override;

  void run(const std::string& what, HandlerRef handler, const std::string& input, mcph_call& call) const override;
  int in_flight() const override { return in_flight_.load(); }
  const Library& library() const { return *library_; }

 private:
  InProcessInstance() = default;
  std::shared_ptr<Library> library_;
  void* plugin_instance_ = nullptr;
  bool created_ = false;
  mutable std::atomic<int> in_flight_{0};
  mutable std::mutex drain_mutex_;
  mutable std::condition_variable drained_;
};

}  // namespace mcph::plugins
