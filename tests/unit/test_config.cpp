// Tests for config/config.hpp: defaults, the full schema, every error message with its exact
// line, interpolation, secrets staying out of messages, settings -> JSON, and paths.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace mcph::config {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Joins lines with '\n' so that a test can read line numbers off the list (first = line 1).
std::string yaml(std::initializer_list<std::string_view> lines) {
  std::string text;
  for (const auto line : lines) {
    text += line;
    text += '\n';
  }
  return text;
}

fs::path make_unique_temp_dir() {
  std::random_device rng;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const fs::path dir = fs::temp_directory_path() /
                         ("mcph-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
    if (fs::create_directory(dir)) return dir;
  }
  throw std::runtime_error("cannot create a temporary directory");
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_unique_temp_dir();
    if (const char* home = std::getenv("HOME")) saved_home_ = home;
    home_ = dir_ / "home";
    set_env("HOME", home_.string());
  }

  void TearDown() override {
    for (const auto& name : env_names_) ::unsetenv(name.c_str());
    if (saved_home_) ::setenv("HOME", saved_home_->c_str(), 1);
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void set_env(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    env_names_.push_back(name);
  }

  fs::path write_file(const std::string& name, const std::string& contents) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  Result<std::shared_ptr<const Config>> load(const std::string& text) {
    return load_string(text, dir_.string(), "cfg.yaml");
  }

  // Loads text that must be valid.
  std::shared_ptr<const Config> load_ok(const std::string& text) {
    auto config = load(text);
    EXPECT_TRUE(config.ok()) << config.error();
    return config.ok() ? *config : nullptr;
  }

  // Loads text that must fail; returns the message.
  std::string load_error(const std::string& text) {
    auto config = load(text);
    EXPECT_FALSE(config.ok()) << "expected an error for:\n" << text;
    return config.ok() ? std::string() : config.error();
  }

  std::string in_dir(const std::string& relative) const {
    return (dir_ / relative).lexically_normal().string();
  }
  std::string in_home(const std::string& relative) const {
    return (home_ / relative).lexically_normal().string();
  }

  fs::path dir_;
  fs::path home_;

 private:
  std::vector<std::string> env_names_;
  std::optional<std::string> saved_home_;
};

void expect_defaults(const Config& config) {
  const Config defaults;
  EXPECT_EQ(config.log.level, "info");
  EXPECT_EQ(config.log.format, "text");
  EXPECT_TRUE(config.plugin_paths.empty());
  EXPECT_EQ(config.server.transport, "stdio");
  EXPECT_EQ(config.server.page_size, 100);
  EXPECT_EQ(config.server.max_concurrent_calls, 64);
  EXPECT_EQ(config.server.call_timeout_ms, 300000);
  EXPECT_EQ(config.server.shutdown_grace_ms, 5000);
  EXPECT_TRUE(config.plugins.empty());
}

// ---- Defaults ----------------------------------------------------------------------------

TEST_F(ConfigTest, EmptyTextGivesDefaults) {
  auto config = load_ok("");
  ASSERT_TRUE(config);
  expect_defaults(*config);
  EXPECT_EQ(config->source, "cfg.yaml");
  EXPECT_EQ(config->state_dir, in_home(".local/state/mcp-host"));
}

TEST_F(ConfigTest, OnlyCommentsGivesDefaults) {
  auto config = load_ok(yaml({"# mcp-host configuration", "", "   # nothing set yet"}));
  ASSERT_TRUE(config);
  expect_defaults(*config);
  EXPECT_EQ(config->state_dir, in_home(".local/state/mcp-host"));
}

TEST_F(ConfigTest, EmptySectionsKeepDefaults) {
  auto config = load_ok(yaml({"log:", "server:", "plugin_paths:", "plugins:"}));
  ASSERT_TRUE(config);
  expect_defaults(*config);
}

TEST_F(ConfigTest, SourceNameDefaultsToString) {
  auto config = load_string("", dir_.string());
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ((*config)->source, "<string>");
}

// ---- A full valid file -------------------------------------------------------------------

TEST_F(ConfigTest, FullValidFile) {
  set_env("MCPH_CFGTEST_FULL_TOKEN", "tok-123");
  auto config = load_ok(yaml({
      "state_dir: state",                                                             // 1
      "log: { level: debug, format: json }",                                          // 2
      "plugin_paths: [plugins, /opt/mcp/plugins]",                                    // 3
      "server:",                                                                      // 4
      "  transport: http",                                                            // 5
      "  page_size: 50",                                                              // 6
      "  max_concurrent_calls: 8",                                                    // 7
      "  call_timeout_ms: 1000",                                                      // 8
      "  shutdown_grace_ms: 0",                                                       // 9
      "plugins:",                                                                     // 10
      "  - name: echo",                                                               // 11
      "    library: example-echo",                                                    // 12
      "    enabled: false",                                                           // 13
      "    tool_prefix: \"echo.\"",                                                   // 14
      "    tools: { allow: [say, shout], deny: [whisper] }",                          // 15
      "    credentials: { api_token: \"${MCPH_CFGTEST_FULL_TOKEN}\", user: alice }",  // 16
      "    settings:",                                                                // 17
      "      greeting: hello",                                                        // 18
      "  - name: second_one-2.0",                                                     // 19
      "    library: ./libsecond.so",                                                  // 20
  }));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->state_dir, in_dir("state"));
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.format, "json");
  EXPECT_EQ(config->plugin_paths, (std::vector<std::string>{in_dir("plugins"), "/opt/mcp/plugins"}));
  EXPECT_EQ(config->server.transport, "http");
  EXPECT_EQ(config->server.page_size, 50);
  EXPECT_EQ(config->server.max_concurrent_calls, 8);
  EXPECT_EQ(config->server.call_timeout_ms, 1000);
  EXPECT_EQ(config->server.shutdown_grace_ms, 0);

  ASSERT_EQ(config->plugins.size(), 2u);
  const PluginConfig& echo = config->plugins[0];
  EXPECT_EQ(echo.name, "echo");
  EXPECT_EQ(echo.library, "example-echo");
  EXPECT_FALSE(echo.enabled);
  EXPECT_EQ(echo.tool_prefix, "echo.");
  EXPECT_EQ(echo.tools.allow, (std::vector<std::string>{"say", "shout"}));
  EXPECT_EQ(echo.tools.deny, (std::vector<std::string>{"whisper"}));
  EXPECT_EQ(echo.credentials,
            (std::map<std::string, std::string>{{"api_token", "tok-123"}, {"user", "alice"}}));
  EXPECT_EQ(echo.settings, json({{"greeting", "hello"}}));
  EXPECT_EQ(echo.line, 11);

  const PluginConfig& second = config->plugins[1];
  EXPECT_EQ(second.name, "second_one-2.0");
  EXPECT_EQ(second.library, "./libsecond.so");  // a library is not a folder: kept as written
  EXPECT_TRUE(second.enabled);
  EXPECT_EQ(second.tool_prefix, "");
  EXPECT_TRUE(second.tools.allow.empty());
  EXPECT_TRUE(second.tools.deny.empty());
  EXPECT_TRUE(second.credentials.empty());
  EXPECT_EQ(second.settings, json::object());
  EXPECT_EQ(second.line, 19);
}

