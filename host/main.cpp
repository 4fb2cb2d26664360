// mcp-host command line: serve (default), tools, call, check-config, plugin check. Wiring
// only; every piece it wires lives in its own room (config/, plugins/, protocol/, transport/,
// services/, plugin_check/).
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "auth/oauth.hpp"
#include "plugin_check/check.hpp"
#include "services/crypto.hpp"
#include "isolation/process_instance.hpp"
#include "plugins/registry.hpp"
#include "protocol/engine.hpp"
#include "reload/control.hpp"
#include "reload/reloader.hpp"
#include "http_stack/http_stack.hpp"
#include "services/logging.hpp"
#include "store/state_store.hpp"
#include "tasks/task_service.hpp"
#include "telemetry/metrics_server.hpp"
#include "telemetry/telemetry.hpp"
#include "transport/http.hpp"
#include "transport/http_guard.hpp"
#include "transport/stdio.hpp"
#include "version.hpp"

namespace {

using namespace mcph;
using nlohmann::json;

int fail(const std::string& message) {
  std::fprintf(stderr, "mcp-host: %s\n", message.c_str());
  return 1;
}

// Everything a command needs, built in dependency order and torn down in reverse.
struct Host {
  std::string config_path;
  std::shared_ptr<const config::Config> config;  // as started (serve: the reloader has the current one)
  std::unique_ptr<store::StateStore> state;
  std::unique_ptr<http_stack::OutboundHttp> http;  // the HTTP stack opens at its first request
  plugins::UserDirectory users;  // filled by the OAuth server while it runs
  std::unique_ptr<tasks::TaskService> tasks;  // null with tasks.enabled: false
  std::unique_ptr<telemetry::Telemetry> telemetry;  // serve with metrics on; outlives the engine and sessions
  plugins::Services services;
  std::shared_ptr<plugins::Registry> registry;  // serve: handed to the reloader
  std::unique_ptr<protocol::Engine> engine;
  std::unique_ptr<reload::Reloader> reloader;  // serve only

  // What is served now (a reload may have changed it since start).
  std::shared_ptr<const plugins::Registry> current() const { return engine->catalog()->registry; }
  void close() {
    engine.reset();  // waits for calls still running
    reloader.reset();
    registry.reset();
  }
  ~Host() { close(); }
};

std::string find_config(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("MCP_HOST_CONFIG"); env != nullptr && *env != '\0') return env;
  if (std::filesystem::exists("mcp-host.yaml")) return "mcp-host.yaml";
  return "";
}

// `serving`: the host will answer clients (mcp-host serve), so it runs MCP tasks; the other
// commands must not, or they would take this replica's unfinished tasks for orphans.
// The OpenTelemetry collector that traces and metrics go to; this replica as the resource.
telemetry::Collector collector(const config::OtlpConfig& o) {
  telemetry::Collector c;
  c.endpoint = o.endpoint;
  c.headers.assign(o.headers.begin(), o.headers.end());
  c.timeout = std::chrono::milliseconds(o.timeout_ms);
  c.service_version = kVersion;
  c.service_instance = plugins::replica_id();
  return c;
}

// Metrics, traces and the audit log, as the configuration asks (null: none of them).
Result<std::unique_ptr<telemetry::Telemetry>> make_telemetry(const config::Config& c, const std::string& transport) {
  const auto& t = c.telemetry;
  std::unique_ptr<telemetry::Tracer> tracer;
  if (!t.otlp.endpoint.empty()) {
    telemetry::Tracer::Options o;
    o.collector = collector(t.otlp);
    o.sampling = t.otlp.sampling;
    o.batch_delay = std::chrono::milliseconds(t.otlp.batch_delay_ms);
    o.queue_size = static_cast<size_t>(t.otlp.queue_size);
    o.batch_size = std::min<size_t>(512, o.queue_size);
    tracer = std::make_unique<telemetry::Tracer>(std::move(o));
    spdlog::info("traces to {} (OTLP/HTTP, sampling {})", t.otlp.endpoint, t.otlp.sampling);
  }
  std::unique_ptr<telemetry::AuditLog> audit;
  if (!t.audit_log.empty()) {
    auto log = telemetry::AuditLog::open(t.audit_log);
    if (!log) return Error{"telemetry.audit_log: " + log.error()};
    audit = std::move(*log);
  }
  // Nothing reads metrics on a stdio host without metrics_listen or OTLP: record none there
  // (telemetry.metrics is the HTTP listener's /metrics).
  const bool metrics_read = (transport == "http" && t.metrics) || !t.metrics_listen.empty() || !t.otlp.endpoint.empty();
  if (!metrics_read && !audit) return std::unique_ptr<telemetry::Telemetry>();
  return std::make_unique<telemetry::Telemetry>(transport == "http" ? "tcp" : "pipe", std::move(tracer), std::move(audit));
}

