#include "plugin_check/check.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "isolation/process_instance.hpp"
#include "json/bounded.hpp"
#include "plugin_check/probe.hpp"
#include "plugins/library.hpp"
#include "http_stack/http_stack.hpp"
#include "services/logging.hpp"
#include "store/state_store.hpp"

namespace mcph::plugin_check {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif

// ---- Child side: reports as JSON lines on a pipe -----------------------------------------

int g_report_fd = -1;

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

class PipeReporter final : public Reporter {
 public:
  explicit PipeReporter(int fd) : fd_(fd) {}
  void stage(const std::string& what) override { send(json{{"stage", what}}); }
  void finding(const Finding& f) override { send(json{{"finding", to_json(f)}}); }
  void plugin(const json& info) override { send(json{{"plugin", info}}); }
  void done() { send(json{{"done", true}}); }

 private:
  void send(const json& j) { write_all(fd_, json_text::dump(j) + "\n"); }
  int fd_;
};

// Tells the parent which signal hit, then dies of it. Async-signal-safe: write and raise
// only. Under AddressSanitizer, which turns a crash into an exit, the line still arrives.
extern "C" void on_fatal_signal(int sig) {
  char line[32] = "{\"signal\":";
  size_t n = std::strlen(line);
  if (sig >= 10) line[n++] = static_cast<char>('0' + sig / 10);
  line[n++] = static_cast<char>('0' + sig % 10);
  line[n++] = '}';
  line[n++] = '\n';
  [[maybe_unused]] ssize_t w = ::write(g_report_fd, line, n);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

#if defined(__SANITIZE_ADDRESS__)
// In a sanitizer build a sanitizer turns a plugin's fault into a report and an exit.
extern "C" void on_sanitizer_death() {
  static const char line[] = "{\"sanitizer\":true}\n";
  [[maybe_unused]] ssize_t w = ::write(g_report_fd, line, sizeof line - 1);
}
#endif

[[noreturn]] void run_child(int fd, const ProbeOptions& options) {
  g_report_fd = fd;
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_set_death_callback(on_sanitizer_death);
#endif
  ::dup2(STDERR_FILENO, STDOUT_FILENO);  // a plugin's printf must not reach our stdout (--json)
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigaction(sig, &sa, nullptr);
  }
  PipeReporter reporter(fd);
  try {
    probe(options, reporter);
  } catch (const std::exception& e) {
    reporter.finding(Finding{Finding::Level::kError, "crash", std::string("an exception escaped the plugin: ") + e.what()});
  } catch (...) {
    reporter.finding(Finding{Finding::Level::kError, "crash", "an exception escaped the plugin"});
  }
  reporter.done();
  std::fflush(nullptr);
  ::_exit(0);  // no static destructors of plugin code: the parent has what it needs
}

// ---- Parent side ---------------------------------------------------------------------------

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  const char* desc = strsignal(sig);
  return std::string("SIG") + (abbrev != nullptr ? abbrev : std::to_string(sig)) + (desc != nullptr ? std::string(": ") + desc : "");
}

// Findings are one line each; a loader error may list the paths it tried on lines of their own.
std::string one_line(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    while (i + 1 < text.size() && text[i + 1] == ' ') ++i;
    out += ' ';
  }
  return out;
}