TEST_F(ConfigTest, LoadFileResolvesAgainstItsFolder) {
  fs::create_directory(dir_ / "etc");
  write_file("etc/token.txt", "from-file\n");
  const fs::path path = write_file("etc/mcp-host.yaml", yaml({
                                                            "plugin_paths: [plugins, ../shared]",
                                                            "plugins:",
                                                            "  - name: a",
                                                            "    library: a",
                                                            "    credentials: { t: \"${file:token.txt}\" }",
                                                        }));
  auto config = load_file(path.string());
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ((*config)->source, path.string());
  EXPECT_EQ((*config)->plugin_paths, (std::vector<std::string>{in_dir("etc/plugins"), in_dir("shared")}));
  EXPECT_EQ((*config)->plugins.at(0).credentials.at("t"), "from-file");
}

TEST_F(ConfigTest, LoadFileReportsErrorsWithThePath) {
  const fs::path path = write_file("bad.yaml", yaml({"log:", "  level: loud"}));
  auto config = load_file(path.string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error(),
            path.string() + ":2: log.level must be one of trace, debug, info, warn, error, off (got 'loud')");
}

TEST_F(ConfigTest, MissingFile) {
  auto config = load_file("x.yaml-does-not-exist");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error(), "cannot read config file 'x.yaml-does-not-exist': No such file or directory");
}

TEST_F(ConfigTest, ConfigPathIsADirectory) {
  auto config = load_file(dir_.string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error(), "cannot read config file '" + dir_.string() + "': Is a directory");
}

// ---- Type errors, each with its exact line -----------------------------------------------

struct ErrorCase {
  std::string yaml;
  std::string expected;
};

class ConfigErrorTest : public ConfigTest {
 protected:
  void expect_errors(const std::vector<ErrorCase>& cases) {
    for (const auto& c : cases) {
      SCOPED_TRACE(c.yaml);
      EXPECT_EQ(load_error(c.yaml), c.expected);
    }
  }
};

TEST_F(ConfigErrorTest, TopLevelMustBeAMapping) {
  expect_errors({
      {yaml({"- a", "- b"}), "cfg.yaml:1: the top level must be a mapping"},
      {yaml({"# comment", "just a string"}), "cfg.yaml:2: the top level must be a mapping"},
  });
}

TEST_F(ConfigErrorTest, TopLevelTypes) {
  expect_errors({
      {yaml({"log: {}", "state_dir: [a, b]"}), "cfg.yaml:2: state_dir must be a string"},
      {yaml({"state_dir:"}), "cfg.yaml:1: state_dir must be a string, not null (quote it: \"~\", \"\")"},
      {yaml({"state_dir: \"\""}), "cfg.yaml:1: state_dir must not be empty"},
      {yaml({"server: {}", "log: [info]"}), "cfg.yaml:2: log must be a mapping"},
      {yaml({"plugin_paths: /opt/plugins"}), "cfg.yaml:1: plugin_paths must be a list"},
      {yaml({"plugin_paths:", "  - a", "  - { b: c }"}), "cfg.yaml:3: plugin_paths[1] must be a string"},
      {yaml({"server: stdio"}), "cfg.yaml:1: server must be a mapping"},
      {yaml({"plugins: { name: echo }"}), "cfg.yaml:1: plugins must be a list"},
  });
}

TEST_F(ConfigErrorTest, LogTypes) {
  expect_errors({
      {yaml({"log:", "  level: info", "  format: 5"}),
       "cfg.yaml:3: log.format must be one of text, json (got '5')"},
      {yaml({"log:", "  level: [info]"}), "cfg.yaml:2: log.level must be a string"},
      {yaml({"log:", "  level: verbose"}),
       "cfg.yaml:2: log.level must be one of trace, debug, info, warn, error, off (got 'verbose')"},
  });
}

