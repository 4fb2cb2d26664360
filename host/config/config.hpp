// The YAML configuration, read once into an immutable snapshot (config/mcp-host.yaml is the
// documented default). Unknown keys and wrong types are errors that name the line.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "result.hpp"

namespace mcph::config {

struct ToolFilter {
  std::vector<std::string> allow;  // empty = all tools
  std::vector<std::string> deny;

  bool operator==(const ToolFilter&) const = default;
};

// isolation: process only: what the child process may use, and how it is restarted.
struct IsolationLimits {
  int memory_mb = 1024;            // resident memory; beyond it the child is ended (0: no limit)
  int cpu_seconds_per_call = 0;    // CPU one call's handler may use (0: no limit; the call deadline still holds)
  int open_files = 1024;           // RLIMIT_NOFILE

  bool operator==(const IsolationLimits&) const = default;
};
struct RestartPolicy {
  int max_per_minute = 5;  // more crashes than this within a minute: the instance is failed
  int backoff_ms = 200;    // before a restart; doubles while restarts keep failing (at most 30 s)

  bool operator==(const RestartPolicy&) const = default;
};

struct PluginConfig {
  std::string name;     // instance name, unique
  std::string library;  // bare name searched in plugin paths, or a file path
  bool enabled = true;
  std::string tool_prefix;
  ToolFilter tools;
  std::map<std::string, std::string> credentials;  // interpolated; secrets
  nlohmann::json settings = nlohmann::json::object();
  int max_concurrent_calls = 0;  // calls of this instance running at once; 0: 3/4 of the server's
  int create_timeout_ms = 30000;  // the plugin's create() must return within this
  std::string isolation = "none";  // none: in the host's process | process: a supervised child process
  IsolationLimits limits;
  RestartPolicy restart;
  std::string sandbox = "none";    // isolation: process: none | strict (seccomp: no files, sockets or programs after create)
  // Whether its tools may run as MCP tasks: forbidden | optional | required, for every tool
  // ("" = each tool's own default, else forbidden), and per tool (the plugin's tool names).
  std::string task_support;
  std::map<std::string, std::string> tool_task_support;
  // Whether its tools' arguments go into traces (gen_ai.tool.call.arguments) and the audit
  // log. Off by default: arguments are users' data.
  bool record_arguments = false;
  int line = 0;  // where the entry starts in the YAML file (1-based), for messages

  bool operator==(const PluginConfig&) const = default;
  // The same instance, wherever the entry sits in the file (all but `line` equal).
  bool same_instance(const PluginConfig& other) const;
};

// Where the host keeps what must outlive a process (plugin state, OAuth, shared keys).
struct StoreConfig {
  std::string backend = "sqlite";  // sqlite: state_dir/state.db | postgresql: shared by replicas
  std::string url;                 // postgresql only: postgresql://user:password@host:port/db (a secret)
  int pool_size = 8;               // postgresql: connections per process at most
  int connect_timeout_ms = 5000;   // postgresql: per connection attempt
  int statement_timeout_ms = 5000; // postgresql: a statement that runs longer fails

  bool operator==(const StoreConfig&) const = default;
};

// MCP tasks (host/tasks/): long calls answered at once with a task the client polls.
struct TasksConfig {
  bool enabled = true;                    // offer tasks (2026-07-28 extension, 2025-11-25 tasks)
  int max_per_user = 100;                 // unfinished tasks one principal may hold
  int max_total = 10000;                  // unfinished tasks in the store at once
  int ttl_ms = 24 * 3600 * 1000;          // a task (and its result) is kept this long after creation
  int poll_interval_ms = 1000;            // what clients are told to wait between polls
  int timeout_ms = 3600 * 1000;           // a task the host runs is cancelled after this long
  int max_result_bytes = 4 * 1024 * 1024; // a bigger result fails the task

  bool operator==(const TasksConfig&) const = default;
};

// Live reconfiguration (host/reload/): SIGHUP and `mcp-host reload` always work.
struct ReloadConfig {
  bool watch = false;     // also reload when this file, or a ${file:...} it names, changes (inotify)
  int drain_ms = 300000;  // a removed or replaced instance finishes its calls for this long, then they are cancelled

  bool operator==(const ReloadConfig&) const = default;
};

// Traces and metrics to an OpenTelemetry collector (OTLP/HTTP, JSON).
struct OtlpConfig {
  std::string endpoint;  // base URL of its OTLP/HTTP receiver, e.g. http://localhost:4318; "" = none
  std::map<std::string, std::string> headers;  // sent with each export (interpolated; may be secrets)
  double sampling = 1.0;     // share of new traces recorded (a client's sampled flag is followed)
  int batch_delay_ms = 5000; // spans wait at most this long before they are sent
  int queue_size = 2048;     // spans waiting; beyond it new ones are dropped (and counted)
  int timeout_ms = 10000;    // per export request
  int metrics_interval_ms = 60000;  // every metric is sent this often (and at shutdown); 0 = traces only

  bool operator==(const OtlpConfig&) const = default;
};

// Telemetry (host/telemetry/): Prometheus metrics, OTLP traces, an audit log.
struct TelemetryConfig {
  bool metrics = true;         // GET /metrics on the HTTP listener
  std::string metrics_listen;  // host:port of a listener of its own (e.g. for a stdio host); "" = none
  OtlpConfig otlp;
  std::string audit_log;       // one JSON line per request: a file (appended; reopened on SIGHUP), "stderr", or "" = none

