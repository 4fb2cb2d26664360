// Test support: a Registry built from YAML with the real plugin libraries of this build,
// and a ReplyChannel that records what the engine sends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "plugins/registry.hpp"
#include "protocol/engine.hpp"
#include "services/http_client.hpp"
#include "store/state_store.hpp"
#include "tasks/task_service.hpp"

namespace mcph::testing {

using nlohmann::json;

// A fresh folder under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("mcph-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// A channel as the stdio and HTTP transports' are: it only writes answers out, so a tool's
// result may reach it as its plugin wrote it (json_text::written). What is sent to it is
// dropped; its caller writes the answer Engine::handle returns.
class WritingChannel final : public protocol::ReplyChannel {
 public:
  bool takes_written() const override { return true; }
  void send(const json&) override {}
};

class RecordingChannel final : public protocol::ReplyChannel {
 public:
  void send(const json& message) override {
    std::lock_guard lock(mutex_);
    messages_.push_back(message);
    cv_.notify_all();
  }
  std::vector<json> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  // Waits until `pred` holds for some message; returns it (or null json on timeout).
  json wait_for(const std::function<bool(const json&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    json found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<json> messages_;
};

// YAML that loads this build's plugins; `plugins_yaml` is the `plugins:` list body.
inline std::string config_yaml(const std::string& state_dir, const std::string& plugins_yaml,
                               const std::string& server_yaml = "") {
  return "state_dir: " + state_dir + "\nplugin_paths: [" MCPH_PLUGIN_DIR "]\nserver:\n  transport: stdio\n" +
         server_yaml + "plugins:\n" + plugins_yaml;
}

// Loads config + plugins the way main.cpp does.
struct HostFixture {
  TempDir dir;
  std::unique_ptr<store::StateStore> state;
  std::unique_ptr<services::HttpClient> http = std::make_unique<services::HttpClient>();
  std::unique_ptr<tasks::TaskService> tasks;  // with load(..., task options): before the registry, gone after it
  std::unique_ptr<plugins::Registry> registry;
  std::shared_ptr<const config::Config> config;

  // Returns the load error, or "" when the registry is ready.
  std::string load(const std::string& plugins_yaml, const std::string& server_yaml = "",
                   std::optional<tasks::ServiceOptions> task_options = std::nullopt) {
    auto cfg = config::load_string(config_yaml(dir.str() + "/state", plugins_yaml, server_yaml), dir.str());
    if (!cfg) return cfg.error();
    config = *cfg;
    auto st = store::StateStore::open(config->state_dir);
    if (!st) return st.error();
    state = std::move(*st);
    if (task_options) tasks = std::make_unique<tasks::TaskService>(*state, *task_options);
    auto reg = plugins::Registry::load(*config, plugins::Services{state.get(), http.get(), nullptr, tasks.get()});
    if (!reg) return reg.error();
    registry = std::move(*reg);
    return "";
  }
};

// Undoes the host's HTML escaping (auth/oauth.cpp) of a value read back from a page.
inline std::string html_unescape(std::string v) {
  for (auto [from, to] : {std::pair{"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&#39;", "'"}, {"&amp;", "&"}}) {
    for (size_t p; (p = v.find(from)) != std::string::npos;) v.replace(p, std::string(from).size(), to);
  }
  return v;
}

}  // namespace mcph::testing