TEST_F(ConfigTest, TelemetrySection) {
  ::setenv("MCPH_TEST_OTLP_KEY", "otlp-key-1", 1);
  auto config = load_ok(yaml({"telemetry:", "  audit_log: logs/audit.jsonl", "  otlp:", "    endpoint: http://collector:4318/base",
                              "    headers: { x-key: \"${MCPH_TEST_OTLP_KEY}\" }", "    sampling: 0.25", "    batch_delay_ms: 100",
                              "    metrics_interval_ms: 0", "plugins:", "  - name: a", "    library: b", "    record_arguments: true"}));
  ASSERT_TRUE(config);
  const auto& t = config->telemetry;
  EXPECT_EQ(t.audit_log, (dir_ / "logs/audit.jsonl").string());
  EXPECT_EQ(t.otlp.endpoint, "http://collector:4318/base");
  EXPECT_EQ(t.otlp.headers.at("x-key"), "otlp-key-1");
  EXPECT_EQ(t.otlp.sampling, 0.25);
  EXPECT_EQ(t.otlp.batch_delay_ms, 100);
  EXPECT_EQ(t.otlp.queue_size, 2048);
  EXPECT_EQ(t.otlp.metrics_interval_ms, 0);
  EXPECT_EQ(load_ok("")->telemetry.otlp.metrics_interval_ms, 60000);
  EXPECT_TRUE(config->plugins[0].record_arguments);
  EXPECT_EQ(load_ok(yaml({"telemetry: { audit_log: stderr }"}))->telemetry.audit_log, "stderr");
  EXPECT_FALSE(load_ok("")->plugins.size() > 0 && load_ok("")->plugins[0].record_arguments);
  EXPECT_TRUE(load_ok("")->telemetry.otlp.endpoint.empty());
}

TEST_F(ConfigErrorTest, TelemetryTypes) {
  expect_errors({
      {yaml({"telemetry:", "  otlp: { endpoint: collector:4318 }"}),
       "cfg.yaml:2: telemetry.otlp.endpoint must be the base URL of an OTLP/HTTP receiver, e.g. http://localhost:4318"},
      {yaml({"telemetry:", "  otlp:", "    sampling: 1.5"}), "cfg.yaml:3: telemetry.otlp.sampling must be a number between 0 and 1 (got 1.5)"},
      {yaml({"telemetry:", "  otlp:", "    sampling: half"}), "cfg.yaml:3: telemetry.otlp.sampling must be a number between 0 and 1 (got half)"},
      {yaml({"telemetry:", "  otlp:", "    queue_size: 0"}), "cfg.yaml:3: telemetry.otlp.queue_size must be an integer between 1 and 1000000 (got 0)"},
      {yaml({"telemetry:", "  otlp:", "    headers: [a]"}), "cfg.yaml:3: telemetry.otlp.headers must be a mapping"},
      {yaml({"telemetry:", "  otlp:", "    metrics_interval_ms: -1"}),
       "cfg.yaml:3: telemetry.otlp.metrics_interval_ms must be an integer between 0 and 86400000 (got -1)"},
  });
}

TEST_F(ConfigErrorTest, ServerTypesAndRanges) {
  expect_errors({
      {yaml({"server:", "  transport: stdio", "  page_size: lots"}),
       "cfg.yaml:3: server.page_size must be an integer"},
      {yaml({"server:", "  page_size: \"100\""}), "cfg.yaml:2: server.page_size must be an integer"},
      {yaml({"server:", "  page_size: 2.5"}), "cfg.yaml:2: server.page_size must be an integer"},
      {yaml({"server:", "  page_size: [1]"}), "cfg.yaml:2: server.page_size must be an integer"},
      {yaml({"server:", "  page_size: 0"}),
       "cfg.yaml:2: server.page_size must be an integer between 1 and 1000 (got 0)"},
      {yaml({"server:", "  page_size: 1001"}),
       "cfg.yaml:2: server.page_size must be an integer between 1 and 1000 (got 1001)"},
      {yaml({"server:", "  max_concurrent_calls: 4097"}),
       "cfg.yaml:2: server.max_concurrent_calls must be an integer between 1 and 4096 (got 4097)"},
      {yaml({"server:", "  call_timeout_ms: 0"}),
       "cfg.yaml:2: server.call_timeout_ms must be an integer >= 1 (got 0)"},
      {yaml({"server:", "  call_timeout_ms: 99999999999999999999999"}),
       "cfg.yaml:2: server.call_timeout_ms must be an integer <= 2147483647 (got 99999999999999999999999)"},
      {yaml({"server:", "  shutdown_grace_ms: -1"}),
       "cfg.yaml:2: server.shutdown_grace_ms must be an integer >= 0 (got -1)"},
      // An empty value is reported on its key's line, not on the next line.
      {yaml({"server:", "  shutdown_grace_ms:", "  page_size: 5"}),
       "cfg.yaml:2: server.shutdown_grace_ms must be an integer"},
  });
}

TEST_F(ConfigTest, ServerRangeBoundsAreAccepted) {
  auto config = load_ok(yaml({"server:", "  page_size: 1000", "  max_concurrent_calls: +4096",
                              "  call_timeout_ms: 2147483647", "  shutdown_grace_ms: 0"}));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->server.page_size, 1000);
  EXPECT_EQ(config->server.max_concurrent_calls, 4096);
  EXPECT_EQ(config->server.call_timeout_ms, 2147483647);
  EXPECT_EQ(config->server.shutdown_grace_ms, 0);
}

TEST_F(ConfigErrorTest, InvalidTransport) {
  expect_errors({
      {yaml({"server:", "  transport: carrier-pigeon"}),
       "cfg.yaml:2: server.transport must be one of stdio, http (got 'carrier-pigeon')"},
  });
}