Result<std::unique_ptr<Host>> start(const std::string& config_arg, const std::string& log_level,
                                    const std::string& transport = "", bool serving = false) {
  const std::string path = find_config(config_arg);
  if (path.empty()) {
    return Error{"no configuration: pass --config FILE, set MCP_HOST_CONFIG, or put mcp-host.yaml in the "
                 "current folder (config/mcp-host.yaml in the source tree is the documented default)"};
  }
  auto cfg = config::load_file(path);
  if (!cfg) return Error{cfg.error()};
  auto host = std::make_unique<Host>();
  host->config_path = path;
  host->config = *cfg;
  const auto& c = *host->config;
  // Isolated instances' processes start now, side by side with what follows; the registry
  // takes them up, and any it did not (it failed, or start stops before it) end with this.
  isolation::prestart(c);
  const struct EndPrestarted {
    ~EndPrestarted() { isolation::end_prestarted(); }
  } end_prestarted;
  if (auto st = services::setup_logging(log_level.empty() ? c.log.level : log_level, c.log.format); !st) {
    return Error{st.error()};
  }
  auto state = store::StateStore::open(c.store, c.state_dir);
  if (!state) return Error{"state_dir: " + state.error()};
  host->state = std::move(*state);
  if (c.store.backend == "postgresql") {
    // Connects and migrates now; a server that is down is not fatal: requests that need the
    // store fail until it is back (and /readyz says so).
    if (auto st = host->state->check(); !st) spdlog::warn("{}", st.error());
    else spdlog::info("store: {}", host->state->location());
  }
  // Who this replica is, for its plugins' leases: kept in state_dir, so a host that
  // restarts (even after kill -9) holds its leases again at once instead of waiting for
  // them to expire. Replicas must not share a state_dir.
  (void)store::ensure_private_dir(c.state_dir);  // if it fails, so does the key below: it says why
  if (auto id = auth::load_or_create_key(c.state_dir + "/replica.key"); id) {
    plugins::set_replica_id(crypto::hex(id->substr(0, 8)));
  } else {
    spdlog::debug("replica id: {} (using a new one)", id.error());
  }
  host->http = std::make_unique<http_stack::OutboundHttp>();
  const std::string effective_transport = transport.empty() ? c.server.transport : transport;
  if (serving) {
    auto t = make_telemetry(c, effective_transport);
    if (!t) return Error{t.error()};
    host->telemetry = std::move(*t);
    if (host->telemetry) host->http->set_observer(host->telemetry.get());
  }
  if (c.tasks.enabled && serving) {
    tasks::ServiceOptions t;
    t.limits = {static_cast<size_t>(c.tasks.max_per_user), static_cast<size_t>(c.tasks.max_total),
                std::chrono::milliseconds(c.tasks.ttl_ms), static_cast<size_t>(c.tasks.max_result_bytes)};
    t.poll_interval = std::chrono::milliseconds(c.tasks.poll_interval_ms);
    t.timeout = std::chrono::milliseconds(c.tasks.timeout_ms);
    host->tasks = std::make_unique<tasks::TaskService>(*host->state, t);
  }
  host->services = plugins::Services{host->state.get(), host->http.get(), &host->users, host->tasks.get()};
  auto registry = plugins::Registry::load(c, host->services);
  if (!registry) return Error{registry.error()};
  host->registry = std::move(*registry);
  protocol::EngineOptions opts;
  opts.page_size = static_cast<size_t>(c.server.page_size);
  opts.list_ttl = std::chrono::milliseconds(c.server.list_ttl_ms);
  opts.call_timeout = std::chrono::milliseconds(c.server.call_timeout_ms);
  opts.observer = host->telemetry.get();
  if (effective_transport == "http") {
    opts.call_timeout = std::min(opts.call_timeout, std::chrono::milliseconds(c.server.http.request_timeout_ms));
  }
  opts.max_concurrent_calls = static_cast<size_t>(c.server.max_concurrent_calls);
  opts.max_queued_calls = static_cast<size_t>(c.server.max_queued_calls);
  opts.events = host->state.get();  // resource updates reach subscribers on every replica
  opts.tasks = host->tasks.get();
  if (c.store.backend == "postgresql") {  // replicas open each other's requestState
    if (auto keys = store::Keyring::shared(*host->state, "request_state"); keys) {
      opts.request_state_keys = std::move(*keys);
    } else {
      spdlog::warn("requestState key not shared (this replica's own until restart): {}", keys.error());
    }
  }
  host->engine = std::make_unique<protocol::Engine>(host->registry, opts);
  return host;
}

// Input ended or a signal came: give running and waiting calls the grace period, then
// cancel them; every call's answer is written before the host goes away. A handler that
// ignores cancellation cannot be waited for: after kStuckWait the host exits without
// destroying its plugins (a plugin's destroy() must never overlap its own handlers).
constexpr auto kStuckWait = std::chrono::seconds(2);

// `stopped`: runs once the calls ended (or were given up on), before the host closes.
int drain(Host& host, const std::function<void()>& stopped) {
  using Clock = std::chrono::steady_clock;
  const auto grace = std::chrono::milliseconds(host.config->server.shutdown_grace_ms);
  if (!host.engine->wait_idle(Clock::now() + grace)) {
    spdlog::warn("calls still running after {} ms; cancelling them", grace.count());
    if (host.tasks) host.tasks->begin_shutdown();  // their tasks fail, saying why
    if (host.reloader) {
      host.reloader->begin_shutdown();  // instances a reload retired too
    } else {
      host.registry->begin_shutdown();
    }
    if (!host.engine->wait_idle(Clock::now() + kStuckWait)) {
      for (const auto& inst : host.current()->instances()) {
        const auto calls = host.engine->calls(*inst);
        if (calls.running > 0) spdlog::error("plugin instance '{}': {} handlers ignore cancellation; exiting without waiting for them", inst->name(), calls.running);
      }
      spdlog::shutdown();  // flushes
      std::_Exit(0);
    }
  }
  stopped();
  host.close();
  return 0;
}