std::string count(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

struct ChildRun {
  std::string stage = "starting the check";
  bool done = false;
  int reported_signal = 0;
  bool sanitizer = false;  // a sanitizer stopped the child (sanitizer builds only)
  bool timed_out = false;
  int wait_status = 0;
};

// Reads the child's lines into `report` until it is done, dies or stalls in one step.
ChildRun supervise(pid_t pid, int fd, const CheckOptions& options, LibraryReport& report) {
  ChildRun run;
  std::string buffer;
  auto deadline = std::chrono::steady_clock::now() + options.step_timeout;
  auto take_line = [&](const std::string& line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    if (j.contains("stage")) {
      run.stage = j["stage"].get<std::string>();
      deadline = std::chrono::steady_clock::now() + options.step_timeout;  // each step gets the full time
    } else if (j.contains("finding")) {
      Finding f = finding_from_json(j["finding"]);
      f.message = one_line(f.message);
      report.findings.push_back(std::move(f));
    } else if (j.contains("plugin")) {
      report.plugin = j["plugin"];
    } else if (j.contains("signal")) {
      run.reported_signal = j["signal"].get<int>();
    } else if (j.contains("sanitizer")) {
      run.sanitizer = true;
    } else if (j.contains("done")) {
      run.done = true;
    }
  };
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the child closed its end: it exited
    buffer.append(chunk, static_cast<size_t>(n));
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos;) {
      take_line(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
  }
  // The pipe closed; the child exits now (or was killed). A plugin thread could hold the
  // process open after the probe finished: give it the step timeout, then kill it.
  const auto until = std::chrono::steady_clock::now() + options.step_timeout;
  while (::waitpid(pid, &run.wait_status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &run.wait_status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return run;
}

// The same library in its own process (isolation: process), as an operator may run it: it
// must start there and register the same tools as in the probe.
void check_isolated(const ProbeOptions& probe, const std::string& scratch, std::chrono::milliseconds timeout,
                    LibraryReport& report) {
  config::PluginConfig cfg;
  cfg.name = "check";
  cfg.library = probe.library;
  cfg.settings = probe.settings;
  cfg.credentials = probe.credentials;
  cfg.create_timeout_ms = static_cast<int>(timeout.count());
  cfg.isolation = "process";
  auto state = store::StateStore::open(scratch + "/isolated-state");
  if (!state) {
    report.findings.push_back({Finding::Level::kError, "isolation", state.error()});
    return;
  }
  http_stack::OutboundHttp http;
  auto inst = isolation::ProcessInstance::create(cfg, probe.search_dirs, plugins::Services{state->get(), &http, nullptr});
  if (!inst) {
    report.findings.push_back({Finding::Level::kError, "isolation", "does not start in its own process (isolation: process): " + inst.error()});
    return;
  }
  json names = json::array();
  for (const auto& t : (*inst)->tools()) names.push_back(t.name);
  const json expected = report.plugin.value("tools", json::array());
  if (names != expected) {
    report.findings.push_back({Finding::Level::kError, "isolation",
                               "registers other tools in its own process (isolation: process): " + names.dump() + " instead of " + expected.dump()});
    return;
  }
  report.findings.push_back({Finding::Level::kNote, "isolation",
                             "runs in its own process too (isolation: process), with the same " + std::to_string(names.size()) + " tools"});
}

}  // namespace

bool LibraryReport::ok() const {
  for (const auto& f : findings) {
    if (f.level == Finding::Level::kError) return false;
  }
  return true;
}

LibraryReport check_library(const std::string& library, const CheckOptions& options) {
  LibraryReport report;
  report.library = library;
  auto fail = [&](const char* check, std::string message) {
    report.findings.push_back(Finding{Finding::Level::kError, check, std::move(message)});
    return report;
  };

  ProbeOptions probe_options;
  std::error_code ec;
  probe_options.library = fs::is_regular_file(library, ec) ? fs::absolute(library, ec).string() : library;
  probe_options.search_dirs = plugins::default_search_dirs({});
  probe_options.settings = options.settings;
  probe_options.credentials = options.credentials;
  std::string scratch = (fs::temp_directory_path(ec) / "mcp-host-check-XXXXXX").string();
  if (::mkdtemp(scratch.data()) == nullptr) return fail("setup", "cannot make a scratch folder: " + std::string(std::strerror(errno)));
  probe_options.state_dir = scratch + "/state";

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail("setup", std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return fail("setup", std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(fds[1], probe_options);
  }
  ::close(fds[1]);
  ChildRun run = supervise(pid, fds[0], options, report);
  ::close(fds[0]);
  // When create refused the given settings (a note), there is no instance to compare.
  const bool created = std::none_of(report.findings.begin(), report.findings.end(), [](const Finding& f) { return f.check == "create"; });
  if (run.done && report.ok() && created) check_isolated(probe_options, scratch, options.step_timeout, report);
  fs::remove_all(scratch, ec);

  if (run.timed_out) {
    report.findings.push_back({Finding::Level::kError, "timeout",
                               "hung: no progress for " + seconds_text(options.step_timeout) + " while " + run.stage +
                                   " (the check killed it)"});
  } else if (!run.done) {
    const int st = run.wait_status;
    const int sig = WIFSIGNALED(st) ? WTERMSIG(st) : run.reported_signal;
    std::string message;
    if (sig != 0) {
      message = "crashed (" + signal_text(sig) + ") while " + run.stage;
    } else if (run.sanitizer) {
      message = "crashed (a sanitizer stopped it; its report is on stderr) while " + run.stage;
    } else if (WIFEXITED(st)) {
      message = "ended the process (exit status " + std::to_string(WEXITSTATUS(st)) + ") while " + run.stage +
                (kSanitizerBuild ? ": in this sanitizer build, most likely a sanitizer report (see stderr)"
                                 : ": a plugin must never exit the host");
    } else {
      message = "the check process ended unexpectedly while " + run.stage;
    }
    report.findings.push_back({Finding::Level::kError, "crash", message});
  }
  return report;
}

// ---- The command ----------------------------------------------------------------------

Command::Command(CLI::App& app) {
  auto* plugin = app.add_subcommand("plugin", "tools for plugin authors");
  plugin->require_subcommand(1);
  check_ = plugin->add_subcommand(
      "check", "check plugin libraries against the plugin contract (each in a child process; exit 1 on any error)");
  check_->add_option("library", libraries_, "plugin library: a path, or a bare name searched like `library:` in the YAML")
      ->required();
  check_->add_flag("--json", json_, "one JSON document on stdout instead of lines");
  check_->add_option("--timeout", timeout_s_, "seconds each step (load, create, destroy) may take")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  check_->add_option("--settings", settings_, "settings JSON object handed to create")->capture_default_str();
  check_->add_option("--credential", credentials_, "KEY=VALUE credential for the instances (repeatable)");
  check_->add_option("--log-level", log_level_, "show the plugin's host log lines at this level (default: off)");
}

bool Command::chosen() const { return check_ != nullptr && check_->parsed(); }

int Command::run() const {
  CheckOptions options;
  options.settings = json::parse(settings_, nullptr, false);
  if (options.settings.is_discarded() || !options.settings.is_object()) {
    std::fprintf(stderr, "mcp-host: --settings must be a JSON object, e.g. '{\"base_url\":\"http://127.0.0.1:9\"}'\n");
    return 2;
  }
  for (const auto& kv : credentials_) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "mcp-host: --credential takes KEY=VALUE, e.g. --credential api_token=t0k\n");
      return 2;
    }
    options.credentials[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  options.step_timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s_ * 1000));
  if (auto st = services::setup_logging(log_level_, "text"); !st) {
    std::fprintf(stderr, "mcp-host: %s\n", st.error().c_str());
    return 2;
  }

  bool all_ok = true;
  json out = json::array();
  for (const auto& lib : libraries_) {
    LibraryReport r = check_library(lib, options);
    all_ok = all_ok && r.ok();
    if (json_) {
      json findings = json::array();
      for (const auto& f : r.findings) findings.push_back(to_json(f));
      out.push_back(json{{"library", r.library}, {"ok", r.ok()}, {"plugin", r.plugin}, {"findings", findings}});
      continue;
    }
    size_t errors = 0, warnings = 0;
    for (const auto& f : r.findings) {
      std::printf("%s: %s: %s\n", r.library.c_str(), level_name(f.level), f.message.c_str());
      errors += f.level == Finding::Level::kError;
      warnings += f.level == Finding::Level::kWarning;
    }
    if (r.ok()) {
      const json& p = r.plugin;
      std::string offers = count(p.value("tools", json::array()).size(), "tool");
      for (const char* kind : {"resource", "prompt"}) {
        const size_t n = p.value(std::string(kind) + "s", json::array()).size();
        if (n > 0) offers += ", " + count(n, kind);
      }
      std::printf("%s: ok: %s %s (ABI %s), %s, %s\n", r.library.c_str(), p.value("name", "").c_str(),
                  p.value("version", "").c_str(), p.value("abi", "").c_str(), offers.c_str(),
                  count(warnings, "warning").c_str());
    } else {
      std::printf("%s: FAILED: %s, %s\n", r.library.c_str(), count(errors, "error").c_str(),
                  count(warnings, "warning").c_str());
    }
  }
  if (json_) std::printf("%s\n", json{{"ok", all_ok}, {"libraries", out}}.dump(2).c_str());
  std::fflush(stdout);
  return all_ok ? 0 : 1;
}

}  // namespace mcph::plugin_check