TEST_F(ConfigErrorTest, PluginTypes) {
  expect_errors({
      {yaml({"plugins:", "  - echo"}), "cfg.yaml:2: plugins[0] must be a mapping"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    enabled: yes"}),
       "cfg.yaml:4: plugins[0].enabled must be a boolean"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    enabled: \"true\""}),
       "cfg.yaml:4: plugins[0].enabled must be a boolean"},
      {yaml({"plugins:", "  - name: [echo]", "    library: e"}),
       "cfg.yaml:2: plugins[0].name must be a string"},
      {yaml({"plugins:", "  - name: \"bad name\"", "    library: e"}),
       "cfg.yaml:2: plugins[0].name must match [A-Za-z0-9_.-]+ (got 'bad name')"},
      {yaml({"plugins:", "  - name: \"\"", "    library: e"}),
       "cfg.yaml:2: plugins[0].name must match [A-Za-z0-9_.-]+ (got '')"},
      {yaml({"plugins:", "  - name: echo", "    library:"}),
       "cfg.yaml:3: plugins[0].library must be a string, not null (quote it: \"~\", \"\")"},
      {yaml({"plugins:", "  - name: echo", "    library: \"\""}),
       "cfg.yaml:3: plugins[0].library must not be empty"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    tool_prefix: \"a b\""}),
       "cfg.yaml:4: plugins[0].tool_prefix may contain only letters, digits, '_', '.' and '-'"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    tools: [say]"}),
       "cfg.yaml:4: plugins[0].tools must be a mapping"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    tools: { allow: say }"}),
       "cfg.yaml:4: plugins[0].tools.allow must be a list"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    tools:", "      deny:", "        - a",
             "        - [b]"}),
       "cfg.yaml:7: plugins[0].tools.deny[1] must be a string"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    credentials: [a]"}),
       "cfg.yaml:4: plugins[0].credentials must be a mapping"},
      {yaml({"plugins:", "  - name: echo", "    library: e",
             "    credentials:", "      token: { nested: x }"}),
       "cfg.yaml:5: plugins[0].credentials.token must be a string"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    credentials:", "      token:"}),
       "cfg.yaml:5: plugins[0].credentials.token must be a string, not null (quote it: \"~\", \"\")"},
      {yaml({"plugins:", "  - name: echo", "    library: e", "    settings: [1, 2]"}),
       "cfg.yaml:4: plugins[0].settings must be a mapping"},
      {yaml({"plugins:", "  - name: a", "    library: a", "  - name: b", "    library: b", "    enabled: 1"}),
       "cfg.yaml:6: plugins[1].enabled must be a boolean"},
  });
}

TEST_F(ConfigErrorTest, UnknownKeysAtEveryLevel) {
  expect_errors({
      {yaml({"log: {}", "servers: {}"}),
       "cfg.yaml:2: unknown key 'servers' at top level (known: state_dir, store, tasks, reload, telemetry, log, plugin_paths, "
       "server, plugins)"},
      {yaml({"log:", "  level: info", "  colour: true"}),
       "cfg.yaml:3: unknown key 'colour' in log (known: level, format)"},
      {yaml({"server:", "  page_size: 5", "  transprt: stdio"}),
       "cfg.yaml:3: unknown key 'transprt' in server (known: transport, page_size, list_ttl_ms, max_concurrent_calls, "
       "max_queued_calls, call_timeout_ms, shutdown_grace_ms, http)"},
      {yaml({"server: { page_size: 5, pagesize: 6 }"}),
       "cfg.yaml:1: unknown key 'pagesize' in server (known: transport, page_size, list_ttl_ms, max_concurrent_calls, "
       "max_queued_calls, call_timeout_ms, shutdown_grace_ms, http)"},
      {yaml({"plugins:", "  - name: a", "    library: b", "  - name: c", "    library: d",
             "    enable: true"}),
       "cfg.yaml:6: unknown key 'enable' in plugins[1] (known: name, library, enabled, tool_prefix, tools, "
       "credentials, settings, max_concurrent_calls, create_timeout_ms, isolation, limits, restart, sandbox, "
       "record_arguments, task_support)"},
      {yaml({"plugins:", "  - name: a", "    library: b", "    tools:", "      allow: []",
             "      block: [x]"}),
       "cfg.yaml:6: unknown key 'block' in plugins[0].tools (known: allow, deny)"},
  });
}

TEST_F(ConfigErrorTest, DuplicateKeys) {
  expect_errors({
      {yaml({"server:", "  page_size: 5", "  page_size: 6"}),
       "cfg.yaml:3: duplicate key 'page_size' in server (first at line 2)"},
      {yaml({"log: {}", "plugins: []", "log: {}"}),
       "cfg.yaml:3: duplicate key 'log' at top level (first at line 1)"},
      {yaml({"plugins:", "  - name: a", "    library: b", "    credentials:", "      t: x", "      t: y"}),
       "cfg.yaml:6: duplicate key 't' in plugins[0].credentials (first at line 5)"},
      {yaml({"plugins:", "  - name: a", "    library: b", "    settings: { a: { b: 1, b: 2 } }"}),
       "cfg.yaml:4: duplicate key 'b' in plugins[0].settings.a (first at line 4)"},
  });
}

TEST_F(ConfigErrorTest, NonStringKeys) {
  expect_errors({
      {yaml({"log: {}", "? [a, b]", ": c"}), "cfg.yaml:2: keys at top level must be strings"},
  });
}

TEST_F(ConfigErrorTest, DuplicatePluginName) {
  expect_errors({
      {yaml({"plugins:", "  - name: echo", "    library: a", "  - name: other", "    library: b",
             "  - library: c", "    name: echo"}),
       "cfg.yaml:7: duplicate plugin name 'echo' (first at line 2)"},
  });
}

TEST_F(ConfigErrorTest, MissingRequiredKeys) {
  expect_errors({
      {yaml({"plugins:", "  - name: a", "    library: b", "  - library: c", "    enabled: true"}),
       "cfg.yaml:4: plugins[1] is missing required key 'name'"},
      {yaml({"plugins:", "  - name: a"}), "cfg.yaml:2: plugins[0] is missing required key 'library'"},
      {yaml({"plugins:", "  - {}"}), "cfg.yaml:2: plugins[0] is missing required key 'name'"},
  });
}