// Blocks SIGTERM/SIGINT/SIGHUP in every thread (call block() before starting any) and
// hands them to the current handler on a dedicated thread. Without one (while the host
// starts: a plugin's create() may hang), and for a signal after the first (while it
// drains), the host exits at once: SIGTERM always ends it. SIGHUP goes to the hang-up
// handler instead while there is one (a serving host reloads its configuration).
class SignalWatcher {
 public:
  SignalWatcher() {
    thread_ = std::thread([this] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (sig == SIGUSR1) return;  // our own wake-up at exit
        std::lock_guard running(running_);  // on_signal waits for a handler that runs
        // The logger through default_logger(), under spdlog's lock: a signal may come while
        // the main thread sets logging up, and spdlog::warn() reads the default logger
        // without it (ThreadSanitizer saw that race once start-up got quicker).
        const auto log = spdlog::default_logger();
        std::function<void()> handler;
        {
          std::lock_guard lock(mutex_);
          if (sig == SIGHUP && hangup_) {
            log->info("received SIGHUP; reloading the configuration");
            hangup_();
            continue;
          }
          handler = std::exchange(handler_, nullptr);
        }
        if (!handler) {
          log->warn("received {}; exiting now", strsignal(sig));
          // Flushed, not dropped: other threads may be logging through them right now.
          spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
          std::_Exit(128 + sig);
        }
        log->info("received {}; shutting down", strsignal(sig));
        handler();
      }
    });
  }
  // What the next signal does (once); null: exit at once. Waits for a handler that runs,
  // so what it uses may be destroyed after this returns.
  void on_signal(std::function<void()> handler) {
    std::lock_guard running(running_);
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }
  // What every SIGHUP does (quickly: it runs on the signal thread); null: as any signal.
  void on_hangup(std::function<void()> handler) {
    std::lock_guard running(running_);
    std::lock_guard lock(mutex_);
    hangup_ = std::move(handler);
  }
  static void block() {
    sigset_t s = signals();
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
    signal(SIGPIPE, SIG_IGN);  // a client that goes away must not kill the host
  }
  ~SignalWatcher() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  static sigset_t signals() {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&s, sig);
    return s;
  }
  sigset_t set_ = signals();
  std::mutex running_, mutex_;
  std::function<void()> handler_;  // guarded by mutex_
  std::function<void()> hangup_;   // guarded by mutex_
  std::thread thread_;
};

// GET /healthz: the host's version and each plugin instance's state: its calls running
// (stuck ones included: past their deadline, answered, but their handler has not returned)
// and waiting for a thread.
// Instances a reload removed or replaced are listed too, as "draining", until they end.
json health(const plugins::Registry& registry, const std::vector<std::shared_ptr<const plugins::Registry>>& draining,
            const protocol::Engine& engine, store::StateStore& store) {
  json instances = json::array();
  std::vector<const plugins::Instance*> all;
  for (const auto& inst : registry.instances()) all.push_back(inst.get());
  for (const auto& old : draining) {
    for (const auto& inst : old->instances()) {
      if (inst->retired() && std::find(all.begin(), all.end(), inst.get()) == all.end()) all.push_back(inst.get());
    }
  }
  for (const auto* inst : all) {
    const auto calls = engine.calls(*inst);
    const auto h = inst->health();
    json item{{"name", inst->name()},
              {"library", inst->library_name()},
              {"version", inst->library_version()},
              {"isolation", h.mode},
              {"state", inst->shutting_down() ? "stopping" : inst->retired() ? "draining" : h.state},
              {"tools", inst->tools().size()},
              {"calls_in_flight", inst->in_flight()},
              {"calls_queued", calls.queued},
              {"calls_stuck", calls.stuck}};
    if (h.mode == "process") {
      item["pid"] = h.pid;
      item["restarts"] = h.restarts;
      item["last_failure"] = h.last_failure;
    }
    instances.push_back(std::move(item));
  }
  json st{{"backend", store.backend()}, {"location", store.location()}};
  if (auto check = store.check(); check) {
    st["reachable"] = true;
  } else {
    st["reachable"] = false;
    st["error"] = check.error();
  }
  if (auto pool = store.pool_use()) st["pool"] = {{"busy", pool->busy}, {"open", pool->open}, {"size", pool->size}};
  return json{{"status", "ok"}, {"version", kVersion}, {"store", std::move(st)}, {"plugins", std::move(instances)}};
}

// The name under which replicas share the OAuth key kept in state_dir/`file` with SQLite.
std::string oauth_key_name(std::string_view file) { return "oauth_" + std::string(file); }

