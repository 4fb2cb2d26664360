#include "telemetry/telemetry.hpp"

#include <spdlog/spdlog.h>

#include "json/bounded.hpp"
#include "tasks/task_table.hpp"

namespace mcph::telemetry {
namespace {

using Seconds = std::chrono::duration<double>;
using nlohmann::json;

// The conventions' ExplicitBucketBoundaries for both MCP histograms.
const std::vector<double> kMcpBuckets = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300};
// http.client.request.duration's (HTTP semantic conventions).
const std::vector<double> kHttpBuckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

// url.full for a span: query values may be keys or signatures, so every one is replaced.
std::string redacted_url(const services::HttpTarget& t) {
  const size_t q = t.path.find('?');
  std::string out = (t.https ? "https://" : "http://") + t.host_port + t.path.substr(0, q);
  if (q == std::string::npos) return out;
  const std::string_view query = std::string_view(t.path).substr(q + 1);
  out += '?';
  for (size_t i = 0; i <= query.size();) {
    const size_t end = std::min(query.find('&', i), query.size());
    const std::string_view pair = query.substr(i, end - i);
    if (i > 0) out += '&';
    const size_t eq = pair.find('=');
    out += eq == std::string_view::npos ? pair : pair.substr(0, eq);
    if (eq != std::string_view::npos) out += "=REDACTED";
    i = end + 1;
  }
  return out;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  return tasks::iso8601(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// A span's length in the nanoseconds OTLP counts.
uint64_t nanos(std::chrono::steady_clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// The attribute naming a plugin instance, on metrics and spans alike.
constexpr const char* kInstance = "mcp_host.plugin.instance";

bool runs_plugin_code(const std::string& method) {
  return method == "tools/call" || method == "resources/read" || method == "prompts/get" || method == "completion/complete";
}

const char* outcome_name(services::HttpResponse::Outcome o) {
  switch (o) {
    case services::HttpResponse::Outcome::Ok: return "";
    case services::HttpResponse::Outcome::Cancelled: return "cancelled";
    case services::HttpResponse::Outcome::Timeout: return "timeout";
    case services::HttpResponse::Outcome::Network: return "network";
    case services::HttpResponse::Outcome::InvalidRequest: return "invalid_request";
  }
  return "_OTHER";
}

}  // namespace

Telemetry::Telemetry(std::string network_transport, std::unique_ptr<Tracer> tracer, std::unique_ptr<AuditLog> audit)
    : transport_(std::move(network_transport)),
      tracer_(std::move(tracer)),
      audit_(std::move(audit)),
      operations_(metrics_.histogram({"mcp.server.operation.duration", "s",
                                      "MCP request or notification duration as observed on the receiver from the time it was "
                                      "received until the result or ack is sent"},
                                     {"mcp.method.name", "gen_ai.tool.name", "gen_ai.prompt.name", "gen_ai.operation.name",
                                      "error.type", "rpc.response.status_code", "mcp.protocol.version", "network.transport",
                                      kInstance},
                                     kMcpBuckets)),
      sessions_(metrics_.histogram({"mcp.server.session.duration", "s", "The duration of the MCP session as observed on the MCP server"},
                                   {"mcp.protocol.version", "network.transport"}, kMcpBuckets)),
      http_(metrics_.histogram({"http.client.request.duration", "s", "Outbound HTTP requests plugins made through the host"},
                               {kInstance, "http.request.method", "http.response.status_code", "server.address", "error.type"},
                               kHttpBuckets)),
      sign_ins_(metrics_.counter({"mcp_host.oauth.sign_ins", "{sign_in}", "OAuth sign-ins through the credentials form, by outcome"},
                                 {"outcome"})),
      refused_(metrics_.counter({"mcp_host.http.refused", "{request}",
                                 "HTTP requests refused before they reached MCP (no or a bad token, Host, Origin)"},
                                {"http.response.status_code"})),
      retries_(metrics_.counter({"mcp_host.upstream.retries", "{request}",
                                 "Outbound requests that repeat, within a minute, one of the same plugin instance, method and URL "
                                 "that failed (429, 5xx, no answer)"},
                                {kInstance, "server.address"})) {
  metrics_.gauge({"mcp_host.calls_in_flight", "{call}", "Plugin calls running now (stuck ones included)"},
                 [this] { return std::vector<Sample>{{{}, sources_.calls_in_flight ? sources_.calls_in_flight() : 0}}; });
  metrics_.gauge({"mcp_host.sessions", "{session}", "Legacy MCP sessions open"},
                 [this] { return std::vector<Sample>{{{}, sources_.sessions ? sources_.sessions() : 0}}; });
  metrics_.gauge({"mcp_host.streams", "{stream}", "SSE and subscriptions/listen streams open"},
                 [this] { return std::vector<Sample>{{{}, sources_.streams ? sources_.streams() : 0}}; });
  auto instances = [this] { return sources_.instances ? sources_.instances() : std::vector<Sources::Instance>{}; };
  metrics_.gauge({"mcp_host.plugin.instance_up", "{instance}", "1 for each plugin instance, labelled with its isolation and state"},
                 [instances] {
                   std::vector<Sample> out;
                   for (const auto& i : instances()) out.push_back({{{kInstance, i.name}, {"isolation", i.isolation}, {"state", i.state}}, 1});
                   return out;
                 });
  metrics_.gauge({"mcp_host.plugin.restarts", "{restart}", "Restarts of an isolated plugin instance's process"}, [instances] {
    std::vector<Sample> out;
    for (const auto& i : instances()) out.push_back({{{kInstance, i.name}}, static_cast<double>(i.restarts)});
    return out;
  }, true);
  metrics_.gauge({"mcp_host.store.errors", "{error}", "State store operations that failed (SQLite or PostgreSQL)"},
                 [this] { return std::vector<Sample>{{{}, sources_.store_errors ? sources_.store_errors() : 0}}; }, true);
  metrics_.gauge({"mcp_host.tasks", "{task}", "MCP tasks this replica created, and those it saw end, by event"}, [this] {
    if (!sources_.tasks) return std::vector<Sample>{};
    const auto t = sources_.tasks();
    return std::vector<Sample>{{{{"event", "created"}}, t.created}, {{{"event", "completed"}}, t.completed},
                               {{{"event", "failed"}}, t.failed}, {{{"event", "cancelled"}}, t.cancelled}};
  }, true);
  metrics_.gauge({"mcp_host.tasks.running", "{task}", "MCP tasks whose work runs in this replica now"}, [this] {
    if (!sources_.tasks) return std::vector<Sample>{};
    return std::vector<Sample>{{{}, sources_.tasks().running}};
  });
  if (tracer_) {
    metrics_.gauge({"mcp_host.trace.spans_exported", "{span}", "Spans the OTLP collector accepted"},
                   [this] { return std::vector<Sample>{{{}, static_cast<double>(tracer_->exported())}}; }, true);
    metrics_.gauge({"mcp_host.trace.spans_dropped", "{span}",
                    "Spans dropped: the export queue was full, or the collector refused or was unreachable"}, [this] {
      return std::vector<Sample>{{{{"reason", "queue_full"}}, static_cast<double>(tracer_->dropped_full())},
                                 {{{"reason", "export_failed"}}, static_cast<double>(tracer_->dropped_failed())}};
    }, true);
  }
}

void Telemetry::request_started(protocol::RequestRecord& r) {
  if (!tracer_ && !audit_) return;
  const auto parent = r.parent.empty() ? std::nullopt : SpanContext::parse(r.parent);
  const SpanContext self = tracer_ ? tracer_->start(parent ? &*parent : nullptr) : new_span(parent ? &*parent : nullptr, 0);
  r.trace = self.traceparent();
  if (audit_ && runs_plugin_code(r.method)) {
    std::lock_guard lock(upstream_mutex_);
    upstream_[r.trace];
  }
}

void Telemetry::request_done(const protocol::RequestRecord& r) {
  std::string error_type, status_code;
  if (r.error_code) {
    status_code = std::to_string(*r.error_code);
    error_type = status_code;
  } else if (r.is_error) {
    error_type = "tool_error";
  }
  operations_.observe({r.method, r.tool, r.prompt, r.method == "tools/call" ? "execute_tool" : "", error_type, status_code, r.version,
                       transport_, r.instance},
                      Seconds(r.duration).count());
  if (r.trace.empty()) return;
  if (tracer_) trace_request(r, error_type);
  if (audit_) {
    std::vector<Upstream> upstream;
    if (runs_plugin_code(r.method)) {
      std::lock_guard lock(upstream_mutex_);
      if (auto it = upstream_.find(r.trace); it != upstream_.end()) {
        upstream = std::move(it->second);
        upstream_.erase(it);
      }
    }
    audit_request(r, std::move(upstream));
  }
}

// The SERVER span of one request (MCP semantic conventions).
void Telemetry::trace_request(const protocol::RequestRecord& r, const std::string& error_type) {
  const auto self = SpanContext::parse(r.trace);
  if (!self || !self->sampled) return;
  const auto parent = r.parent.empty() ? std::nullopt : SpanContext::parse(r.parent);
  const std::string& target = !r.tool.empty() ? r.tool : r.prompt;
  const uint64_t start = unix_ns(r.started_at);
  Span span(target.empty() ? r.method : r.method + " " + target, Span::Kind::kServer, *self, parent ? &parent->span_id : nullptr,
            start, start + nanos(r.duration),
            parent ? std::string_view(r.tracestate).substr(0, 512) : std::string_view());
  span.set("mcp.method.name", r.method);
  if (!r.tool.empty()) {
    span.set("gen_ai.tool.name", r.tool);
    span.set("gen_ai.operation.name", "execute_tool");
  }
  if (!r.prompt.empty()) span.set("gen_ai.prompt.name", r.prompt);
  if (!r.uri.empty()) span.set("mcp.resource.uri", r.uri);
  if (r.id.is_string()) span.set("jsonrpc.request.id", r.id.get<std::string>());
  else if (r.id.is_number()) span.set("jsonrpc.request.id", json_text::dump(r.id));
  if (r.error_code) span.set("rpc.response.status_code", std::to_string(*r.error_code));
  if (!error_type.empty()) {
    span.set("error.type", error_type);
    span.fail(r.error_message);
  }
  if (!r.session.empty()) span.set("mcp.session.id", r.session);
  if (!r.version.empty()) span.set("mcp.protocol.version", r.version);
  span.set("network.transport", transport_);
  if (transport_ == "tcp") span.set("network.protocol.name", "http");
  if (!r.instance.empty()) span.set(kInstance, r.instance);
  if (!r.arguments.is_null()) span.set("gen_ai.tool.call.arguments", json_text::dump(r.arguments));
  tracer_->finish(std::move(span));
}

// A task's work: an INTERNAL span of its own under the request's (the GenAI conventions'
// execute_tool span), so the upstream requests it makes after the answer hang below it.
std::string Telemetry::task_started(const protocol::RequestRecord& request) {
  const auto parent = tracer_ ? SpanContext::parse(request.trace) : std::nullopt;
  return parent ? tracer_->start(&*parent).traceparent() : request.trace;
}

void Telemetry::task_done(const protocol::RequestRecord& request, const std::string& trace, std::chrono::steady_clock::duration took,
                          const json& response) {
  const auto self = tracer_ && trace != request.trace ? SpanContext::parse(trace) : std::nullopt;
  if (!self || !self->sampled) return;
  const auto parent = SpanContext::parse(request.trace);
  const uint64_t end = unix_ns();
  Span span("execute_tool " + request.tool, Span::Kind::kInternal, *self, parent ? &parent->span_id : nullptr,
            end - nanos(took), end);
  span.set("gen_ai.operation.name", "execute_tool");
  span.set("gen_ai.tool.name", request.tool);
  if (!request.instance.empty()) span.set(kInstance, request.instance);
  const json* error = response.is_object() && response.contains("error") ? &response["error"] : nullptr;
  const bool tool_error = response.is_object() && response.contains("result") && response["result"].value("isError", false);
  if (error != nullptr || tool_error || response.is_null()) {
    span.set("error.type", error != nullptr ? error->value("code", json(0)).dump() : tool_error ? "tool_error" : "cancelled");
    span.fail(error != nullptr ? error->value("message", "").substr(0, 256) : "");
  }
  tracer_->finish(std::move(span));
}

// One line per request: who, what, how it ended at each level, how long, what upstream.
void Telemetry::audit_request(const protocol::RequestRecord& r, std::vector<Upstream> upstream) {
  // Written as text (a JSON object built member by member costs a fifth of a call).
  std::string line;
  line.reserve(512);
  auto member = [&](std::string_view key, std::string_view value) {
    line += line.empty() ? "{\"" : ",\"";
    line += key;
    line += "\":";
    append_json_string(line, value);
  };
  auto raw = [&](std::string_view key, const std::string& value) {
    line += ",\"";
    line += key;
    line += "\":";
    line += value;
  };
  member("time", iso_time(r.started_at));
  member("method", r.method);
  if (r.caller != nullptr && !r.caller->principal.empty()) member("principal", r.caller->principal);
  if (!r.client_name.empty()) {
    line += ",\"client\":{\"name\":";
    append_json_string(line, r.client_name);
    line += ",\"version\":";
    append_json_string(line, r.client_version);
    line += '}';
  }
  if (!r.session.empty()) member("session", r.session);
  if (!r.tool.empty()) member("tool", r.tool);
  if (!r.prompt.empty()) member("prompt", r.prompt);
  if (!r.uri.empty()) member("uri", r.uri);
  if (!r.instance.empty()) member("instance", r.instance);
  if (!r.id.is_null()) raw("id", json_text::dump(r.id));
  if (r.http_status != 0) raw("http_status", std::to_string(r.http_status));
  if (r.error_code) raw("rpc_error", std::to_string(*r.error_code));
  if (r.method == "tools/call" && !r.error_code) raw("is_error", r.is_error ? "true" : "false");
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.3f", Seconds(r.duration).count() * 1e3);
  raw("duration_ms", ms);
  if (!upstream.empty()) {
    line += ",\"upstream\":[";
    for (size_t i = 0; i < upstream.size(); ++i) {
      line += i == 0 ? "{\"method\":" : ",{\"method\":";
      append_json_string(line, upstream[i].method);
      line += ",\"host\":";
      append_json_string(line, upstream[i].host);
      line += ",\"outcome\":";
      append_json_string(line, upstream[i].outcome);
      line += '}';
    }
    line += ']';
  }
  member("trace_id", std::string_view(r.trace).substr(3, 32));
  if (!r.arguments.is_null()) raw("arguments", json_text::dump(r.arguments));
  line += '}';
  audit_->write(std::move(line));
}

void Telemetry::note_retry(const services::HttpRequest& request, const services::HttpResponse& response, const std::string& host) {
  const bool failed = response.status == 429 || response.status >= 500 ||
                      response.outcome == services::HttpResponse::Outcome::Network ||
                      response.outcome == services::HttpResponse::Outcome::Timeout;
  if (!failed && !any_failed_.load(std::memory_order_relaxed)) return;  // the usual case: nothing to look up
  const std::string key = request.origin + '\n' + request.method + '\n' + request.url;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(failed_mutex_);
  auto it = failed_.find(key);
  if (it != failed_.end() && now - it->second < std::chrono::minutes(1)) retries_.add({request.origin, host});
  if (failed) {
    if (failed_.size() >= 1000) failed_.clear();  // bounded; a flood of failures forgets the old ones
    failed_[key] = now;
  } else if (it != failed_.end()) {
    failed_.erase(it);
  }
  any_failed_.store(!failed_.empty(), std::memory_order_relaxed);
}

void Telemetry::refused(int status, const std::string& reason) {
  refused_.add({std::to_string(status)});
  if (audit_) {
    audit_->write(json_text::dump(json{{"time", iso_time(std::chrono::system_clock::now())}, {"http_status", status}, {"refused", reason}}));
  }
}

void Telemetry::reopen_audit() {
  if (!audit_) return;
  if (auto st = audit_->reopen(); !st) spdlog::error("{} (still writing to the old file)", st.error());
}

void Telemetry::session_done(const std::string& version, std::chrono::steady_clock::duration lasted) {
  sessions_.observe({version, transport_}, Seconds(lasted).count());
}

std::string Telemetry::http_started(const services::HttpRequest& request) {
  if (!tracer_) return {};
  // A call's request is a child of its span; background work (no call) starts a trace,
  // recorded whenever the call it links to was (so a sampled call's work is whole).
  const auto parent = request.traceparent.empty() ? std::nullopt : SpanContext::parse(request.traceparent);
  SpanContext self = tracer_->start(parent ? &*parent : nullptr);
  if (!parent && !request.trace_link.empty()) {
    if (const auto link = SpanContext::parse(request.trace_link); link && link->sampled) self.sampled = true;
  }
  return self.traceparent();
}

void Telemetry::http_done(const services::HttpRequest& request, const services::HttpResponse& response,
                          std::chrono::steady_clock::duration took, const std::string& traceparent) {
  const std::string error = response.status >= 400 ? std::to_string(response.status) : outcome_name(response.outcome);
  const auto url = services::parse_url(request.url);  // it failed for the client too when it fails here
  const std::string host = url ? url->host : "";
  const std::string status = response.status > 0 ? std::to_string(response.status) : "";
  http_.observe({request.origin, request.method, status, host, error}, Seconds(took).count());
  note_retry(request, response, host);
  if (audit_ && !request.traceparent.empty()) {
    std::lock_guard lock(upstream_mutex_);
    // Only while its request runs (a task's later requests have no line to join).
    if (auto it = upstream_.find(request.traceparent); it != upstream_.end() && it->second.size() < 100) {
      it->second.push_back({request.method, host, status.empty() ? error : status});
    }
  }
  const auto self = traceparent.empty() ? std::nullopt : SpanContext::parse(traceparent);
  if (!tracer_ || !self || !self->sampled || !url) return;
  // The CLIENT span (HTTP semantic conventions): named by its method, as no route template is known.
  const auto parent = request.traceparent.empty() ? std::nullopt : SpanContext::parse(request.traceparent);
  const uint64_t end = unix_ns();
  Span span(request.method, Span::Kind::kClient, *self, parent ? &parent->span_id : nullptr,
            end - nanos(took), end);
  span.set("http.request.method", request.method);
  span.set("server.address", url->host);
  span.set("server.port", static_cast<int64_t>(url->port));
  span.set("url.full", redacted_url(*url));
  if (response.status > 0) span.set("http.response.status_code", static_cast<int64_t>(response.status));
  if (!error.empty()) {
    span.set("error.type", error);
    span.fail("");
  }
  span.set(kInstance, request.origin);
  if (!parent && !request.trace_link.empty()) {
    if (const auto link = SpanContext::parse(request.trace_link)) span.link(*link);
  }
  tracer_->finish(std::move(span));
}

}  // namespace mcph::telemetry