TEST_F(ConfigErrorTest, YamlSyntaxErrorsNameTheLine) {
  expect_errors({
      {yaml({"server:", "  transport: stdio", "  page_size: 5", "   extra: 1"}),
       "cfg.yaml:4: YAML syntax error: illegal map value"},
      {yaml({"log:", "  level: info", "  format: text: json"}),
       "cfg.yaml:3: YAML syntax error: illegal map value"},
      {yaml({"a: 1", "b: *missing"}), "cfg.yaml:2: YAML syntax error: the referenced anchor is not defined"},
  });
}

TEST_F(ConfigErrorTest, OnlyOneDocument) {
  expect_errors({
      {yaml({"log: {}", "---", "server: {}"}), "cfg.yaml:3: only one YAML document is allowed"},
      // yaml-cpp 0.7 would loop for ever on these (found by fuzz_config).
      {yaml({",{"}), "cfg.yaml:1: YAML syntax error: unexpected ',' at column 1"},
      {yaml({"# a comment", "  , ["}), "cfg.yaml:2: YAML syntax error: unexpected ',' at column 3"},
  });
}

TEST_F(ConfigTest, GarbageNeverThrows) {
  const std::vector<std::string> inputs = {
      "{{{{", "\x01\x02\x03", "key: [\"unterminated", "\t- tab", std::string(10000, '['), "a: &x\n  - *x\n",
  };
  for (const auto& input : inputs) {
    SCOPED_TRACE(input.substr(0, 40));
    Result<std::shared_ptr<const Config>> config = Error{""};
    EXPECT_NO_THROW(config = load(input));
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().rfind("cfg.yaml:", 0), 0u) << config.error();
  }
}

// ---- Interpolation -----------------------------------------------------------------------

TEST_F(ConfigTest, InterpolateVariables) {
  set_env("MCPH_CFGTEST_SET", "value");
  set_env("MCPH_CFGTEST_EMPTY", "");
  ::unsetenv("MCPH_CFGTEST_UNSET");
  const std::string base = dir_.string();

  EXPECT_EQ(*interpolate("a-${MCPH_CFGTEST_SET}-b", base), "a-value-b");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_SET}${MCPH_CFGTEST_SET}", base), "valuevalue");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_SET:-def}", base), "value");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_UNSET:-def}", base), "def");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_EMPTY:-def}", base), "def");  // like the shell's :-
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_UNSET:-}", base), "");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_UNSET:-a b:-c}", base), "a b:-c");
  EXPECT_EQ(*interpolate("${MCPH_CFGTEST_EMPTY}", base), "");  // set but empty is not an error

  auto unset = interpolate("x ${MCPH_CFGTEST_UNSET} y", base);
  ASSERT_FALSE(unset.ok());
  EXPECT_EQ(unset.error(),
            "environment variable MCPH_CFGTEST_UNSET is not set (use ${MCPH_CFGTEST_UNSET:-} for an optional "
            "value)");

  auto bad_name = interpolate("${1ABC}", base);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error(), "invalid variable name '1ABC' in ${...}");
  EXPECT_FALSE(interpolate("${}", base).ok());
}

TEST_F(ConfigTest, InterpolateEscapesAndLiteralDollars) {
  const std::string base = dir_.string();
  EXPECT_EQ(*interpolate("$$", base), "$");
  EXPECT_EQ(*interpolate("$${NOT_A_VAR}", base), "${NOT_A_VAR}");
  EXPECT_EQ(*interpolate("$$$$", base), "$$");
  EXPECT_EQ(*interpolate("cost: $5", base), "cost: $5");
  EXPECT_EQ(*interpolate("ends with $", base), "ends with $");
  EXPECT_EQ(*interpolate("$", base), "$");
  EXPECT_EQ(*interpolate("no references", base), "no references");
  EXPECT_EQ(*interpolate("", base), "");

  auto unterminated = interpolate("abc ${NAME", base);
  ASSERT_FALSE(unterminated.ok());
  EXPECT_EQ(unterminated.error(), "unterminated '${' (missing '}')");
  EXPECT_FALSE(interpolate("${", base).ok());
}

TEST_F(ConfigTest, InterpolateFiles) {
  fs::create_directory(dir_ / "secrets");
  write_file("secrets/lf.txt", "line-feed\n");
  write_file("secrets/crlf.txt", "crlf\r\n");
  write_file("secrets/two.txt", "two\n\n");
  write_file("secrets/none.txt", "none");
  write_file("secrets/multi.txt", "a\nb\n");
  const std::string base = dir_.string();

  EXPECT_EQ(*interpolate("${file:secrets/lf.txt}", base), "line-feed");
  EXPECT_EQ(*interpolate("${file:secrets/crlf.txt}", base), "crlf");
  EXPECT_EQ(*interpolate("${file:secrets/two.txt}", base), "two\n");  // only one newline stripped
  EXPECT_EQ(*interpolate("${file:secrets/none.txt}", base), "none");
  EXPECT_EQ(*interpolate("${file:secrets/multi.txt}", base), "a\nb");
  EXPECT_EQ(*interpolate("[${file:" + in_dir("secrets/none.txt") + "}]", "/nonexistent"),
            "[none]");  // absolute

  auto missing = interpolate("${file:secrets/missing.txt}", base);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(),
            "cannot read file '" + in_dir("secrets/missing.txt") + "': No such file or directory");
  EXPECT_FALSE(interpolate("${file:}", base).ok());
}