  bool operator==(const TelemetryConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";   // trace | debug | info | warn | error | off
  std::string format = "text";  // text | json

  bool operator==(const LogConfig&) const = default;
};

struct TlsConfig {
  std::string cert;  // PEM file paths; both set = serve https
  std::string key;

  bool operator==(const TlsConfig&) const = default;
};

// mcp-host as an OAuth 2.1 authorization server for its MCP endpoint (auth.mode: oauth).
struct OAuthConfig {
  std::string issuer;                     // public base URL; default: the URL it listens on
  int access_token_ttl_s = 3600;
  int refresh_token_ttl_s = 30 * 24 * 3600;
  std::string signing_key;     // 32 bytes (raw or base64url), e.g. ${file:...}; default: generated in state_dir
  std::string encryption_key;  // likewise; encrypts users' credentials at rest

  bool operator==(const OAuthConfig&) const = default;
};

struct HttpAuthConfig {
  std::string mode;                        // none | bearer | oauth; empty: bearer if tokens are set, else none
  std::vector<std::string> bearer_tokens;  // mode bearer: the accepted tokens; secrets
  OAuthConfig oauth;

  bool operator==(const HttpAuthConfig&) const = default;
};

// The Codegen MCP server's old envelope: POST {"command": C, "args": {...}} on `path`
// calls the tool `tool_prefix` + C and answers with its structured result.
struct CommandEndpoint {
  std::string path;
  std::string tool_prefix;

  bool operator==(const CommandEndpoint&) const = default;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; [::1]:port for IPv6
  std::string path = "/mcp";
  std::vector<std::string> allowed_origins;  // exact origins beyond http(s)://localhost-ish ones
  std::vector<std::string> allowed_hosts;    // Host names beyond localhost, 127.0.0.1, ::1
  HttpAuthConfig auth;
  int max_body_bytes = 4 * 1024 * 1024;
  int max_header_bytes = 64 * 1024;       // request line + headers; beyond: 431
  int max_headers = 100;                  // header lines; beyond: 431
  int header_timeout_ms = 10000;          // a request's head must arrive within this (else 408)
  int body_timeout_ms = 30000;            // and its body within this after the head
  int keep_alive_timeout_ms = 5000;       // idle keep-alive connections close after this
  int max_connections = 1000;             // open at once; beyond: 503
  int request_timeout_ms = 300000;        // a request still running after this is cancelled
  int worker_threads = 64;                // requests processed at once (SSE streams hold one each)
  int max_streams = 32;                   // SSE streams open at once
  int session_idle_timeout_ms = 1800000;  // legacy sessions unused this long expire
  int max_sessions = 1000;
  int max_sessions_per_client = 100;      // per user (OAuth) or address; a client's oldest idle one goes first
  TlsConfig tls;
  std::vector<CommandEndpoint> command_endpoints;

  bool operator==(const HttpConfig&) const = default;
};

struct ServerConfig {
  std::string transport = "stdio";  // stdio | http
  int page_size = 100;              // tools/list page size
  int list_ttl_ms = 60000;          // 2026-07-28 lists' ttlMs: how long a client may cache them
  int max_concurrent_calls = 64;    // tool calls running at once (worker threads)
  int max_queued_calls = 1000;      // calls waiting per plugin instance; beyond: refused at once
  int call_timeout_ms = 300000;     // a tool call is cancelled after this long
  int shutdown_grace_ms = 5000;     // on EOF/SIGTERM: wait this long for calls, then cancel
  HttpConfig http;

  bool operator==(const ServerConfig&) const = default;
};

struct Config {
  std::string source;  // file path, or "<string>"
  std::string state_dir = "~/.local/state/mcp-host";  // after ~ expansion when loaded
  StoreConfig store;
  TasksConfig tasks;
  ReloadConfig reload;
  TelemetryConfig telemetry;
  LogConfig log;
  std::vector<std::string> plugin_paths;  // relative paths resolved against the file's folder
  ServerConfig server;
  std::vector<PluginConfig> plugins;
  // The files it was read from: the YAML itself (load_file) and every ${file:...} it names,
  // as absolute paths (what reload.watch watches).
  std::vector<std::string> files;
};

// Reads and validates a YAML file. Relative plugin paths and ${file:...} references are
// resolved against the file's directory.
Result<std::shared_ptr<const Config>> load_file(const std::string& path);

// The state_dir a file names (its top-level `state_dir:` line, else the default), even when
// the rest of the file does not validate: how `mcp-host reload` finds the hosts to ask.
Result<std::string> state_dir_of(const std::string& path);

// Same for YAML text (base_dir resolves relative paths). Used by tests.
Result<std::shared_ptr<const Config>> load_string(const std::string& yaml, const std::string& base_dir,
                                                  const std::string& source_name = "<string>");

// ${VAR}, ${VAR:-default}, ${file:PATH} (trailing newline stripped). $$ is a literal $.
// An unset ${VAR} without default is an error naming the variable. The ${file:} paths read
// are appended to `files` when given.
Result<std::string> interpolate(const std::string& text, const std::string& base_dir,
                                std::vector<std::string>* files = nullptr);

}  // namespace mcph::config
