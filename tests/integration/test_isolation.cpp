// Isolation: plugin instances with `isolation: process` run in a supervised child process.
// A crash, an exit, a memory hog, a CPU spinner or a handler that ignores its deadline ends
// only that child: the call gets a clear error, the instance restarts (or ends failed when
// it keeps crashing), and every other instance answers throughout. Against the real binary.
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "host_fixture.hpp"
#include "http_host.hpp"
#include "isolation/process_instance.hpp"
#include "isolation/wire.hpp"
#include "json/bounded.hpp"
#include "rpc.hpp"
#include "stdio_host.hpp"

namespace mcph::testing {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;


// Under AddressSanitizer a SIGSEGV is caught, reported, and the process exits with status 1.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MCPH_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(MCPH_TEST_ASAN)
const char* const kSegvEnds = "exited with status 1";
#else
const char* const kSegvEnds = "crashed (SIGSEGV)";
#endif

// A process that is gone (or a zombie nobody reaped yet).
bool process_gone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

std::string isolated(const std::string& extra = "") {
  return R"(  - name: echo
    library: example-echo
  - name: bad
    library: test-hostile
    isolation: process
    credentials: { api_token: "12345", org_id: "777777" }
)" + extra;
}

// The host over stdio, and the pid its isolated instance 'bad' runs in.
class StdioHost : public mcph::testing::StdioHost {
 public:
  using mcph::testing::StdioHost::StdioHost;
  int child_pid() {
    json r = ask(call("pid-" + std::to_string(++asked_), "pid"));
    const json& pid = r["result"]["structuredContent"];
    return pid.is_object() ? pid.value("pid", 0) : 0;  // 0 while it restarts
  }

 private:
  int asked_ = 0;
};

TEST(Isolation, AnIsolatedInstanceRunsInItsOwnProcessWithTheSameResults) {
  StdioHost host(isolated());
  const int pid = host.child_pid();
  EXPECT_GT(pid, 0);
  EXPECT_FALSE(process_gone(pid));
  // The same redaction as in the host: the token is a secret, the org id is public.
  json r = host.ask(call(2, "mirror", {{"value", {{"n", 12345}}}}));
  EXPECT_EQ(r["result"]["structuredContent"]["sentence"], "token [REDACTED] for org 777777") << r;
  EXPECT_EQ(r["result"]["structuredContent"]["value"]["n"], 12345) << r;
}

TEST(Isolation, ACrashIsAClearErrorWithinASecondAndTheInstanceRestarts) {
  StdioHost host(isolated());
  const int first = host.child_pid();
  for (const auto& [how, said] : {std::pair{"segv", kSegvEnds}, {"abort", "crashed (SIGABRT)"}, {"exit", "exited with status 3"}}) {
    const auto t0 = Clock::now();
    json r = host.ask(call(std::string("crash-") + how, "crash", {{"how", how}}));
    EXPECT_LT(seconds_since(t0), 1.0) << how;
    EXPECT_TRUE(r["result"]["isError"].get<bool>()) << r;
    EXPECT_EQ(text_of(r), std::string("plugin 'bad' ") + said + " during tool 'crash'; restarting") << r;
    // It comes back in a new process.
    int again = 0;
    EXPECT_TRUE(eventually([&] { return (again = host.child_pid()) > 0; }, 5s)) << host.p().stderr_text();
    EXPECT_NE(again, first);
  }
  EXPECT_NE(host.p().stderr_text().find("plugin instance 'bad' restarted"), std::string::npos);
}