TEST_F(ConfigTest, InterpolationAppliesToStringFields) {
  set_env("MCPH_CFGTEST_STATE", "/var/lib/mcp");
  set_env("MCPH_CFGTEST_PP", "/opt/p");
  set_env("MCPH_CFGTEST_PFX", "gh.");
  set_env("MCPH_CFGTEST_URL", "https://example.test");
  set_env("MCPH_CFGTEST_PORT", "8080");
  write_file("token.txt", "file-token\n");
  auto config = load_ok(yaml({
      "state_dir: ${MCPH_CFGTEST_STATE}/state", "plugin_paths: [\"${MCPH_CFGTEST_PP}/a\", \"$${literal}\"]",
      "plugins:", "  - name: p", "    library: ${MCPH_CFGTEST_LIB_UNSET:-default-lib}",
      "    tool_prefix: ${MCPH_CFGTEST_PFX}", "    tools: { allow: [\"${MCPH_CFGTEST_PFX}\"] }",
      "    credentials: { token: \"${file:token.txt}\", user: \"${MCPH_CFGTEST_PFX}x\" }", "    settings:",
      "      url: \"${MCPH_CFGTEST_URL}\"", "      nested:", "        - \"${MCPH_CFGTEST_URL}/x\"",
      "        - port: ${MCPH_CFGTEST_PORT}",  // plain, but a string: typed before interpolation
  }));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->state_dir, "/var/lib/mcp/state");
  EXPECT_EQ(config->plugin_paths, (std::vector<std::string>{"/opt/p/a", in_dir("${literal}")}));
  const PluginConfig& plugin = config->plugins.at(0);
  EXPECT_EQ(plugin.library, "default-lib");
  EXPECT_EQ(plugin.tool_prefix, "gh.");
  EXPECT_EQ(plugin.tools.allow, std::vector<std::string>{"${MCPH_CFGTEST_PFX}"});  // tool names are literal
  EXPECT_EQ(plugin.credentials.at("token"), "file-token");
  EXPECT_EQ(plugin.credentials.at("user"), "gh.x");
  EXPECT_EQ(plugin.settings, json::parse(R"({"url": "https://example.test",
                                             "nested": ["https://example.test/x", {"port": "8080"}]})"));
}

TEST_F(ConfigErrorTest, InterpolationErrorsNameTheLine) {
  ::unsetenv("MCPH_CFGTEST_MISSING");
  expect_errors({
      {yaml({"plugins:", "  - name: p", "    library: l",
             "    credentials:", "      api_token: \"${MCPH_CFGTEST_MISSING}\""}),
       "cfg.yaml:5: environment variable MCPH_CFGTEST_MISSING is not set (use ${MCPH_CFGTEST_MISSING:-} for "
       "an "
       "optional value)"},
      {yaml({"log: {}", "state_dir: \"${file:nope.txt}\""}),
       "cfg.yaml:2: cannot read file '" + in_dir("nope.txt") + "': No such file or directory"},
      {yaml({"plugins:", "  - name: p", "    library: l",
             "    settings:", "      a: { b: [ \"x ${oops\" ] }"}),
       "cfg.yaml:5: unterminated '${' (missing '}')"},
      // Names and enum values are not interpolated.
      {yaml({"plugins:", "  - name: ${MCPH_CFGTEST_MISSING}", "    library: l"}),
       "cfg.yaml:2: plugins[0].name must match [A-Za-z0-9_.-]+ (got '${MCPH_CFGTEST_MISSING}')"},
      {yaml({"server:", "  transport: ${MCPH_CFGTEST_MISSING}"}),
       "cfg.yaml:2: server.transport must be one of stdio, http (got '${MCPH_CFGTEST_MISSING}')"},
  });
}

// ---- Secrets never appear in messages ----------------------------------------------------

TEST_F(ConfigTest, SecretsNeverAppearInErrors) {
  const std::string secret = "hunter2 s3cr3t!";
  set_env("MCPH_CFGTEST_SECRET", secret);
  write_file("secret.txt", secret + "\n");
  ::unsetenv("MCPH_CFGTEST_NOT_SET");
  const std::vector<std::string> inputs = {
      // A later, unrelated error.
      yaml({"plugins:", "  - name: p", "    library: l",
            "    credentials: { token: \"${MCPH_CFGTEST_SECRET}\" }",
            "    settings: { key: \"${MCPH_CFGTEST_SECRET}\", file: \"${file:secret.txt}\" }",
            "    enabled: maybe"}),
      // The secret itself is invalid where it is used.
      yaml({"plugins:", "  - name: p", "    library: l", "    tool_prefix: \"${MCPH_CFGTEST_SECRET}\""}),
      yaml({"plugins:", "  - name: p", "    library: l", "    tool_prefix: \"${file:secret.txt}\""}),
      // The same string goes on to fail after the secret was expanded.
      yaml({"plugins:", "  - name: p", "    library: l",
            "    credentials: { token: \"${MCPH_CFGTEST_SECRET}${MCPH_CFGTEST_NOT_SET}\" }"}),
      yaml({"plugins:", "  - name: p", "    library: l",
            "    credentials: { token: \"${MCPH_CFGTEST_SECRET}${x\" }"}),
      yaml({"state_dir: \"${MCPH_CFGTEST_SECRET}\"", "log: { level: \"${MCPH_CFGTEST_SECRET}\" }"}),
  };
  for (const auto& input : inputs) {
    SCOPED_TRACE(input);
    const std::string message = load_error(input);
    EXPECT_FALSE(message.empty());
    EXPECT_FALSE(contains(message, "hunter2")) << message;
    EXPECT_FALSE(contains(message, "s3cr3t")) << message;
  }
  EXPECT_EQ(load_error(inputs[1]),
            "cfg.yaml:4: plugins[0].tool_prefix may contain only letters, digits, '_', '.' and '-'");
}

// ---- Settings: YAML -> JSON --------------------------------------------------------------