// What OAuth needs from the configuration: its keys (from the YAML, or generated once into
// state_dir) and the form fields every plugin instance declared per user.
// The form's fields and the credential checks follow the plugin instances served now.
Result<auth::OAuthOptions> oauth_options(const config::Config& c, const protocol::Engine& engine,
                                         plugins::UserDirectory& users, store::StateStore& store) {
  auth::OAuthOptions o;
  const auto& oc = c.server.http.auth.oauth;
  o.issuer = oc.issuer;
  o.access_ttl = std::chrono::seconds(oc.access_token_ttl_s);
  o.refresh_ttl = std::chrono::seconds(oc.refresh_token_ttl_s);
  auto key = [&](const std::string& configured, const char* file) -> Result<std::string> {
    if (configured.empty() && c.store.backend == "postgresql") {
      // Replicas sign and seal alike: the keys live in the shared store, created once.
      auto k = store::shared_key(store, oauth_key_name(file));
      if (!k) return Error{"OAuth keys from the store: " + k.error()};
      return k;
    }
    if (configured.empty()) return auth::load_or_create_key(c.state_dir + "/" + file);
    if (configured.size() == 32) return configured;
    if (auto raw = crypto::unb64url(configured); raw && raw->size() == 32) return *raw;
    return Error{std::string("server.http.auth.oauth.") + (std::string(file).find("sign") == 0 ? "signing_key" : "encryption_key") +
                 " must be 32 bytes (raw, or base64url without padding)"};
  };
  auto signing = key(oc.signing_key, "signing.key");
  if (!signing) return Error{signing.error()};
  o.signing_key = std::move(*signing);
  if (oc.encryption_key.empty() && c.store.backend == "postgresql") {  // rotates: `mcp-host keys rotate`
    auto ring = store::Keyring::shared(store, oauth_key_name("encryption.key"));
    if (!ring) return Error{"OAuth keys from the store: " + ring.error()};
    o.encryption_keys = std::move(*ring);
  } else {
    auto encryption = key(oc.encryption_key, "encryption.key");
    if (!encryption) return Error{encryption.error()};
    o.encryption_keys = std::make_shared<store::Keyring>(std::move(*encryption));
  }
  o.fields = [&engine] {
    std::vector<auth::FormField> fields;
    for (const auto& inst : engine.catalog()->registry->instances()) {
      for (const auto& u : inst->user_credentials()) fields.push_back({inst->name(), u.key, u.label, u.help, u.secret});
    }
    return fields;
  };
  o.check = [&engine](const std::string& name, const std::map<std::string, std::string>& entered) {
    const auto registry = engine.catalog()->registry;  // kept while the check runs
    if (const plugins::Instance* inst = registry->instance(name)) return auth::run_credential_check(*inst, entered);
    return auth::CheckOutcome{};
  };
  o.users = &users;
  return o;
}

// Live reconfiguration for a serving host: SIGHUP, `mcp-host reload` (the control socket)
// and reload.watch. Lives until the host stops serving.
class Reloading {
 public:
  Reloading(Host& host, SignalWatcher& signals, const std::string& log_level) : host_(host), signals_(signals) {
    host.reloader = std::make_unique<reload::Reloader>(host.config_path, host.config, std::move(host.registry), *host.engine,
                                                       host.services, log_level);
    reload::Reloader& reloader = *host.reloader;
    signals_.on_hangup([&reloader, t = host.telemetry.get()] {
      if (t != nullptr) t->reopen_audit();  // logrotate moved it
      reloader.request();
    });
    auto control = reload::ControlServer::start(host.config->state_dir, [&reloader](const std::string& command) {
      if (command != "reload") return json{{"ok", false}, {"message", "unknown command '" + command + "' (known: reload)"}};
      const auto outcome = reloader.reload();
      return json{{"ok", outcome.ok}, {"message", outcome.message}};
    });
    if (control) {
      control_ = std::move(*control);
    } else {
      spdlog::warn("control socket: {}; mcp-host reload cannot reach this host (SIGHUP still reloads)", control.error());
    }
  }
  ~Reloading() {
    signals_.on_hangup(nullptr);
    host_.reloader->stop();  // a reload SIGHUP started finishes before the host drains
  }
  Reloading(const Reloading&) = delete;
  Reloading& operator=(const Reloading&) = delete;

 private:
  Host& host_;
  SignalWatcher& signals_;
  std::unique_ptr<reload::ControlServer> control_;
};

// Metrics for a serving host: what the scrape-time gauges read, and the separate listener
// (telemetry.metrics_listen) when one is configured. Lives until the host stops serving.
class Metrics {
 public:
  explicit Metrics(Host& h) {
    if (!h.telemetry) return;
    telemetry::Sources s;
    s.calls_in_flight = [&h] { return static_cast<double>(h.engine->running()); };
    s.sessions = [&h] { return static_cast<double>(h.engine->sessions_open()); };
    s.streams = [&h] { return static_cast<double>(h.engine->streams_open()); };
    s.instances = [&h] {
      std::vector<telemetry::Sources::Instance> out;
      for (const auto& inst : h.current()->instances()) {
        const auto health = inst->health();
        out.push_back({inst->name(), health.mode, inst->shutting_down() ? "stopping" : health.state, health.restarts});
      }
      return out;
    };
    s.store_errors = [&h] { return static_cast<double>(h.state->errors()); };
    if (h.tasks) {
      s.tasks = [&h] {
        const auto c = h.tasks->counts();
        return telemetry::Sources::Tasks{static_cast<double>(c.created), static_cast<double>(c.completed), static_cast<double>(c.failed),
                                         static_cast<double>(c.cancelled), static_cast<double>(c.running)};
      };
    }
    h.telemetry->set_sources(std::move(s));
    if (const auto& otlp = h.config->telemetry.otlp; !otlp.endpoint.empty() && otlp.metrics_interval_ms > 0) {
      exporter_ = std::make_unique<telemetry::MetricsExporter>(h.telemetry->metrics(), collector(otlp),
                                                               std::chrono::milliseconds(otlp.metrics_interval_ms));
      spdlog::info("metrics to {} every {} ms (OTLP/HTTP)", otlp.endpoint, otlp.metrics_interval_ms);
    }
    if (h.config->telemetry.metrics_listen.empty()) return;
    auto server = http_stack::metrics_server(h.config->telemetry.metrics_listen, [t = h.telemetry.get()] { return t->prometheus(); });
    if (!server) {
      spdlog::error("{}", server.error());
      return;
    }
    server_ = std::move(*server);
    // Printed whatever the log level, like the MCP URL: where to point Prometheus.
    std::fprintf(stderr, "mcp-host metrics at %s\n", server_->url().c_str());
  }

