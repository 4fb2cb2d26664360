// Live reconfiguration. A reload reads the YAML file again and validates it in full; a file
// that fails changes nothing. Then, per plugin instance: an unchanged one keeps running
// untouched; an added one is created; a changed one (anything in its entry, or its library
// file replaced on disk) gets a new instance that takes new calls while the old one
// drains; a removed one takes no new calls, finishes those in flight for reload.drain_ms,
// then has them cancelled, and is destroyed once the last request that used it is over.
// The engine swaps registries (protocol/engine.hpp, Engine::swap) and tells clients which
// lists changed. Server-level settings that only a restart can change are reported, not
// ignored.
//
// Triggers: SIGHUP (main.cpp), `mcp-host reload` through the control socket
// (control.hpp), and with reload.watch the files the configuration was read from
// (watcher.hpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "plugins/registry.hpp"
#include "protocol/engine.hpp"

namespace mcph::reload {

class Watcher;

struct Outcome {
  bool ok = false;
  std::string message;  // what changed (or why nothing did), one fact per line
};

class Reloader {
 public:
  // Takes over `registry` (the one `engine` serves, made from `running`). `log_level`: the
  // command line's --log-level, which a reload leaves alone ("" lets the file decide).
  Reloader(std::string config_path, std::shared_ptr<const config::Config> running, std::shared_ptr<plugins::Registry> registry,
           protocol::Engine& engine, plugins::Services services, std::string log_level);
  ~Reloader();  // stops watching; drops the retired registries (ending their instances)
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  // Reloads now (one at a time; callers on other threads wait their turn).
  Outcome reload();
  // Reloads soon, on the reloader's own thread (SIGHUP, reload.watch); the outcome is logged.
  void request();
  // Ends that thread, after the reload it may be running: once the host stops serving, no
  // reload may swap a registry into an engine that is about to go. Requests are ignored
  // from then on. The destructor does it too.
  void stop();

  std::shared_ptr<const config::Config> config() const;
  // The registries a reload replaced that requests still use; their retired() instances
  // finish their calls (for /healthz). Holding one only delays its end.
  std::vector<std::shared_ptr<const plugins::Registry>> draining() const;
  // Shutdown: every call of every instance, serving or draining, is cancelled.
  void begin_shutdown();

 private:
  struct Retired {
    std::shared_ptr<plugins::Registry> registry;
    std::chrono::steady_clock::time_point cancel_at;  // its retired instances' calls are cancelled then
    bool cancelled = false;
  };
  // Server-level settings that differ and only a restart applies.
  static std::vector<std::string> needs_restart(const config::Config& running, const config::Config& read);
  // The reloader's thread: reloads on request, cancels what drains too long, and drops
  // retired registries once no request uses them.
  void loop();
  void watch(const config::Config& config);

  const std::string path_;
  protocol::Engine& engine_;
  plugins::Services services_;
  const std::string log_level_;

  std::mutex reload_mutex_;  // one reload at a time
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<const config::Config> config_;  // guarded by mutex_
  std::shared_ptr<plugins::Registry> registry_;   // guarded by mutex_: the one served
  std::vector<Retired> retired_;                  // guarded by mutex_
  int generation_ = 0;                            // guarded by reload_mutex_
  bool stop_ = false;                             // guarded by mutex_
  bool requested_ = false;                        // guarded by mutex_
  std::unique_ptr<Watcher> watcher_;              // with reload.watch; guarded by reload_mutex_
  std::thread thread_;
};

}  // namespace mcph::reload