TEST_F(ConfigTest, SettingsScalarTypes) {
  auto config = load_ok(yaml({
      "plugins:",
      "  - name: p",
      "    library: l",
      "    settings:",
      "      int: 42",
      "      negative: -7",
      "      plus: +3",
      "      float: 1.5",
      "      exponent: 2e3",
      "      leading_dot: .5",
      "      true_bool: true",
      "      false_bool: False",
      "      tilde: ~",
      "      null_word: null",
      "      empty:",
      "      quoted_int: \"123\"",
      "      single_quoted_bool: 'true'",
      "      quoted_null: \"null\"",
      "      tagged: !!str 5",
      "      text: hello world",
      "      yes_word: yes",
      "      hex: 0x1F",
      "      version: 1.2.3",
      "      big: 18446744073709551615",
      "      huge: 123456789012345678901234567890",
      "      block: |",
      "        line1",
      "        line2",
  }));
  ASSERT_TRUE(config);
  const json& s = config->plugins.at(0).settings;
  ASSERT_TRUE(s.is_object());

  EXPECT_TRUE(s["int"].is_number_integer());
  EXPECT_EQ(s["int"], 42);
  EXPECT_EQ(s["negative"], -7);
  EXPECT_EQ(s["plus"], 3);
  EXPECT_TRUE(s["float"].is_number_float());
  EXPECT_DOUBLE_EQ(s["float"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(s["exponent"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(s["leading_dot"].get<double>(), 0.5);
  EXPECT_EQ(s["true_bool"], true);
  EXPECT_EQ(s["false_bool"], false);
  EXPECT_TRUE(s["tilde"].is_null());
  EXPECT_TRUE(s["null_word"].is_null());
  EXPECT_TRUE(s["empty"].is_null());
  EXPECT_EQ(s["quoted_int"], "123");
  EXPECT_EQ(s["single_quoted_bool"], "true");
  EXPECT_EQ(s["quoted_null"], "null");
  EXPECT_EQ(s["tagged"], "5");
  EXPECT_EQ(s["text"], "hello world");
  EXPECT_EQ(s["yes_word"], "yes");  // YAML 1.1 booleans are strings in the 1.2 core schema
  EXPECT_EQ(s["hex"], "0x1F");
  EXPECT_EQ(s["version"], "1.2.3");
  EXPECT_TRUE(s["big"].is_number_unsigned());
  EXPECT_EQ(s["big"].get<std::uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(s["huge"].is_number_float());
  EXPECT_EQ(s["block"], "line1\nline2\n");
}

TEST_F(ConfigTest, SettingsNestedStructures) {
  auto config = load_ok(yaml({
      "plugins:",
      "  - name: p",
      "    library: l",
      "    settings:",
      "      server:",
      "        hosts: [a, \"2\", 3]",
      "        retry: { count: 3, backoff: [0.5, 1] }",
      "      empty_map: {}",
      "      empty_list: []",
      "      list_of_maps:",
      "        - id: 1",
      "          on: true",
      "        - id: 2",
      "          tags: [x, ~]",
  }));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->plugins.at(0).settings, json::parse(R"({
      "server": {"hosts": ["a", "2", 3], "retry": {"count": 3, "backoff": [0.5, 1]}},
      "empty_map": {},
      "empty_list": [],
      "list_of_maps": [{"id": 1, "on": true}, {"id": 2, "tags": ["x", null]}]
  })"));
}

TEST_F(ConfigErrorTest, SettingsAliasCyclesAndBombsAreRejected) {
  const std::string cycle =
      load_error(yaml({"plugins:", "  - name: p", "    library: l", "    settings: &a { x: *a }"}));
  EXPECT_EQ(cycle,
            "cfg.yaml:4: plugins[0].settings is nested more than 64 levels deep (does a YAML alias contain "
            "itself?)");

  const std::string bomb = load_error(yaml({
      "plugins:",
      "  - name: p",
      "    library: l",
      "    settings:",
      "      a: &a [x, x, x, x, x, x, x, x, x, x]",
      "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
  }));
  // A block mapping starts at its first key (line 5), not at `settings:`.
  EXPECT_EQ(bomb,
            "cfg.yaml:5: plugins[0].settings has more than 100000 values (are YAML aliases repeating it?)");
}

// ---- Paths -------------------------------------------------------------------------------

TEST_F(ConfigTest, TildeExpandsToHome) {
  auto config =
      load_ok(yaml({"state_dir: ~/state/", "plugin_paths: [\"~/p\", \"~\", rel/../x, /abs/y/, ~other/z]"}));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->state_dir, in_home("state"));
  EXPECT_EQ(config->plugin_paths,
            (std::vector<std::string>{in_home("p"), home_.string(), in_dir("x"), "/abs/y",
                                      in_dir("~other/z")}));  // only ~ and ~/ mean $HOME

  // A bare `~` is YAML null; quoted, it is the home folder.
  auto quoted = load_ok("state_dir: \"~\"\n");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->state_dir, home_.string());
  EXPECT_EQ(load_error("log: {}\nstate_dir: ~\n"),
            "cfg.yaml:2: state_dir must be a string, not null (quote it: \"~\", \"\")");
}

TEST_F(ConfigTest, TildeWithoutHome) {
  ::unsetenv("HOME");
  EXPECT_EQ(load_error(yaml({"log: {}", "state_dir: \"~/x\""})),
            "cfg.yaml:2: cannot expand '~' in state_dir: HOME is not set");
  EXPECT_EQ(load_error(yaml({"plugin_paths:", "  - /ok", "  - \"~/x\""})),
            "cfg.yaml:3: cannot expand '~' in plugin_paths[1]: HOME is not set");
  // The default state_dir needs HOME only when it is used.
  EXPECT_EQ(load_error(""), "cfg.yaml:1: cannot expand '~' in state_dir: HOME is not set");
  auto config = load_ok("state_dir: /srv/mcp\n");
  ASSERT_TRUE(config);
  EXPECT_EQ(config->state_dir, "/srv/mcp");
}

TEST_F(ConfigTest, RelativeBaseDirBecomesAbsolute) {
  auto config = load_string("plugin_paths: [p]\nstate_dir: s\n", "some/dir");
  ASSERT_TRUE(config.ok()) << config.error();
  const std::string cwd = fs::current_path().string();
  EXPECT_EQ((*config)->plugin_paths.at(0), (fs::path(cwd) / "some/dir/p").lexically_normal().string());
  EXPECT_EQ((*config)->state_dir, (fs::path(cwd) / "some/dir/s").lexically_normal().string());
}

}  // namespace
}  // namespace mcph::config