 private:
  std::unique_ptr<telemetry::MetricsExporter> exporter_;  // sends once more when the host stops serving
  std::unique_ptr<telemetry::MetricsServer> server_;
};

int serve(const std::string& config_arg, const std::string& log_level, const std::string& transport_arg,
          const std::string& listen) {
  SignalWatcher::block();
  SignalWatcher signals;  // until serving: a signal ends the host at once
  auto host = start(config_arg, log_level, transport_arg, /*serving=*/true);
  if (!host) return fail(host.error());
  Host& h = **host;
  const auto& c = *h.config;
  const std::string transport = transport_arg.empty() ? c.server.transport : transport_arg;
  // As started, for the line that says so (not kept: a reload may retire it).
  const size_t tool_count = h.current()->tools().size(), instance_count = h.current()->instances().size();
  for (const auto& w : h.current()->long_name_warnings()) spdlog::warn("{}", w);
  auto reloading = std::make_optional<Reloading>(h, signals, log_level);
  auto metrics = std::make_optional<Metrics>(h);

  if (transport == "http") {
    config::HttpConfig http_config = c.server.http;
    if (!listen.empty()) http_config.listen = listen;
    std::optional<auth::OAuthOptions> oauth;
    if (transport::auth_mode(http_config.auth) == "oauth") {
      auto o = oauth_options(c, *h.engine, h.users, *h.state);
      if (!o) return fail(o.error());
      if (h.telemetry) o->on_sign_in = [t = h.telemetry.get()](const char* outcome) { t->sign_in(outcome); };
      oauth = std::move(*o);
    }
    auto made = http_stack::transport(*h.engine, http_config, [&] { return health(*h.current(), h.reloader->draining(), *h.engine, *h.state); },
                                      std::move(oauth), h.state.get());
    if (!made) return fail(made.error());
    transport::HttpServer& http = **made;
    if (h.telemetry && c.telemetry.metrics) http.serve_metrics([t = h.telemetry.get()] { return t->prometheus(); });
    if (h.telemetry) http.on_refused([t = h.telemetry.get()](int status, const std::string& reason) { t->refused(status, reason); });
    auto url = http.bind();
    if (!url) return fail(url.error());
    signals.on_signal([&] { http.stop(); });
    // Printed whatever the log level: the URL is what the user needs to connect.
    std::fprintf(stderr, "mcp-host %s serving %zu tools from %zu plugin instances at %s%s\n", kVersion,
                 tool_count, instance_count, url->c_str(), http_config.path.c_str());
    http.run();
    signals.on_signal(nullptr);  // a second signal while draining ends the host at once
    reloading.reset();
    return drain(h, [&] { metrics.reset(); });  // metrics last: its final OTLP export counts the drained calls
  }
  if (transport != "stdio") return fail("unknown transport '" + transport + "' (stdio or http)");
  transport::StdioTransport stdio(*h.engine);
  signals.on_signal([&] { stdio.stop(); });
  spdlog::info("mcp-host {} serving {} tools from {} plugin instances over stdio", kVersion, tool_count, instance_count);
  stdio.run();
  signals.on_signal(nullptr);
  reloading.reset();
  return drain(h, [&] { metrics.reset(); });
}

int list_tools(const std::string& config_arg, const std::string& log_level) {
  auto host = start(config_arg, log_level);
  if (!host) return fail(host.error());
  const auto& tools = (*host)->registry->tools();
  size_t w = 4;
  for (const auto& t : tools) w = std::max(w, t.public_name.size());
  std::printf("%-*s  %-16s  %s\n", static_cast<int>(w), "TOOL", "INSTANCE", "DESCRIPTION");
  for (const auto& t : tools) {
    std::string d = t.tool->description.substr(0, t.tool->description.find('\n'));
    if (d.size() > 70) d = d.substr(0, 67) + "...";
    std::printf("%-*s  %-16s  %s\n", static_cast<int>(w), t.public_name.c_str(), t.instance->name().c_str(), d.c_str());
  }
  std::printf("%zu tools from %zu plugin instances\n", tools.size(), (*host)->registry->instances().size());
  std::string as_tasks;  // the tools a client that takes MCP tasks gets a task for
  for (const auto& t : tools) {
    const bool required = t.task_support == plugins::TaskSupport::kRequired;
    if (!required && t.task_support != plugins::TaskSupport::kOptional) continue;
    as_tasks += (as_tasks.empty() ? "" : ", ") + t.public_name + (required ? " (required)" : " (optional)");
  }
  if (!as_tasks.empty()) std::printf("as MCP tasks: %s\n", as_tasks.c_str());
  for (const auto& inst : (*host)->registry->instances()) {
    const auto h = inst->health();
    if (h.mode != "process") continue;
    std::printf("instance %s: isolation process, pid %d, %s, %d restarts%s%s\n", inst->name().c_str(), h.pid, h.state.c_str(),
                h.restarts, h.last_failure.empty() ? "" : ", last failure: ", h.last_failure.c_str());
  }
  return 0;
}