TEST(Isolation, TheHealthyInstanceAnswersThroughoutACrash) {
  StdioHost host(isolated());
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, wrong{0};
  // Requests go out from this thread and another; responses are matched by id.
  std::thread echo_loop([&] {
    for (int i = 0; !stop; ++i) {
      host.p().send(call("e" + std::to_string(i), "echo", {{"text", "hi " + std::to_string(i)}}));
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(50ms);
  host.p().send(call("boom", "crash", {{"how", "segv"}}));
  std::this_thread::sleep_for(300ms);
  stop = true;
  echo_loop.join();
  json boom;
  for (json m; !(m = host.p().read(2s)).is_null();) {
    if (m["id"] == "boom") {
      boom = m;
      continue;
    }
    const std::string id = m["id"];
    if (text_of(m) == "hi " + id.substr(1)) {
      ++answered;
    } else {
      ++wrong;
    }
  }
  EXPECT_GT(answered.load(), 20);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_NE(text_of(boom).find(kSegvEnds), std::string::npos) << boom;
}

// The same over HTTP (2026-07-28, one POST per call): a client calling the healthy instance
// in a loop is answered throughout, the crashing call gets the clear error within a second,
// and the crashed instance answers again from its new process.
TEST(Isolation, OverHttpTheHealthyInstanceAnswersThroughoutACrash) {
  HttpHost host(isolated());
  // One keep-alive connection per client thread, as an MCP client holds one.
  auto post = [](httplib::Client& c, const std::string& tool, const json& args) {
    json body{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
              {"params", {{"name", tool}, {"arguments", args},
                          {"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                                     {"io.modelcontextprotocol/clientCapabilities", json::object()}}}}}};
    httplib::Headers headers{{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", tool}};
    return body_json(c.Post("/mcp", headers, body.dump(), "application/json"));
  };
  auto client = host.client();
  client->set_keep_alive(true);
  ASSERT_TRUE(post(*client, "pid", json::object()).contains("result")) << host.process().stderr_text();
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, wrong{0};
  std::thread echo_loop([&] {
    auto c = host.client();
    c->set_keep_alive(true);
    for (int i = 0; !stop; ++i) {
      const std::string text = "hi " + std::to_string(i);
      const json r = post(*c, "echo", {{"text", text}});
      if (r.is_object() && r.contains("result") && text_of(r) == text) {
        ++answered;
      } else if (wrong++ == 0) {
        ADD_FAILURE() << r;
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(50ms);
  const int before = answered.load();
  const auto t0 = Clock::now();
  json boom = post(*client, "crash", {{"how", "segv"}});
  EXPECT_LT(seconds_since(t0), 1.0);
  std::this_thread::sleep_for(200ms);
  stop = true;
  echo_loop.join();
  EXPECT_GT(answered.load(), before) << "the healthy instance stopped answering during the crash";
  EXPECT_EQ(wrong.load(), 0);
  ASSERT_TRUE(boom.contains("result")) << boom;
  EXPECT_TRUE(boom["result"]["isError"].get<bool>()) << boom;
  EXPECT_EQ(text_of(boom), std::string("plugin 'bad' ") + kSegvEnds + " during tool 'crash'; restarting") << boom;
  EXPECT_TRUE(eventually([&] {
    json r = post(*client, "pid", json::object());
    return r.contains("result") && !r["result"].value("isError", false);
  }, 5s)) << host.process().stderr_text();
}

int threads_of(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  return -1;
}

// Sends `n` calls of `tool` with `args` in one write, ids "<prefix>0".."<prefix>n-1".
void send_together(Process& p, const std::string& prefix, int n, const std::string& tool, const json& args) {
  std::string out;
  for (int i = 0; i < n; ++i) out += call(prefix + std::to_string(i), tool, args).dump() + "\n";
  p.write_raw(out);
}

// Calls in flight together on an isolated instance are started and answered without a
// thread of the host waiting for each (stdio's reader sends them, and finishes them as their
// answers come while it waits for input): forty half-second calls add only a few threads to
// the host.
TEST(Isolation, CallsInFlightTogetherHoldNoThreadOfTheHostEach) {
  StdioHost host(isolated());
  host.child_pid();
  const int idle = threads_of(host.p().pid());
  send_together(host.p(), "s", 40, "slow", {{"ms", 800}});
  std::this_thread::sleep_for(400ms);
  const int busy = threads_of(host.p().pid());
  auto answers = host.p().read_responses(40, 10s);
  ASSERT_EQ(answers.size(), 40u) << host.p().stderr_text();
  for (const auto& [id, r] : answers) EXPECT_EQ(text_of(r), "done") << id << r;
  EXPECT_GT(idle, 0);
  EXPECT_LE(busy - idle, 6) << idle << " threads idle, " << busy << " with 40 calls in flight";
}

// A transport's reader that waits for its input may read an isolated instance's answers
// meanwhile (Instance::lend_reader): the calls it started then finish on its own thread,
// and the instance's reader thread, which would otherwise wake for each batch, keeps off.
TEST(Isolation, AReaderThatWaitsForInputFinishesTheCallsItStartedItself) {
  HostFixture host;
  ASSERT_EQ(host.load("  - name: bad\n    library: test-hostile\n    isolation: process\n"), "");
  const plugins::Instance& bad = *host.registry->instances().front();
  EXPECT_EQ(bad.lend_reader(), nullptr) << "no call started: nothing to read for";
  uint32_t slow = 0;
  while (slow < bad.tools().size() && bad.tools()[slow].name != "slow") ++slow;
  ASSERT_LT(slow, bad.tools().size());
  mcph_call call;
  call.deadline = Clock::now() + 10s;
  std::promise<std::thread::id> finished;
  ASSERT_TRUE(bad.start("tool 'slow'", {plugins::HandlerRef::Kind::kTool, slow}, R"({"ms":300})", call,
                        [&] { finished.set_value(std::this_thread::get_id()); }));
  // The reader thread holds the reading until its next look (every 20 ms while calls are
  // started); asked for it, it lets go then, and keeps off while it is asked again within
  // 2 ms (a transport's reader asks at every wait).
  std::unique_ptr<plugins::Instance::LentReader> lent;
  for (const auto until = Clock::now() + 2s; !(lent = bad.lend_reader()) && Clock::now() < until;) std::this_thread::sleep_for(1ms);
  ASSERT_NE(lent, nullptr);
  EXPECT_EQ(bad.lend_reader(), nullptr) << "lent to one reader at a time";
  pollfd answer{lent->fd(), POLLIN, 0};
  ASSERT_EQ(poll(&answer, 1, 5000), 1);
  lent->serve();
  auto on = finished.get_future();
  ASSERT_EQ(on.wait_for(0s), std::future_status::ready) << "the answer was read, but the call is not finished";
  EXPECT_EQ(on.get(), std::this_thread::get_id());
  ASSERT_TRUE(call.has_outcome);
  EXPECT_EQ(text_of(json{{"result", json_text::built(std::move(call.result))}}), "done");
  lent.reset();  // the reading goes back: the instance serves on as before
  EXPECT_EQ(bad.lend_reader(), nullptr) << "no call started any more";
}

// A child that crashes with many calls in flight ends each of them with the clear error.
TEST(Isolation, ACrashEndsEveryCallInFlightWithTheClearError) {
  StdioHost host(isolated());
  const int first = host.child_pid();
  send_together(host.p(), "s", 10, "slow", {{"ms", 5000}});
  std::this_thread::sleep_for(100ms);
  const auto t0 = Clock::now();
  host.p().send(call("boom", "crash", {{"how", "segv"}}));
  auto answers = host.p().read_responses(11, 5s);
  EXPECT_LT(seconds_since(t0), 1.5);
  ASSERT_EQ(answers.size(), 11u) << host.p().stderr_text();
  for (int i = 0; i < 10; ++i) {
    const json& r = answers["s" + std::to_string(i)];
    EXPECT_TRUE(r["result"]["isError"].get<bool>()) << r;
    EXPECT_EQ(text_of(r), std::string("plugin 'bad' ") + kSegvEnds + " during tool 'slow'; restarting") << r;
  }
  int again = 0;
  EXPECT_TRUE(eventually([&] { return (again = host.child_pid()) > 0; }, 5s)) << host.p().stderr_text();
  EXPECT_NE(again, first);
}

// Past their deadline, calls in flight together are cancelled in the child: one that stops
// leaves its process be; one that ignores the cancellation has its process ended.
TEST(Isolation, CallsInFlightTogetherAreCancelledAtTheirDeadline) {
  StdioHost host(isolated(), "  call_timeout_ms: 300\n");
  const int first = host.child_pid();
  send_together(host.p(), "s", 4, "slow", {{"ms", 20000}});
  auto answers = host.p().read_responses(4, 5s);
  ASSERT_EQ(answers.size(), 4u) << host.p().stderr_text();
  // Each is answered at its deadline, or by its handler if it stopped first (a race).
  for (const auto& [id, r] : answers) {
    const std::string text = text_of(r);
    EXPECT_TRUE(text == "cancelled" || text.find("did not finish within 300 ms") != std::string::npos) << r;
  }
  // Cancelled, they returned: the process lives on (past the 1 s it would get otherwise).
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(host.child_pid(), first);
  EXPECT_EQ(host.p().stderr_text().find("ignored its cancellation"), std::string::npos) << host.p().stderr_text();

  send_together(host.p(), "t", 3, "stall", {{"ms", 20000}});
  answers = host.p().read_responses(3, 5s);
  ASSERT_EQ(answers.size(), 3u) << host.p().stderr_text();
  EXPECT_TRUE(eventually([&] { return process_gone(first); }, 3s));
  int again = 0;
  EXPECT_TRUE(eventually([&] { return (again = host.child_pid()) > 0 && again != first; }, 5s));
  EXPECT_NE(host.p().stderr_text().find("ignored its cancellation past its deadline"), std::string::npos);
}

TEST(Isolation, AnInstanceThatKeepsCrashingEndsFailed) {
  StdioHost host(isolated("    restart: { max_per_minute: 2, backoff_ms: 20 }\n"));
  for (int i = 0; i < 3; ++i) {
    json r = host.ask(call("c" + std::to_string(i), "crash", {{"how", "exit"}}));
    EXPECT_NE(text_of(r).find("exited with status 3"), std::string::npos) << r;
    if (i < 2) {
      EXPECT_TRUE(eventually([&] { return host.child_pid() > 0; }, 5s));
    }
  }
  json r = host.ask(call("after", "pid"));
  EXPECT_NE(text_of(r).find("plugin 'bad' is failed (exited with status 3)"), std::string::npos) << r;
  // It stays failed (no restart loop), and the other instance is fine.
  std::this_thread::sleep_for(300ms);
  EXPECT_NE(text_of(host.ask(call("after2", "pid"))).find("is failed"), std::string::npos);
  EXPECT_EQ(text_of(host.ask(call("e", "echo", {{"text", "ok"}}))), "ok");
}

TEST(Isolation, AHandlerThatIgnoresItsDeadlineIsEndedAndRestarted) {
  StdioHost host(isolated(), "  call_timeout_ms: 400\n");
  const int first = host.child_pid();
  const auto t0 = Clock::now();
  json r = host.ask(call("stall", "stall", {{"ms", 20000}}));
  EXPECT_LT(seconds_since(t0), 1.5);
  EXPECT_TRUE(r["result"]["isError"].get<bool>()) << r;
  // After the grace period the child is ended and replaced.
  EXPECT_TRUE(eventually([&] { return process_gone(first); }, 3s));
  int again = 0;
  EXPECT_TRUE(eventually([&] { return (again = host.child_pid()) > 0 && again != first; }, 5s));
  EXPECT_NE(host.p().stderr_text().find("ignored its cancellation past its deadline"), std::string::npos);
}

TEST(Isolation, ACallOverItsCpuLimitIsCancelledThenEnded) {
  StdioHost host(isolated("    limits: { cpu_seconds_per_call: 1 }\n"));
  const auto t0 = Clock::now();
  json r = host.ask(call("spin", "spin", {{"ms", 30000}}), 15s);
  EXPECT_LT(seconds_since(t0), 4.0);
  EXPECT_NE(text_of(r).find("used more than 1 s of CPU (limits.cpu_seconds_per_call)"), std::string::npos) << r;
  EXPECT_TRUE(eventually([&] { return host.child_pid() > 0; }, 5s));
}

TEST(Isolation, AMemoryHogIsEndedAndTheHostStaysSmall) {
  StdioHost host(isolated("    limits: { memory_mb: 300 }\n"));
  const long host_before = rss_kib(host.p().pid());
  json r = host.ask(call("hoard", "hoard", {{"mb", 600}, {"ms", 10000}}), 20s);
  EXPECT_NE(text_of(r).find("was ended for going over its memory limit"), std::string::npos) << r;
  EXPECT_NE(text_of(r).find("limits.memory_mb: 300"), std::string::npos) << r;
  EXPECT_LT(rss_kib(host.p().pid()) - host_before, 20 * 1024);
  EXPECT_TRUE(eventually([&] { return host.child_pid() > 0; }, 5s));
}

TEST(Isolation, KillNineOfTheHostLeavesNoChildBehind) {
  StdioHost host(isolated() + "  - name: bad2\n    library: test-hostile\n    tool_prefix: two_\n    isolation: process\n");
  const int one = host.child_pid();
  json r = host.ask(call("p2", "two_pid"));
  const int two = r["result"]["structuredContent"].value("pid", 0);
  ASSERT_GT(one, 0);
  ASSERT_GT(two, 0);
  host.p().signal(SIGKILL);
  host.p().wait();
  EXPECT_TRUE(eventually([&] { return process_gone(one) && process_gone(two); }, 3s));
}

TEST(Isolation, SigtermStopsTheChildrenAndExits) {
  StdioHost host(isolated());
  const int child = host.child_pid();
  host.p().signal(SIGTERM);
  EXPECT_EQ(host.p().wait(10s), 0) << host.p().stderr_text();
  EXPECT_TRUE(process_gone(child));
}

TEST(Isolation, SandboxStrictLeavesOnlyTheHostsServices) {
  httplib::Server upstream;
  upstream.Get("/page", [](const httplib::Request&, httplib::Response& res) { res.set_content("served upstream", "text/plain"); });
  const int port = upstream.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { upstream.listen_after_bind(); });
  StdioHost host(isolated("    sandbox: strict\n") +
                 "  - name: svc\n    library: test-services\n    isolation: process\n    sandbox: strict\n");
  json r = host.ask(call("esc", "escape"));
  const json& tried = r["result"]["structuredContent"];
  EXPECT_EQ(tried["open"], "Operation not permitted") << r;
  EXPECT_EQ(tried["socket"], "Operation not permitted") << r;
  EXPECT_EQ(tried["fork"], "Operation not permitted") << r;
  // The host's services still reach the outside world for it: HTTP and state; a crash
  // still reads as a crash.
  r = host.ask(call("fetch", "fetch", {{"url", "http://127.0.0.1:" + std::to_string(port) + "/page"}}));
  EXPECT_EQ(r["result"]["structuredContent"]["body"], "served upstream") << r;
  upstream.stop();
  serving.join();
  r = host.ask(call("put", "state", {{"op", "put"}, {"key", "k"}, {"value", "v"}}));
  EXPECT_EQ(r["result"]["structuredContent"]["ok"], true) << r;
  r = host.ask(call("get", "state", {{"op", "get"}, {"key", "k"}}));
  EXPECT_EQ(r["result"]["structuredContent"]["value"], "v") << r;
  r = host.ask(call("abort", "crash", {{"how", "abort"}}));
  EXPECT_NE(text_of(r).find("crashed (SIGABRT)"), std::string::npos) << r;
}

TEST(Isolation, WithoutTheSandboxTheChildMayDoWhatTheUserMay) {
  StdioHost host(isolated());
  json r = host.ask(call("esc", "escape"));
  EXPECT_EQ(r["result"]["structuredContent"]["open"], "allowed") << r;
}

TEST(Isolation, HealthzAndToolsShowTheModePidAndRestarts) {
  HttpHost host(isolated());
  auto c = host.client();
  json h = body_json(c->Get("/healthz"));
  json bad;
  for (const auto& i : h["plugins"]) {
    if (i["name"] == "bad") bad = i;
  }
  EXPECT_EQ(bad["isolation"], "process") << h;
  EXPECT_EQ(bad["state"], "running");
  EXPECT_GT(bad["pid"].get<int>(), 0);
  EXPECT_EQ(bad["restarts"], 0);
  EXPECT_EQ(h["plugins"][0]["isolation"], "none");

  auto [code, out] = run_command({MCPH_BINARY, "check-config", "--config", host.config_path()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("isolation: process"), std::string::npos) << out;
  EXPECT_NE(out.find("memory_mb 1024"), std::string::npos) << out;
}

TEST(Isolation, ConfigErrorsAreClear) {
  TempDir dir;
  const std::string cfg = dir.str() + "/mcp-host.yaml";
  auto check = [&](const std::string& plugins) {
    std::ofstream(cfg) << config_yaml(dir.str() + "/state", plugins);
    Process p({MCPH_BINARY, "check-config", "--config", cfg});
    EXPECT_EQ(p.wait(), 1);
    return p.stderr_text();
  };
  std::string err = check("  - name: e\n    library: example-echo\n    limits: { memory_mb: 10 }\n");
  EXPECT_NE(err.find("plugins[0].limits applies only with isolation: process"), std::string::npos) << err;
  err = check("  - name: e\n    library: example-echo\n    isolation: container\n");
  EXPECT_NE(err.find("isolation"), std::string::npos) << err;
  EXPECT_NE(err.find("container"), std::string::npos) << err;
  // A library that does not exist: the child says so, and the host names the instance.
  err = check("  - name: e\n    library: no-such-plugin\n    isolation: process\n");
  EXPECT_NE(err.find("plugin 'e'"), std::string::npos) << err;
  EXPECT_NE(err.find("no-such-plugin"), std::string::npos) << err;
}

// This process's children that run mcp-host-plugin (a vforked one shows up once it has exec'd).
std::set<int> runner_children() {
  std::set<int> pids;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream children(task.path() / "children");
    for (int pid; children >> pid;) {
      std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
      std::string argv0;
      std::getline(cmdline, argv0, '\0');
      if (argv0.ends_with("mcp-host-plugin")) pids.insert(pid);
    }
  }
  return pids;
}

// mcp-host starts isolated instances' processes as soon as it has read its configuration
// (isolation::prestart), so they load while it opens its store: the instance runs in the
// one started for it, and one that no instance took up is ended.
TEST(Isolation, PrestartedProcessesAreTheOnesInstancesRunIn) {
  TempDir dir;
  auto cfg = config::load_string(config_yaml(dir.str() + "/state", isolated()), dir.str());
  ASSERT_TRUE(cfg) << cfg.error();
  auto state = store::StateStore::open((*cfg)->state_dir);
  ASSERT_TRUE(state) << state.error();
  services::HttpClient http;
  const auto before = runner_children();
  isolation::prestart(**cfg);
  std::set<int> started;
  ASSERT_TRUE(eventually([&] { return (started = runner_children()).size() == before.size() + 1; }, 5s));
  for (int pid : before) started.erase(pid);
  auto registry = plugins::Registry::load(**cfg, plugins::Services{state->get(), &http, nullptr, nullptr});
  isolation::end_prestarted();
  ASSERT_TRUE(registry) << registry.error();
  const int running = (*registry)->instance("bad")->health().pid;
  EXPECT_EQ(running, *started.begin());

  isolation::prestart(**cfg);  // again: no instance will take this one up
  int unused = 0;
  ASSERT_TRUE(eventually([&] {
    for (int pid : runner_children()) {
      if (pid != running && !before.contains(pid)) unused = pid;
    }
    return unused != 0;
  }, 5s));
  isolation::end_prestarted();
  EXPECT_TRUE(process_gone(unused));  // and reaped: no zombie left
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(unused)));
  EXPECT_FALSE(process_gone(running));
}

// The runner, spoken to frame by frame: a call head it cannot read is answered with an
// error that says so, and the calls after it run as usual.
TEST(Isolation, TheRunnerAnswersAMalformedCallHeadWithAnErrorAndGoesOn) {
  const std::string runner = isolation::runner_path();
  ASSERT_FALSE(runner.empty());
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  char* argv[] = {const_cast<char*>(runner.c_str()), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, runner.c_str(), &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  isolation::Channel ch(fds[0]);
  using isolation::Msg;
  ASSERT_TRUE(ch.send(Msg::kCreate, 0,
                      json{{"name", "echo"}, {"library", "example-echo"}, {"search_dirs", json::array({MCPH_PLUGIN_DIR})},
                           {"credentials", json::object()}, {"settings", json::object()}, {"create_timeout_ms", 5000}}));
  isolation::Frame f;
  auto next = [&] {  // the next frame that is not a log line of the runner or the plugin
    while (ch.read(f)) {
      if (f.type != Msg::kLog) return true;
    }
    return false;
  };
  ASSERT_TRUE(next());
  ASSERT_EQ(f.type, Msg::kCreated);
  ASSERT_TRUE(f.head.value("ok", false)) << f.head.dump();
  const json good{{"kind", 0}, {"index", 0}, {"what", "tools/call 'echo'"}, {"deadline_ms", 5000}};
  json no_what = good, bad_kind = good, bad_what = good, bad_caller = good;
  no_what.erase("what");
  bad_kind["kind"] = "tool";
  bad_what["what"] = 1;
  bad_caller["caller"] = {{"token", 1}};
  uint32_t id = 0;
  for (const json& head : {no_what, bad_kind, bad_what, bad_caller, json::array()}) {
    ASSERT_TRUE(ch.send(Msg::kCall, ++id, head, R"({"text":"hi"})"));
    ASSERT_TRUE(next());
    EXPECT_EQ(f.type, Msg::kResult);
    EXPECT_EQ(f.id, id);
    EXPECT_TRUE(f.head.value("is_error", false));
    EXPECT_EQ(f.head.value("error_status", 0), MCPH_ERR_INTERNAL);
    EXPECT_TRUE(f.head.value("error_text", "").starts_with("malformed call frame")) << f.head.dump();
  }
  // A good head is read whether it is compact (as the host writes it: read as it lies), or
  // spaced, or has more members than are split as they lie (built, then read alike).
  json many = good;
  many.update({{"principal", "ann"}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
               {"state", "s"}, {"may_hand_over", false}, {"caller", {{"token", "t"}}}});
  for (const std::string& head : {good.dump(), good.dump(1), many.dump()}) {
    ASSERT_TRUE(ch.send_written(Msg::kCall, ++id, head, R"({"text":"hi"})"));
    ASSERT_TRUE(next());
    EXPECT_EQ(f.type, Msg::kResult);
    EXPECT_EQ(f.id, id);
    EXPECT_TRUE(f.head.is_null()) << head << " " << f.head.dump();  // a plain result: no head
    EXPECT_EQ(json::parse(f.body)["content"][0].value("text", ""), "hi") << head;
  }
  ch.shutdown();  // the host is gone: the runner exits
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
}

}  // namespace
}  // namespace mcph::testing
