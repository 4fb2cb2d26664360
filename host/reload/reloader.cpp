#include "reload/reloader.hpp"

#include <spdlog/spdlog.h>

#include "reload/watcher.hpp"

namespace mcph::reload {
namespace {

using Clock = std::chrono::steady_clock;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Reloader::Reloader(std::string config_path, std::shared_ptr<const config::Config> running, std::shared_ptr<plugins::Registry> registry,
                   protocol::Engine& engine, plugins::Services services, std::string log_level)
    : path_(std::move(config_path)),
      engine_(engine),
      services_(services),
      log_level_(std::move(log_level)),
      config_(std::move(running)),
      registry_(std::move(registry)) {
  watch(*config_);
  thread_ = std::thread([this] { loop(); });
}

Reloader::~Reloader() {
  stop();
  {
    std::lock_guard serial(reload_mutex_);
    watcher_.reset();  // its callback only asks the (now stopped) thread
  }
  std::vector<Retired> retired;
  {
    std::lock_guard lock(mutex_);
    retired.swap(retired_);
  }
  retired.clear();  // oldest first: instances no newer registry shares end here
}

void Reloader::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;  // (already joined)
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<const config::Config> Reloader::config() const {
  std::lock_guard lock(mutex_);
  return config_;
}

std::vector<std::shared_ptr<const plugins::Registry>> Reloader::draining() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const plugins::Registry>> out;
  for (const auto& r : retired_) out.push_back(r.registry);
  return out;
}

void Reloader::begin_shutdown() {
  std::lock_guard lock(mutex_);
  registry_->begin_shutdown();
  for (const auto& r : retired_) r.registry->begin_shutdown();
}

std::vector<std::string> Reloader::needs_restart(const config::Config& a, const config::Config& b) {
  std::vector<std::string> out;
  auto check = [&](bool same, const char* what) {
    if (!same) out.emplace_back(what);
  };
  check(a.state_dir == b.state_dir, "state_dir");
  check(a.store == b.store, "store");
  check(a.tasks == b.tasks, "tasks");
  check(a.server.transport == b.server.transport, "server.transport");
  check(a.server.http.listen == b.server.http.listen, "server.http.listen");
  config::HttpConfig http_a = a.server.http;
  http_a.listen = b.server.http.listen;
  check(http_a == b.server.http, "server.http (beyond listen)");
  config::ServerConfig server_a = a.server;
  server_a.http = b.server.http;
  server_a.transport = b.server.transport;
  check(server_a == b.server, "server (limits and timeouts)");
  check(a.log.format == b.log.format, "log.format");
  check(a.telemetry == b.telemetry, "telemetry");
  return out;
}

Outcome Reloader::reload() {
  std::lock_guard serial(reload_mutex_);
  auto fail = [&](const std::string& why) {
    spdlog::error("reload of {} failed: {}; still serving the previous configuration", path_, why);
    return Outcome{false, why + "\nstill serving the previous configuration"};
  };
  auto read = config::load_file(path_);
  if (!read) return fail(read.error());
  const auto running = config();
  // What a reload can change; the rest stays as the host started with it.
  auto next_config = std::make_shared<config::Config>(*running);
  next_config->plugins = (*read)->plugins;
  next_config->plugin_paths = (*read)->plugin_paths;
  next_config->log.level = (*read)->log.level;
  next_config->reload = (*read)->reload;
  next_config->files = (*read)->files;

  std::shared_ptr<plugins::Registry> current;
  {
    std::lock_guard lock(mutex_);
    current = registry_;
  }
  plugins::Services services = services_;
  services.generation = generation_ + 1;
  plugins::Registry::Changes changes;
  auto made = current->reload(*next_config, services, changes);
  if (!made) return fail(made.error());
  std::vector<std::string> lists;
  if (changes.any()) {
    ++generation_;
    std::shared_ptr<plugins::Registry> next(std::move(*made));
    for (const auto& inst : current->instances()) {
      if (next->instance(inst->name()) != inst.get()) inst->retire();
    }
    lists = engine_.swap(next);
    std::lock_guard lock(mutex_);
    registry_ = next;
    retired_.push_back(Retired{current, Clock::now() + std::chrono::milliseconds(next_config->reload.drain_ms)});
  }
  {
    std::lock_guard lock(mutex_);
    config_ = next_config;
  }
  wake_.notify_all();
  if (log_level_.empty() && next_config->log.level != running->log.level) {
    spdlog::set_level(spdlog::level::from_str(next_config->log.level == "warn" ? "warning" : next_config->log.level));
  }
  if (next_config->reload.watch != running->reload.watch || next_config->files != running->files) watch(*next_config);

  std::string message = "reloaded " + path_ + ": ";
  if (!changes.any()) {
    message += "no plugin instance changed (" + std::to_string(changes.unchanged.size()) + " unchanged)";
  } else {
    std::vector<std::string> parts;
    if (!changes.added.empty()) parts.push_back("added " + joined(changes.added));
    if (!changes.replaced.empty()) parts.push_back("replaced " + joined(changes.replaced));
    if (!changes.removed.empty()) parts.push_back("removed " + joined(changes.removed));
    parts.push_back(std::to_string(changes.unchanged.size()) + " unchanged");
    message += joined(parts);
    if (!lists.empty()) message += "; clients told that these lists changed: " + joined(lists);
  }
  spdlog::info("{}", message);
  for (const auto& what : needs_restart(*running, **read)) {
    const std::string line = what + " changed in the file; it takes effect only after a restart (still running with the old value)";
    spdlog::warn("reload: {}", line);
    message += "\n" + line;
  }
  if (changes.any()) {
    std::lock_guard lock(mutex_);
    for (const auto& w : registry_->long_name_warnings()) {
      spdlog::warn("reload: {}", w);
      message += "\nwarning: " + w;
    }
  }
  return Outcome{true, message};
}

void Reloader::watch(const config::Config& config) {
  // reload_mutex_ is held, or this is the constructor.
  watcher_.reset();
  if (!config.reload.watch) return;
  auto w = Watcher::start(config.files, [this] { request(); });
  if (!w) {
    spdlog::warn("reload.watch: {}; reload with SIGHUP or mcp-host reload instead", w.error());
    return;
  }
  watcher_ = std::move(*w);
  spdlog::info("reload.watch: watching {} file(s)", config.files.size());
}

void Reloader::request() {
  {
    std::lock_guard lock(mutex_);
    requested_ = true;
  }
  wake_.notify_all();
}

void Reloader::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (requested_) {
      requested_ = false;
      lock.unlock();
      reload();  // logs its outcome
      lock.lock();
      continue;
    }
    if (retired_.empty()) {
      wake_.wait(lock);
      continue;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(100));
    const auto now = Clock::now();
    for (auto& r : retired_) {
      if (r.cancelled || now < r.cancel_at) continue;
      r.cancelled = true;
      for (const auto& inst : r.registry->instances()) {
        if (!inst->retired() || inst->shutting_down()) continue;
        if (inst->in_flight() > 0) spdlog::warn("instance '{}' (removed or replaced): cancelling its {} calls still running after reload.drain_ms", inst->name(), inst->in_flight());
        inst->begin_shutdown();
      }
    }
    // A registry no request uses any more goes; with it, the instances no newer one shares.
    std::vector<std::shared_ptr<plugins::Registry>> unused;
    std::erase_if(retired_, [&](Retired& r) {
      if (r.registry.use_count() != 1) return false;
      unused.push_back(std::move(r.registry));
      return true;
    });
    lock.unlock();
    for (auto& registry : unused) {
      for (const auto& inst : registry->instances()) {
        if (inst.use_count() == 1) spdlog::info("instance '{}' (removed or replaced) drained; ending it", inst->name());
      }
      registry.reset();
    }
    lock.lock();
  }
}

}  // namespace mcph::reload