// Prints progress and log notifications of a `call` to stderr.
class TerminalChannel final : public protocol::ReplyChannel {
 public:
  void send(const json& message) override {
    const auto& p = message.value("params", json::object());
    if (message.value("method", "") == "notifications/progress") {
      std::fprintf(stderr, "progress %s%s %s\n", p.value("progress", json()).dump().c_str(),
                   p.contains("total") ? ("/" + p["total"].dump()).c_str() : "",
                   p.value("message", "").c_str());
    } else if (message.value("method", "") == "notifications/message") {
      std::fprintf(stderr, "%s: %s\n", p.value("level", "").c_str(), p.value("data", json()).dump().c_str());
    }
  }
};

int call_tool(const std::string& config_arg, const std::string& log_level, const std::string& tool,
              const std::string& args_text) {
  json args = json::parse(args_text, nullptr, false);
  if (args.is_discarded() || !args.is_object()) return fail("--args must be a JSON object, e.g. '{\"text\":\"hi\"}'");
  SignalWatcher::block();
  SignalWatcher signals;
  auto host = start(config_arg, log_level);
  if (!host) return fail(host.error());
  auto& engine = *(*host)->engine;
  auto channel = std::make_shared<TerminalChannel>();
  auto session = std::make_shared<protocol::Session>();
  signals.on_signal([&] { (*host)->registry->begin_shutdown(); });
  engine.handle(json{{"jsonrpc", "2.0"}, {"id", 0}, {"method", "initialize"},
                     {"params", {{"protocolVersion", protocol::kLegacyVersions.front()}, {"capabilities", json::object()},
                                 {"clientInfo", {{"name", "mcp-host call"}, {"version", kVersion}}}}}},
                *session, channel);
  json reply = engine.handle(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                                  {"params", {{"name", tool}, {"arguments", args}, {"_meta", {{"progressToken", 1}}}}}},
                             *session, channel);
  signals.on_signal(nullptr);
  if (reply.contains("error")) return fail(reply["error"].value("message", "error"));
  const json& result = reply["result"];
  std::printf("%s\n", result.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  return result.value("isError", json()) == true ? 1 : 0;
}

// `mcp-host auth list|revoke GRANT`: the users' grants in the state store.
int auth_command(const std::string& config_arg, const std::string& log_level, const std::string& action, const std::string& grant) {
  auto host = start(config_arg, log_level);
  if (!host) return fail(host.error());
  auto o = oauth_options(*(*host)->config, *(*host)->engine, (*host)->users, *(*host)->state);
  if (!o) return fail(o.error());
  auth::OAuthServer server(std::move(*o), *(*host)->state);
  if (action == "list") {
    const auto grants = server.grants();
    for (const auto& g : grants) {
      std::printf("%s  user %s  client %s (%s)  since %lld\n", g["grant"].get<std::string>().c_str(),
                  g["principal"].get<std::string>().c_str(), g["client_id"].get<std::string>().c_str(),
                  g["client_name"].get<std::string>().c_str(), static_cast<long long>(g["created"].get<int64_t>()));
    }
    std::printf("%zu grants\n", grants.size());
    return 0;
  }
  if (grant.empty()) return fail("auth revoke needs a grant id (see mcp-host auth list)");
  if (!server.revoke_grant(grant)) return fail("no grant " + grant);
  std::printf("revoked %s: its tokens no longer work (hosts on the same PostgreSQL store at once; a host on SQLite within 30 s)\n",
              grant.c_str());
  return 0;
}

int check_config(const std::string& config_arg, const std::string& log_level) {
  auto host = start(config_arg, log_level);
  if (!host) return fail(host.error());
  if (auto st = (*host)->state->check(); !st) return fail(st.error());
  std::printf("ok  store            %s at %s\n", (*host)->state->backend().c_str(), (*host)->state->location().c_str());
  const auto& reg = *(*host)->registry;
  for (const auto& inst : reg.instances()) {
    std::printf("ok  %-16s %s %s (%zu tools) from %s\n", inst->name().c_str(), inst->library_name().c_str(),
                inst->library_version().c_str(), inst->tools().size(), inst->library_path().c_str());
    const auto& c = inst->config();
    if (c.isolation == "process") {
      std::printf("    isolation: process (pid %d): memory_mb %d, cpu_seconds_per_call %d, open_files %d; restart: max_per_minute %d, backoff_ms %d\n",
                  inst->health().pid, c.limits.memory_mb, c.limits.cpu_seconds_per_call, c.limits.open_files,
                  c.restart.max_per_minute, c.restart.backoff_ms);
    }
  }
  // The server's name in Claude Code is the user's choice there: this program's is assumed.
  for (const auto& w : reg.long_name_warnings()) std::printf("warn %s\n", w.c_str());
  std::printf("configuration OK: %zu plugin instances, %zu tools\n", reg.instances().size(), reg.tools().size());
  return 0;
}