namespace mcph::config {
namespace {

class HttpConfigTest : public ConfigTest {};

TEST_F(HttpConfigTest, DefaultsAreLoopbackAndBounded) {
  auto c = load_ok("");
  const auto& h = c->server.http;
  EXPECT_EQ(h.listen, "127.0.0.1:8080");
  EXPECT_EQ(h.path, "/mcp");
  EXPECT_TRUE(h.auth.bearer_tokens.empty());
  EXPECT_GT(h.worker_threads, 0);
  EXPECT_GT(h.max_streams, 0);
  EXPECT_TRUE(h.tls.cert.empty());
}

TEST_F(HttpConfigTest, FullSection) {
  set_env("MCPH_CFG_BEARER", "tok-from-env");
  write_file("bearer.txt", "tok-from-file\n");
  auto c = load_ok(yaml({
      "server:",
      "  transport: http",
      "  http:",
      "    listen: \"[::1]:9000\"",
      "    path: /v1/mcp",
      "    allowed_origins: [\"https://app.example.com\"]",
      "    allowed_hosts: [mcp.internal]",
      "    auth: { bearer_tokens: [\"${MCPH_CFG_BEARER}\", \"${file:bearer.txt}\"] }",
      "    max_body_bytes: 65536",
      "    request_timeout_ms: 1000",
      "    worker_threads: 8",
      "    max_streams: 4",
      "    session_idle_timeout_ms: 60000",
      "    max_sessions: 10",
      "    tls: { cert: certs/cert.pem, key: certs/key.pem }",
  }));
  const auto& h = c->server.http;
  EXPECT_EQ(c->server.transport, "http");
  EXPECT_EQ(h.listen, "[::1]:9000");
  EXPECT_EQ(h.path, "/v1/mcp");
  EXPECT_EQ(h.allowed_origins, std::vector<std::string>{"https://app.example.com"});
  EXPECT_EQ(h.allowed_hosts, std::vector<std::string>{"mcp.internal"});
  EXPECT_EQ(h.auth.bearer_tokens, (std::vector<std::string>{"tok-from-env", "tok-from-file"}));
  EXPECT_EQ(h.max_body_bytes, 65536);
  EXPECT_EQ(h.request_timeout_ms, 1000);
  EXPECT_EQ(h.worker_threads, 8);
  EXPECT_EQ(h.max_streams, 4);
  EXPECT_EQ(h.session_idle_timeout_ms, 60000);
  EXPECT_EQ(h.max_sessions, 10);
  EXPECT_EQ(h.tls.cert, (dir_ / "certs/cert.pem").string());
  EXPECT_EQ(h.tls.key, (dir_ / "certs/key.pem").string());
}

TEST_F(HttpConfigTest, ErrorsNameTheLine) {
  EXPECT_EQ(load_error(yaml({"server:", "  http:", "    listen: 8080"})),
            "cfg.yaml:3: server.http.listen must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
  EXPECT_EQ(load_error(yaml({"server:", "  http:", "    listen: \"localhost:99999\""})),
            "cfg.yaml:3: server.http.listen must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080");
  EXPECT_EQ(load_error(yaml({"server:", "  http:", "    path: mcp"})),
            "cfg.yaml:3: server.http.path must be an absolute URL path such as /mcp (got 'mcp')");
  EXPECT_TRUE(contains(load_error(yaml({"server:", "  http:", "    auth: { tokens: [x] }"})),
                       "cfg.yaml:3: unknown key 'tokens' in server.http.auth"));
  EXPECT_TRUE(contains(load_error(yaml({"server:", "  http:", "    worker_threads: 0"})), "cfg.yaml:3:"));
  EXPECT_TRUE(contains(load_error(yaml({"server:", "  http:", "    listn: x"})),
                       "cfg.yaml:3: unknown key 'listn' in server.http"));
}

TEST_F(HttpConfigTest, BearerTokenFromUnsetVariableIsAnErrorWithoutTheValue) {
  const std::string err = load_error(yaml({"server:", "  http:", "    auth:", "      bearer_tokens: [\"${MCPH_CFG_UNSET_TOKEN}\"]"}));
  EXPECT_TRUE(contains(err, "cfg.yaml:4:")) << err;
  EXPECT_TRUE(contains(err, "MCPH_CFG_UNSET_TOKEN")) << err;
}

}  // namespace
}  // namespace mcph::config

namespace mcph::config {
namespace {

// The documented default must stay loadable: it is what scripts/run.sh serves.
TEST(DefaultConfig, ShippedFileLoads) {
  auto c = load_file(MCPH_SOURCE_DIR "/config/mcp-host.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ((*c)->server.transport, "stdio");
  EXPECT_EQ((*c)->server.http.listen, "127.0.0.1:8080");
  EXPECT_FALSE((*c)->plugins.empty());
}

}  // namespace
}  // namespace mcph::config