// `mcp-host reload`: every host serving with the file's state_dir reads its configuration
// again (through its control socket) and says what changed, or why nothing did.
int reload_command(const std::string& config_arg, std::string state_dir) {
  if (state_dir.empty()) {
    const std::string path = find_config(config_arg);
    if (path.empty()) return fail("no configuration: pass --config FILE (or --state-dir DIR) to say which host to reload");
    auto dir = config::state_dir_of(path);  // the rest of the file may be broken: the hosts say so
    if (!dir) return fail(dir.error() + " (pass --state-dir DIR to reach the host anyway)");
    state_dir = *dir;
  }
  // A reload may create plugin instances, each within its create_timeout_ms.
  const auto replies = reload::ask_all(state_dir, "reload", std::chrono::minutes(2));
  if (replies.empty()) return fail("no mcp-host is serving with state_dir " + state_dir + " (no control socket in " + state_dir + "/control)");
  int status = 0;
  for (const auto& r : replies) {
    std::printf("mcp-host (pid %d): %s\n", r.pid, r.message.c_str());
    if (!r.ok) status = 1;
  }
  return status;
}

// `mcp-host keys rotate`: replicas on PostgreSQL get new current keys for what they seal
// (requestState, legacy session ids, users' credentials at rest), every grant's credentials
// are sealed again under the new key, and every running replica reloads. The previous keys
// keep opening what was sealed before, so nobody is logged out.
int keys_rotate(const std::string& config_arg, const std::string& log_level) {
  const std::string path = find_config(config_arg);
  if (path.empty()) return fail("no configuration: pass --config FILE or set MCP_HOST_CONFIG");
  auto loaded = config::load_file(path);
  if (!loaded) return fail(loaded.error());
  const config::Config& c = **loaded;
  if (auto st = services::setup_logging(log_level.empty() ? "warn" : log_level, c.log.format); !st) return fail(st.error());
  if (c.store.backend != "postgresql") {
    return fail("keys rotate is for replicas on store.backend: postgresql. A single host draws its requestState key at each start; "
                "its OAuth keys are files under state_dir (or set in the YAML)");
  }
  auto store = store::StateStore::open(c.store, c.state_dir);
  if (!store) return fail(store.error());
  if (auto st = (*store)->check(); !st) return fail(st.error());
  for (const char* name : {"request_state", "legacy_session"}) {
    if (auto r = store::rotate_shared_key(**store, name); !r) return fail(std::string(name) + ": " + r.error());
    std::printf("rotated  %s\n", name);
  }
  if (!c.server.http.auth.oauth.encryption_key.empty()) {
    std::printf("kept     the OAuth encryption_key set in the YAML (replace it there to change it)\n");
  } else {
    const std::string name = oauth_key_name("encryption.key");
    auto before = store::rotate_shared_key(**store, name);
    if (!before) return fail(name + ": " + before.error());
    auto now = store::shared_key(**store, name);
    if (!now) return fail(name + ": " + now.error());
    auto n = auth::reseal_credentials(**store, store::Keyring(*before), *now);
    if (!n) return fail("sealing the users' credentials again: " + n.error() + " (run keys rotate again)");
    std::printf("rotated  %s (%zu grants and sign-in forms sealed again)\n", name.c_str(), *n);
  }
  // Principal ids are derived with the signing key: a new one would make every returning
  // user someone new.
  std::printf("kept     the OAuth signing key (users' ids derive from it)\n");
  return 0;
}

// `mcp-host store migrate --from sqlite:DIR --to postgresql://...`: a single node's state
// (plugin state, OAuth clients, grants and tokens) and its OAuth keys into PostgreSQL, so
// every signed-in user keeps working on the replicas. Stop the host first.
int store_migrate(const std::string& from, std::string to) {
  if (!from.starts_with("sqlite:")) return fail("--from must be sqlite:DIR (the state_dir of a single host)");
  if (to.empty()) {
    const char* env = std::getenv("MCP_HOST_STORE_URL");
    to = env != nullptr ? env : "";
  }
  if (!to.starts_with("postgresql://") && !to.starts_with("postgres://")) {
    return fail("--to must be a postgresql:// URL (or set MCP_HOST_STORE_URL, which keeps the password off the command line)");
  }
  const std::string dir = from.substr(7);
  if (!std::filesystem::exists(std::filesystem::path(dir) / "state.db")) return fail("no state.db in " + dir);
  auto source = store::StateStore::open(dir);
  if (!source) return fail(source.error());
  config::StoreConfig cfg;
  cfg.backend = "postgresql";
  cfg.url = to;
  auto target = store::StateStore::open(cfg, "");
  if (!target) return fail(target.error());
  if (auto st = (*target)->check(); !st) return fail(st.error());
  // The OAuth keys first: the users' credentials are sealed with them. A target that
  // already has other keys (replicas ran on it) would strand one side's users: refuse.
  std::vector<std::pair<std::string, std::string>> keys;  // slot, key
  for (const char* file : {"signing.key", "encryption.key"}) {
    const std::string path = dir + "/" + file;
    if (!std::filesystem::exists(path)) continue;
    auto key = auth::load_or_create_key(path);
    if (!key) return fail(key.error());
    const std::string slot = store::shared_key_slot(oauth_key_name(file));
    auto existing = (*target)->get("host", slot);
    if (!existing) return fail(existing.error());
    if (existing->has_value() && **existing != *key) {
      return fail((*target)->location() + " already has another OAuth " + file + " (replicas ran on it); nothing was copied");
    }
    keys.emplace_back(slot, std::move(*key));
  }
  std::fprintf(stderr, "copying %s to %s ...\n", (*source)->location().c_str(), (*target)->location().c_str());
  auto rows = store::copy_rows(**source, **target, [](size_t n) { std::fprintf(stderr, "  %zu rows\n", n); });
  if (!rows) return fail(rows.error());
  for (const auto& [slot, key] : keys) {
    if (auto st = (*target)->put("host", slot, key); !st) return fail("copying the OAuth keys: " + st.error());
  }
  std::printf("copied %zu rows and %zu OAuth keys from %s to %s; checked\n", *rows, keys.size(), (*source)->location().c_str(),
              (*target)->location().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mcp-host: a small, fast Model Context Protocol host for plugin-provided tools"};
  app.set_version_flag("--version", std::string("mcp-host ") + mcph::kVersion);
  app.require_subcommand(0, 1);
  std::string config_path, log_level, transport, listen, tool, args = "{}";
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_path, "YAML configuration file (default: $MCP_HOST_CONFIG, ./mcp-host.yaml)");
    cmd->add_option("--log-level", log_level, "override log.level: trace|debug|info|warn|error|off");
  };
  add_common(&app);
  app.add_option("--transport", transport, "override server.transport: stdio | http");
  app.add_option("--listen", listen, "override server.http.listen, e.g. 127.0.0.1:8080 (port 0: any free port)");
  auto* serve_cmd = app.add_subcommand("serve", "serve MCP (the default command)");
  add_common(serve_cmd);
  serve_cmd->add_option("--transport", transport, "override server.transport: stdio | http");
  serve_cmd->add_option("--listen", listen, "override server.http.listen, e.g. 127.0.0.1:8080 (port 0: any free port)");
  auto* tools_cmd = app.add_subcommand("tools", "list the tools and the plugin instances that own them");
  add_common(tools_cmd);
  auto* call_cmd = app.add_subcommand("call", "call one tool and print its result (exit 1 if it is an error)");
  add_common(call_cmd);
  call_cmd->add_option("tool", tool, "tool name as clients see it")->required();
  call_cmd->add_option("-a,--args", args, "arguments as a JSON object")->capture_default_str();
  auto* check_cmd = app.add_subcommand("check-config", "validate the configuration and load every plugin");
  add_common(check_cmd);
  const mcph::plugin_check::Command plugin_check(app);  // `plugin check LIBRARY...`
  auto* auth_cmd = app.add_subcommand("auth", "the users' OAuth grants (HTTP with server.http.auth.mode: oauth)");
  auth_cmd->require_subcommand(1, 1);
  std::string grant_id;
  auto* auth_list = auth_cmd->add_subcommand("list", "list the grants: one per signed-in user and client");
  add_common(auth_list);
  auto* auth_revoke = auth_cmd->add_subcommand("revoke", "revoke a grant: its access and refresh tokens stop working");
  add_common(auth_revoke);
  auth_revoke->add_option("grant", grant_id, "grant id (from auth list)")->required();

  std::string reload_state_dir;
  auto* reload_cmd = app.add_subcommand("reload", "make the running hosts read their configuration again (like SIGHUP), and say what changed");
  add_common(reload_cmd);
  reload_cmd->add_option("--state-dir", reload_state_dir, "reach the hosts serving with this state_dir (default: the file's)");

  auto* keys_cmd = app.add_subcommand("keys", "the keys replicas share (store.backend: postgresql)");
  keys_cmd->require_subcommand(1, 1);
  auto* keys_rotate_cmd = keys_cmd->add_subcommand(
      "rotate", "new keys for requestState, legacy session ids and users' credentials; nobody is logged out");
  add_common(keys_rotate_cmd);

  auto* store_cmd = app.add_subcommand("store", "the state store");
  store_cmd->require_subcommand(1, 1);
  std::string migrate_from, migrate_to;
  auto* store_migrate_cmd = store_cmd->add_subcommand(
      "migrate", "copy a single host's state and OAuth keys into PostgreSQL (stop the host first)");
  store_migrate_cmd->add_option("--from", migrate_from, "sqlite:DIR, the host's state_dir")->required();
  store_migrate_cmd->add_option("--to", migrate_to, "postgresql://user:password@host:port/db (default: $MCP_HOST_STORE_URL)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*tools_cmd) return list_tools(config_path, log_level);
  if (*call_cmd) return call_tool(config_path, log_level, tool, args);
  if (*check_cmd) return check_config(config_path, log_level);
  if (plugin_check.chosen()) return plugin_check.run();
  if (*auth_list) return auth_command(config_path, log_level, "list", "");
  if (*auth_revoke) return auth_command(config_path, log_level, "revoke", grant_id);
  if (*store_migrate_cmd) return store_migrate(migrate_from, migrate_to);
  if (*keys_rotate_cmd) return keys_rotate(config_path, log_level);
  if (*reload_cmd) return reload_command(config_path, reload_state_dir);
  return serve(config_path, log_level, transport, listen);
}
