// codegen: Codegen agent runs as durable asynchronous tasks, with orchestrator auto-resume
// (issue #5; research notes in ../shared/reference/codegen.md, cited as §X below).
//
// Tools (the old Codegen MCP server's commands, §A.2, with their reply fields kept):
//   codegen_new          {query, repo?, branch?, pr?, task?, orchestrator_run_id?}
//   codegen_resume       {agent_run_id, query, task?, orchestrator_run_id?}
//   codegen_task_status  {task_id}
//   codegen_list         {status?, limit? (20, 1-100), repo?}
//   codegen_config       {action: get|set, key: api_token|org_id, value?}
// Every structured result is {"status":"success", ...} or, with isError,
// {"status":"error","error":<short>,"details":<long>}: the shape the old server's
// {"command","args"} envelope answered with (§A.1), which the host's HTTP command
// endpoints return as is.
//
// Configuration (one entry under `plugins:` in mcp-host.yaml):
//
//   - name: codegen
//     library: codegen
//     credentials:
//       api_token: "${CODEGEN_API_TOKEN:-}"  # bearer token from codegen.com/token; never logged
//       org_id: "${CODEGEN_ORG_ID:-}"        # the organisation id (a positive integer)
//     settings:
//       base_url: https://api.codegen.com    # the API; https, or http to loopback only (tests).
//                                            # Only here: no tool can change it (§D.2)
//       poll_interval_ms: 5000               # first interval between polls of a run; grows by
//                                            # half per unchanged poll ...
//       poll_max_interval_ms: 60000          # ... up to this (also the error backoff cap)
//       deadline_ms: 3600000                 # a run still going after this is `timed_out`:
//                                            # not failed, still polled ...
//       timed_out_poll_interval_ms: 300000   # ... this slowly
//       resume_grace_ms: 120000              # after a resume, a terminal status counts only
//                                            # once the run was seen active, or after this
//       retention_ms: 604800000              # finished tasks (and idle orchestrator links)
//                                            # older than this (7 days) are deleted
//       get_budget_per_30s: 50               # GETs per 30 s per organisation for this instance
//                                            # (upstream limit 60; at most 59); a fifth is
//                                            # kept free of background polling for tool calls
//       list_max_pages: 5                    # codegen_list with filters reads at most this
//                                            # many pages of 100 runs
//       request_timeout_ms: 30000            # per HTTP request (connect: at most 10 s)
//       max_resume_chars: 40000              # size cap of one orchestrator resume prompt (bytes)
//
// Credentials resolve per caller. A user signed in with OAuth (HTTP, auth.mode oauth: a
// non-empty principal) enters their own api_token and org_id on the sign-in form, which
// checks them with one GET of the organisation's newest run (401/403: refused; network,
// 5xx, 429: "try again"); the host keeps them encrypted. Their calls use them, and the
// poller and orchestrator auto-resume ask the host for them by principal
// (host.user_credential); nothing of theirs falls back to the YAML or the environment. Once
// revoked, their tasks are paused (kept, no request; codegen_task_status says why) until
// they sign in again. codegen_config set is refused for them (they sign in again instead)
// and get reports the source "user". Everyone else (stdio, static bearer tokens: the empty
// principal) resolves in this order: a value set with codegen_config set (durable, in the
// host's state store) > the instance's YAML credentials > the environment variables
// CODEGEN_API_TOKEN / CODEGEN_ORG_ID. codegen_config get reports which one is in effect
// ("user", "runtime", "yaml", "environment"), never the token.
//
// Durable state keys (per instance; principals hex-encoded): task/<p>/<task_id>,
// owner/<org>/<run_id>, cfg//{api_token,org_id} (the empty principal's only),
// orch/<p>/<org>/<run>, orchq/<p>/<org>/<run>/<child_run>, orchout/<p>/<org>/<run>.
#include <memory>

#include "api.hpp"
#include "budget.hpp"
#include "mcp_plugin/sdk.hpp"
#include "poller.hpp"
#include "settings.hpp"
#include "tasks.hpp"
#include "util.hpp"

namespace codegen {
namespace {

using mcph::sdk::Call;
using mcph::sdk::ToolSpec;

// Upstream prompts beyond this were refused by the old client's validation (§A.3).
constexpr size_t kMaxPrompt = 50000;

// A tool failure with the envelope's {error, details}.
struct Failure {
  mcph_status code;
  std::string error;
  std::string details;
};

[[noreturn]] void fail(mcph_status code, std::string error, std::string details = {}) {
  throw Failure{code, std::move(error), std::move(details)};
}

std::string trimmed(const json& v) {
  if (!v.is_string()) return {};
  std::string_view s = v.get_ref<const std::string&>();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// An optional string argument: absent, null and "" are all "not given" (old clients send
// nulls, §A.2).
std::optional<std::string> opt_arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_string()) return std::nullopt;
  std::string s = trimmed(*it);
  return s.empty() ? std::nullopt : std::optional(s);
}

// What a Codegen API token can look like (it is never echoed, not even in an error).
bool plausible_token(const std::string& token) {
  bool printable = !token.empty();
  for (unsigned char c : token) printable = printable && c > 0x20 && c < 0x7f;
  return token.size() >= 8 && token.size() <= 4096 && printable;
}

// For a signed-in user who tries to set a credential, or whose sign-in lacks one (the
// plugin was added after it).
constexpr const char* kSignInAgain =
    "for a user signed in with OAuth the Codegen API token and organisation id come from the sign-in form only; sign in "
    "to this server again to enter them (nothing is saved here)";

std::optional<int64_t> opt_id(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return std::nullopt;
  auto v = positive_int(*it);
  if (!v) fail(MCPH_ERR_INVALID_ARGUMENT, std::string(key) + " must be a positive integer");
  return v;
}

// ---- schemas ----------------------------------------------------------------------------

const json kRunId = {{"anyOf", json::array({json{{"type", "integer"}, {"minimum", 1}},
                                            json{{"type", "string"}, {"pattern", "^[1-9][0-9]{0,17}$"}}})}};
const json kOptRunId = {{"anyOf", json::array({json{{"type", "integer"}, {"minimum", 1}},
                                               json{{"type", "string"}, {"pattern", "^[1-9][0-9]{0,17}$"}},
                                               json{{"type", "null"}}})}};

json opt_string_schema(const std::string& description, int max_len) {
  return json{{"type", json::array({"string", "null"})}, {"maxLength", max_len}, {"description", description}};
}

// Output schemas describe both shapes (success and error), so every structuredContent we
// send conforms, also on isError results.
json output_schema(json properties) {
  properties["status"] = {{"type", "string"}, {"enum", {"success", "error"}}};
  properties["details"] = {{"type", "string"}};
  properties["message"] = {{"type", "string"}};
  if (!properties.contains("error")) properties["error"] = {{"type", json::array({"string", "null"})}};
  return json{{"type", "object"}, {"properties", std::move(properties)}, {"required", {"status"}}};
}

json started_output() {
  return output_schema({{"task_id", {{"type", "string"}}},
                        {"agent_run_id", {{"type", "integer"}}},
                        {"state", {{"type", "string"}}},
                        {"web_url", {{"type", json::array({"string", "null"})}}},
                        {"orchestrator_run_id", {{"type", json::array({"integer", "null"})}}},
                        {"upstream_status", {{"type", json::array({"string", "null"})}}},
                        {"kind", {{"type", "string"}}}});
}

class Codegen : public mcph::sdk::Plugin {
 public:
  Codegen(mcph::sdk::Host& host, const json& settings)
      : Plugin(host),
        settings_(Settings::parse(settings)),
        budget_(static_cast<size_t>(settings_.get_budget_per_30s), 30000,
                static_cast<size_t>(settings_.get_budget_per_30s / 5)),
        config_(host, redactor_),
        store_(host),
        api_(host, settings_.base_url, budget_, redactor_, static_cast<uint32_t>(settings_.request_timeout_ms)) {
    if (auto org = host.credential("org_id"); org && !positive_int(std::string_view(*org))) {
      throw std::runtime_error("credentials.org_id must be a positive integer (the Codegen organisation id)");
    }
    register_tools();
    // The organisation id is an identifier, not a secret: run results that mention it must
    // keep the number (the host redacts every undeclared credential).
    declare_credential("org_id", /*secret=*/false);
    // Over HTTP with OAuth each user signs in with their own token and organisation, checked
    // before anything is issued; elsewhere the YAML's, the environment's or codegen_config's.
    user_credential("api_token", "Codegen API token",
                    "Create one at codegen.com/token. It is stored encrypted and used only for your own runs.");
    user_credential("org_id", "Codegen organisation id",
                    "The number of the Codegen organisation your runs belong to (CODEGEN_ORG_ID in Codegen's CLI).",
                    /*secret=*/false);
    credential_check([this](Call& call) { return check_sign_in(call); });
    // Last: the thread starts only once everything it uses exists.
    poller_ = std::make_unique<Poller>(host, settings_, api_, config_, store_);
  }

 private:
  using Fn = json (Codegen::*)(Call&, const json&);

  void add(const ToolSpec& spec, Fn fn) {
    tool(spec, [this, fn](Call& call, const json& args) { return guarded(fn, call, args); });
  }

  // Every failure becomes an isError result with the envelope's shape; every text passes
  // through the redactor (runtime tokens are unknown to the host, §D.1).
  json guarded(Fn fn, Call& call, const json& args) {
    // A call proves its user is signed in (again): their paused tasks are polled now.
    if (const std::string principal = call.principal(); !principal.empty()) poller_->signed_in(principal);
    Failure f;
    try {
      return (this->*fn)(call, args);
    } catch (const Failure& e) {
      f = e;
    } catch (const std::exception& e) {
      f = Failure{MCPH_ERR_INTERNAL, "internal error", e.what()};
    }
    if (f.details.empty()) f.details = f.error;
    const std::string error = redactor_.apply(f.error), details = redactor_.apply(f.details);
    json r = mcph::sdk::text(error == details ? error : error + " (" + details + ")", true);
    r["structuredContent"] = json{{"status", "error"}, {"error", error}, {"details", details}};
    return r;
  }

  json ok(json value, const std::string& summary) {
    return mcph::sdk::structured(std::move(value), redactor_.apply(summary));
  }

  Auth require_auth(Call& call, const std::string& principal) {
    const Credentials c = config_.resolve(principal, &call);
    const bool user = !principal.empty();
    if (!c.token) {
      fail(MCPH_ERR_UNAUTHENTICATED, "Codegen API token not configured",
           user ? kSignInAgain
                : "set credentials.api_token in the host configuration, the CODEGEN_API_TOKEN environment variable, "
                  "or call codegen_config with action=set, key=api_token");
    }
    if (!c.org_error.empty()) fail(MCPH_ERR_FAILED_PRECONDITION, "org_id is not a positive integer", c.org_error);
    if (!c.org_id) {
      fail(MCPH_ERR_FAILED_PRECONDITION, "Codegen organization id not configured",
           user ? kSignInAgain
                : "set credentials.org_id in the host configuration, the CODEGEN_ORG_ID environment variable, or "
                  "call codegen_config with action=set, key=org_id");
    }
    return Auth{*c.token, *c.org_id};
  }

  // A run created through this plugin by another principal is invisible to this one.
  void check_owner(const Auth& auth, int64_t run_id, const std::string& principal, const std::string& what) {
    if (auto owner = store_.owner(auth.org_id, run_id); owner && *owner != principal) {
      fail(MCPH_ERR_NOT_FOUND, what + " " + std::to_string(run_id) + " not found",
           "no agent run " + std::to_string(run_id) + " is visible to this caller");
    }
  }

  // Validation of an orchestrator before anything happens: visible, and exists upstream.
  void check_orchestrator(Call& call, const Auth& auth, int64_t orch, const std::string& principal) {
    check_owner(auth, orch, principal, "orchestrator run");
    ApiResult r = api_.get_run(auth, orch, &call);
    if (!r.ok()) {
      if (r.err->http == 404) {
        fail(MCPH_ERR_NOT_FOUND, "orchestrator run " + std::to_string(orch) + " not found", r.err->details);
      }
      fail(r.err->code, "cannot check orchestrator run " + std::to_string(orch) + ": " + r.err->error, r.err->details);
    }
  }

  // A new task record for a run the API just created or resumed, saved and tracked.
  TaskRecord track(const std::string& principal, const std::string& task_id, const std::string& kind,
                   const Auth& auth, const json& run, int64_t run_id, std::optional<int64_t> orch, json metadata,
                   bool mcp_task, std::string trace) {
    const int64_t now = now_ms();
    TaskRecord t;
    t.mcp_task = mcp_task;
    t.trace = std::move(trace);
    t.task_id = task_id;
    t.principal = principal;
    t.kind = kind;
    t.org_id = auth.org_id;
    t.agent_run_id = run_id;
    t.orchestrator_run_id = orch;
    t.upstream_status = run.value("status", json()).is_string() ? run["status"].get<std::string>() : "";
    t.state = iequals(t.upstream_status, "PENDING") ? TaskState::Pending : TaskState::Running;
    if (run.value("web_url", json()).is_string()) t.web_url = run["web_url"].get<std::string>();
    t.metadata = std::move(metadata);
    t.created_ms = now;
    t.deadline_ms = now + settings_.timing.deadline_ms;
    t.interval_ms = settings_.timing.poll_interval_ms;
    t.next_poll_ms = now + settings_.timing.poll_interval_ms;
    if (kind == "resume") {
      // The response may still show the previous outcome (§D.7, §E).
      t.resumed_ms = now;
      t.await_active = classify_status(t.upstream_status) != RunClass::NonTerminal;
    }
    if (!store_.put(t)) {
      fail(MCPH_ERR_UNAVAILABLE, "agent run " + std::to_string(run_id) + " was started but could not be tracked",
           "the host's state store refused the write; follow the run at " + t.web_url.value_or("its web_url"));
    }
    store_.mark_new(t);  // for the polling replica, if it is another one
    poller_->track(t);
    return t;
  }

  json started_reply(const TaskRecord& t, const std::string& message) {
    return ok(json{{"status", "success"},
                   {"task_id", t.task_id},
                   {"agent_run_id", t.agent_run_id},
                   {"state", to_string(t.state)},
                   {"web_url", t.web_url ? json(*t.web_url) : json()},
                   {"message", message},
                   {"orchestrator_run_id", t.orchestrator_run_id ? json(*t.orchestrator_run_id) : json()},
                   {"upstream_status", t.upstream_status.empty() ? json() : json(t.upstream_status)},
                   {"kind", t.kind}},
              message + (t.web_url ? " " + *t.web_url : ""));
  }

  // ---- codegen_new ------------------------------------------------------------------------

  json do_new(Call& call, const json& args) {
    const std::string principal = call.principal();
    // 1. Validate everything before any side effect (§D.11).
    const std::string query = trimmed(args.value("query", json()));
    if (query.empty()) fail(MCPH_ERR_INVALID_ARGUMENT, "query must not be empty");
    const auto repo = opt_arg(args, "repo"), branch = opt_arg(args, "branch"), task = opt_arg(args, "task");
    std::optional<int64_t> pr;
    if (auto it = args.find("pr"); it != args.end() && !it->is_null()) {
      std::string text = it->is_string() ? trimmed(*it) : "";
      if (!text.empty() && text.front() == '#') text.erase(0, 1);
      pr = it->is_string() ? positive_int(std::string_view(text)) : positive_int(*it);
      if (!pr) fail(MCPH_ERR_INVALID_ARGUMENT, "pr must be a positive pull request number");
    }
    const auto orch = opt_id(args, "orchestrator_run_id");
    // The old server's prompt (§A.2): each line only when given.
    std::string prompt;
    if (repo) prompt += "Repository: " + *repo + "\n";
    if (branch) prompt += "Branch: " + *branch + "\n";
    if (pr) prompt += "PR: #" + std::to_string(*pr) + "\n";
    if (task) prompt += "Task: " + *task + "\n";
    prompt += "Query: " + query;
    if (prompt.size() > kMaxPrompt) {
      fail(MCPH_ERR_INVALID_ARGUMENT, "the prompt is too long",
           std::to_string(prompt.size()) + " bytes; the limit is " + std::to_string(kMaxPrompt));
    }
    const Auth auth = require_auth(call, principal);
    if (orch) check_orchestrator(call, auth, *orch, principal);

    // 2. Create the run synchronously, so the reply carries its id and web_url.
    const std::string task_id = new_uuid();
    json metadata = json::object();
    if (repo) metadata["repo"] = *repo;
    if (branch) metadata["branch"] = *branch;
    if (pr) metadata["pr"] = *pr;
    if (task) metadata["task_type"] = *task;
    if (orch) metadata["orchestrator_run_id"] = *orch;
    metadata["mcp_host_task_id"] = task_id;  // lets a human match runs to tasks
    ApiResult r = api_.create_run(auth, json{{"prompt", prompt}, {"metadata", metadata}}, &call);
    if (!r.ok()) fail(r.err->code, r.err->error, r.err->details);
    const auto run_id = positive_int(r.body.value("id", json()));
    if (!run_id) fail(MCPH_ERR_UNAVAILABLE, "the Codegen API did not return a run id", dump(r.body).substr(0, 300));
    store_.set_owner(auth.org_id, *run_id, principal);

    // 3. Track it and return at once.
    // A client that takes MCP tasks gets one that ends with the run (the poller reports it).
    const bool as_task = call.can_hand_over();
    const TaskRecord t = track(principal, task_id, "new", auth, r.body, *run_id, orch, metadata, as_task, call.trace_context());
    if (as_task) call.hand_over(t.task_id);
    return started_reply(t, "Agent run " + std::to_string(*run_id) + " started; follow it with codegen_task_status "
                            "task_id=" + task_id + ".");
  }

  // ---- codegen_resume -----------------------------------------------------------------------

  json do_resume(Call& call, const json& args) {
    const std::string principal = call.principal();
    const auto run_id = opt_id(args, "agent_run_id");
    if (!run_id) fail(MCPH_ERR_INVALID_ARGUMENT, "agent_run_id is required");
    const std::string query = trimmed(args.value("query", json()));
    if (query.empty()) fail(MCPH_ERR_INVALID_ARGUMENT, "query must not be empty");
    const auto task = opt_arg(args, "task");
    const auto orch = opt_id(args, "orchestrator_run_id");
    if (orch && *orch == *run_id) fail(MCPH_ERR_INVALID_ARGUMENT, "a run cannot be its own orchestrator");
    // The old server's resume prompt (§A.2).
    const std::string prompt = (task ? "Task: " + *task + "\n" : std::string()) + "Query: " + query;
    if (prompt.size() > kMaxPrompt) {
      fail(MCPH_ERR_INVALID_ARGUMENT, "the prompt is too long",
           std::to_string(prompt.size()) + " bytes; the limit is " + std::to_string(kMaxPrompt));
    }
    const Auth auth = require_auth(call, principal);
    check_owner(auth, *run_id, principal, "agent run");
    if (orch) check_orchestrator(call, auth, *orch, principal);

    // Whether a run must be COMPLETE to be resumed is unknown (§D.7, §E): the API decides,
    // and its error is surfaced, never swallowed.
    ApiResult r = api_.resume_run(auth, *run_id, prompt, &call);
    if (!r.ok()) fail(r.err->code, r.err->error, r.err->details);
    // Use the id the response returns (§D.7; §E: whether resume keeps the id is undocumented).
    const int64_t tracked = positive_int(r.body.value("id", json())).value_or(*run_id);
    if (tracked != *run_id) store_.set_owner(auth.org_id, tracked, principal);
    json metadata = json::object();
    if (task) metadata["task_type"] = *task;
    if (orch) metadata["orchestrator_run_id"] = *orch;
    metadata["resumed_run_id"] = *run_id;
    const bool as_task = call.can_hand_over();
    const TaskRecord t = track(principal, new_uuid(), "resume", auth, r.body, tracked, orch, metadata, as_task, call.trace_context());
    if (as_task) call.hand_over(t.task_id);
    return started_reply(t, "Agent run " + std::to_string(tracked) + " resumed; follow it with codegen_task_status "
                            "task_id=" + t.task_id + ".");
  }

  // ---- codegen_task_status ------------------------------------------------------------------

  json do_task_status(Call& call, const json& args) {
    const std::string task_id = trimmed(args.value("task_id", json()));
    auto t = store_.get(call.principal(), task_id);
    if (!t) {
      fail(MCPH_ERR_NOT_FOUND, "task " + task_id + " not found",
           "no task with this id for this caller; finished tasks are deleted after " +
               std::to_string(settings_.retention_ms / 3600000) + " h (settings.retention_ms)");
    }
    json v = task_view(*t);
    std::string summary = "Task " + t->task_id + " (agent run " + std::to_string(t->agent_run_id) + "): " +
                          to_string(t->state);
    if (!t->upstream_status.empty()) summary += ", upstream " + t->upstream_status;
    if (t->state == TaskState::TimedOut) {
      summary += "; past its deadline but still polled: the run may still finish";
    }
    if (!t->paused.empty()) summary += "; " + t->paused;
    if (t->result.is_string()) summary += "\n" + truncate_utf8(t->result.get<std::string>(), 2000);
    if (t->error) summary += "\nerror: " + *t->error;
    v["message"] = summary.substr(0, summary.find('\n'));
    return ok(std::move(v), summary);
  }

  // ---- codegen_list -------------------------------------------------------------------------

  json do_list(Call& call, const json& args) {
    const std::string principal = call.principal();
    const auto status = opt_arg(args, "status");
    const auto repo = opt_arg(args, "repo");
    int64_t limit = 20;
    if (auto it = args.find("limit"); it != args.end() && !it->is_null()) {
      auto v = positive_int(*it);
      if (!v || *v > 100) fail(MCPH_ERR_INVALID_ARGUMENT, "limit must be between 1 and 100");
      limit = *v;
    }
    const Auth auth = require_auth(call, principal);

    // Statuses compare case-insensitively; the task states completed/failed/running also
    // select every upstream status of that class.
    auto status_ok = [&](const json& run) {
      if (!status) return true;
      const std::string raw = run.value("status", json()).is_string() ? run["status"].get<std::string>() : "";
      if (iequals(raw, *status)) return true;
      const RunClass c = classify_status(raw);
      return (iequals(*status, "completed") && c == RunClass::Success) ||
             (iequals(*status, "failed") && c == RunClass::Failure) ||
             (iequals(*status, "running") && c == RunClass::NonTerminal && !raw.empty());
    };
    // The API has no repo filter (§C); runs carry the repo only in metadata we wrote.
    auto repo_ok = [&](const json& run) {
      if (!repo) return true;
      const json md = run.value("metadata", json());
      return md.is_object() && md.value("repo", json()).is_string() && iequals(md["repo"].get<std::string>(), *repo);
    };

    const bool filtered = status || repo;
    const int64_t page_size = filtered ? 100 : limit;  // the API's maximum page (§B.2)
    json runs = json::array();
    int64_t skip = 0, pages = 0, scanned = 0;
    json upstream_total;
    bool exhausted = false;
    while (pages < settings_.list_max_pages && static_cast<int64_t>(runs.size()) < limit) {
      ApiResult r = api_.list_runs(auth, skip, page_size, &call);
      if (!r.ok()) fail(r.err->code, r.err->error, r.err->details);
      ++pages;
      const json items = r.body.value("items", json::array());
      if (r.body.value("total", json()).is_number_integer()) upstream_total = r.body["total"];
      if (!items.is_array()) fail(MCPH_ERR_UNAVAILABLE, "the Codegen API returned a page without items");
      for (const auto& run : items) {
        ++scanned;
        if (!run.is_object() || !status_ok(run) || !repo_ok(run)) continue;
        const auto id = positive_int(run.value("id", json()));
        if (!id) continue;
        if (auto owner = store_.owner(auth.org_id, *id); owner && *owner != principal) continue;
        runs.push_back(json{{"id", *id},
                            {"status", run.value("status", json())},
                            {"created_at", run.value("created_at", json())},
                            {"web_url", run.value("web_url", json())},
                            {"metadata", run.value("metadata", json())},
                            {"source_type", run.value("source_type", json())}});
        if (static_cast<int64_t>(runs.size()) == limit) break;
      }
      skip += static_cast<int64_t>(items.size());
      if (static_cast<int64_t>(items.size()) < page_size ||
          (upstream_total.is_number_integer() && skip >= upstream_total.get<int64_t>())) {
        exhausted = true;
        break;
      }
    }
    const bool complete = exhausted || static_cast<int64_t>(runs.size()) == limit;
    std::string message = std::to_string(runs.size()) + " run(s)";
    if (!complete) {
      message += "; stopped after " + std::to_string(pages) + " page(s) of " + std::to_string(page_size) +
                 " (settings.list_max_pages), older matches may exist";
    }
    // The text lists the runs too: clients before MCP 2025-06-18 see no structuredContent.
    std::string text = message;
    for (const auto& run : runs) {
      const json md = run.value("metadata", json());
      text += "\n" + std::to_string(run["id"].get<int64_t>()) + "  " +
              (run["status"].is_string() ? run["status"].get<std::string>() : "-") + "  " +
              (run["created_at"].is_string() ? run["created_at"].get<std::string>() : "-") + "  " +
              (md.is_object() && md.value("repo", json()).is_string() ? md["repo"].get<std::string>() + "  " : "") +
              (run["web_url"].is_string() ? run["web_url"].get<std::string>() : "");
    }
    const size_t count = runs.size();
    return ok(json{{"status", "success"},
                   {"runs", std::move(runs)},
                   {"total", count},
                   {"limit", limit},
                   {"pages_scanned", pages},
                   {"scanned", scanned},
                   {"upstream_total", upstream_total},
                   {"complete", complete},
                   {"message", message}},
              text);
  }

  // ---- codegen_config -----------------------------------------------------------------------

  json do_config(Call& call, const json& args) {
    const std::string principal = call.principal();
    const std::string action = args.value("action", "");
    std::string key = args.value("key", "");
    // The old server's spelling (§A.2, §A.6).
    if (key == "api-token") key = "api_token";
    if (key == "org-id") key = "org_id";
    if (key != "api_token" && key != "org_id") {
      // Only these two: base_url comes from YAML alone (§D.2).
      fail(MCPH_ERR_INVALID_ARGUMENT, "unknown key '" + key + "'", "only api_token and org_id can be read or set");
    }
    if (action == "set") {
      // A signed-in user's credentials stay with their sign-in (encrypted), never in clear here.
      if (!principal.empty()) fail(MCPH_ERR_FAILED_PRECONDITION, key + " comes from your sign-in", kSignInAgain);
      const json value = args.value("value", json());
      if (value.is_null()) fail(MCPH_ERR_INVALID_ARGUMENT, "value is required for set");
      if (key == "api_token") {
        const std::string token = value.is_string() ? value.get<std::string>() : "";
        if (!plausible_token(token)) {
          fail(MCPH_ERR_INVALID_ARGUMENT, "api_token must be 8 to 4096 printable characters without spaces");
        }
        if (!config_.set_token(token)) {
          fail(MCPH_ERR_UNAVAILABLE, "could not save api_token", "the host's state store refused the write");
        }
        host().info("api_token set at runtime");  // never the value (§D.1)
        return ok(json{{"status", "success"},
                       {"key", key},
                       {"message", "api_token saved in the host's state store; it now takes precedence over the "
                                   "YAML credentials and the environment for this caller"}},
                  "api_token saved");
      }
      const auto org = positive_int(value);
      if (!org) fail(MCPH_ERR_INVALID_ARGUMENT, "org_id must be a positive integer");
      if (!config_.set_org(*org)) {
        fail(MCPH_ERR_UNAVAILABLE, "could not save org_id", "the host's state store refused the write");
      }
      return ok(json{{"status", "success"},
                     {"key", key},
                     {"message", "org_id set to " + std::to_string(*org) + " (saved in the host's state store)"}},
                "org_id set to " + std::to_string(*org));
    }
    if (action != "get") fail(MCPH_ERR_INVALID_ARGUMENT, "action must be get or set");
    const Credentials c = config_.resolve(principal, &call);
    if (key == "api_token") {
      // Whether it is set and where from; never the token, not even a part of it (§D.1).
      const std::string message = c.token ? "api_token is set (source: " + c.token_source + ")" : "api_token is not set";
      return ok(json{{"status", "success"},
                     {"key", key},
                     {"set", c.token.has_value()},
                     {"source", c.token_source},
                     {"value", c.token ? json("********") : json()},
                     {"base_url", settings_.base_url},
                     {"message", message}},
                message);
    }
    std::string message = c.org_id ? "org_id is " + std::to_string(*c.org_id) + " (source: " + c.org_source + ")"
                                   : c.org_error.empty() ? "org_id is not set" : c.org_error;
    return ok(json{{"status", "success"},
                   {"key", key},
                   {"set", c.org_id.has_value()},
                   {"source", c.org_source},
                   {"value", c.org_id ? json(*c.org_id) : json()},
                   {"base_url", settings_.base_url},
                   {"message", message}},
              message);
  }

  // ---- the sign-in form's check ----------------------------------------------------------------

  // What a user entered on the OAuth sign-in form: a plausible token and a positive org_id
  // that the token can read (one GET of the organisation's newest run, from its budget).
  // Refusals never quote the token.
  json check_sign_in(Call& call) {
    using mcph::sdk::ToolError;
    const std::string token = call.credential("api_token").value_or("");
    if (!plausible_token(token)) {
      throw ToolError("A Codegen API token is 8 to 4096 characters without spaces: copy it from codegen.com/token.",
                      MCPH_ERR_INVALID_ARGUMENT);
    }
    const auto org = positive_int(std::string_view(call.credential("org_id").value_or("")));
    if (!org) throw ToolError("The Codegen organisation id must be a positive whole number, e.g. 123.");
    const ApiResult r = api_.list_runs(Auth{token, *org}, 0, 1, &call);
    if (r.ok()) return json::object();
    const ApiError& e = *r.err;
    if (e.retryable || e.code == MCPH_ERR_CANCELLED) {
      throw ToolError("Codegen could not check these credentials just now (" + e.error + "). Please try again.",
                      MCPH_ERR_UNAVAILABLE);
    }
    if (e.http == 401) {
      throw ToolError("Codegen did not accept this API token (HTTP 401). Check that you copied all of it.",
                      MCPH_ERR_UNAUTHENTICATED);
    }
    const std::string which = "organisation " + std::to_string(*org);
    if (e.http == 403) {
      throw ToolError("Codegen refused this API token for " + which + " (HTTP 403). Check the organisation id, and "
                      "that the token belongs to one of its members.", MCPH_ERR_PERMISSION_DENIED);
    }
    throw ToolError("Codegen refused the check of " + which + ": " + e.error, e.code);
  }

  // ---- registration -------------------------------------------------------------------------

  void register_tools() {
    const json defs = {{"run_id", kRunId}};
    const json opt_orch = {{"anyOf", kOptRunId["anyOf"]},
                           {"description", "Agent run id of an orchestrator run: when this run finishes, its result is "
                                           "delivered to the orchestrator by resuming it (batched with other children, "
                                           "only while the orchestrator is not active)."}};
    add(ToolSpec("codegen_new")
            .title("Start a Codegen agent run")
            .task_support(MCPH_TASK_SUPPORT_OPTIONAL)  // as a task it ends when the run does
            .description("Starts a Codegen agent run and returns at once with task_id, agent_run_id and web_url. The "
                         "run is tracked in the background; poll codegen_task_status with the task_id for the outcome. "
                         "With orchestrator_run_id, the result is sent to that orchestrator run when it is idle.")
            .input({{"type", "object"},
                    {"properties",
                     {{"query", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxPrompt},
                                 {"description", "What the agent should do."}}},
                      {"repo", opt_string_schema("Repository, e.g. owner/name (put into the prompt and metadata).", 300)},
                      {"branch", opt_string_schema("Branch to work on.", 300)},
                      {"pr", {{"anyOf", json::array({json{{"type", "integer"}, {"minimum", 1}},
                                                     json{{"type", "string"}, {"pattern", "^#?[1-9][0-9]{0,17}$"}},
                                                     json{{"type", "null"}}})},
                              {"description", "Pull request number."}}},
                      {"task", opt_string_schema("Kind of task, e.g. feature, bugfix, review.", 2000)},
                      {"orchestrator_run_id", opt_orch}}},
                    {"required", {"query"}},
                    {"additionalProperties", false}})
            .output(started_output())
            .annotations({{"title", "Start a Codegen agent run"}, {"readOnlyHint", false}, {"destructiveHint", false},
                          {"idempotentHint", false}, {"openWorldHint", true}}),
        &Codegen::do_new);

    add(ToolSpec("codegen_resume")
            .title("Resume a Codegen agent run")
            .task_support(MCPH_TASK_SUPPORT_OPTIONAL)
            .description("Sends a follow-up prompt to an existing agent run and tracks it as a new task (returns at "
                         "once with task_id). A terminal status left over from before the resume is not taken as "
                         "the new outcome.")
            .input({{"type", "object"},
                    {"properties",
                     {{"agent_run_id", {{"$ref", "#/$defs/run_id"}, {"description", "The run to resume."}}},
                      {"query", {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxPrompt},
                                 {"description", "The follow-up instruction."}}},
                      {"task", opt_string_schema("Kind of task (put into the prompt).", 2000)},
                      {"orchestrator_run_id", opt_orch}}},
                    {"required", {"agent_run_id", "query"}},
                    {"additionalProperties", false},
                    {"$defs", defs}})
            .output(started_output())
            .annotations({{"title", "Resume a Codegen agent run"}, {"readOnlyHint", false}, {"destructiveHint", false},
                          {"idempotentHint", false}, {"openWorldHint", true}}),
        &Codegen::do_resume);

    add(ToolSpec("codegen_task_status")
            .title("Codegen task status")
            .description("The state of a task started by codegen_new or codegen_resume: pending, running, completed, "
                         "failed, or timed_out (past the deadline but still watched), with the result or error, "
                         "timestamps, metadata and the raw upstream status. Reads the tracked state; no API call.")
            .input({{"type", "object"},
                    {"properties", {{"task_id", {{"type", "string"}, {"minLength", 1}, {"maxLength", 64},
                                                 {"pattern", "^[A-Za-z0-9-]+$"}, {"description", "From codegen_new."}}}}},
                    {"required", {"task_id"}},
                    {"additionalProperties", false}})
            .output(output_schema({{"task_id", {{"type", "string"}}},
                                   {"agent_run_id", {{"type", "integer"}}},
                                   {"state", {{"type", "string"}}},
                                   {"result", {{"type", json::array({"string", "null"})}}},
                                   {"created_at", {{"type", "string"}}},
                                   {"completed_at", {{"type", json::array({"string", "null"})}}},
                                   {"web_url", {{"type", json::array({"string", "null"})}}},
                                   {"metadata", {{"type", "object"}}},
                                   {"upstream_status", {{"type", json::array({"string", "null"})}}},
                                   {"kind", {{"type", "string"}}},
                                   {"orchestrator_run_id", {{"type", json::array({"integer", "null"})}}},
                                   {"polls", {{"type", "integer"}}},
                                   {"last_polled_at", {{"type", json::array({"string", "null"})}}},
                                   {"last_error", {{"type", json::array({"string", "null"})}}},
                                   {"paused", {{"type", json::array({"string", "null"})}}}}))
            .annotations({{"title", "Codegen task status"}, {"readOnlyHint", true}, {"openWorldHint", false}}),
        &Codegen::do_task_status);

    add(ToolSpec("codegen_list")
            .title("List Codegen agent runs")
            .description("Lists the organisation's agent runs, newest first. status matches the upstream status "
                         "case-insensitively (or completed / failed / running for every status of that kind); repo "
                         "matches the repo recorded by codegen_new. With a filter, pages of 100 are read until limit "
                         "matches are found or settings.list_max_pages pages were read (complete=false then).")
            .input({{"type", "object"},
                    {"properties",
                     {{"status", opt_string_schema("e.g. COMPLETE, ERROR, ACTIVE, completed, failed, running.", 64)},
                      {"limit", {{"anyOf", json::array({json{{"type", "integer"}, {"minimum", 1}, {"maximum", 100}},
                                                        json{{"type", "string"}, {"pattern", "^(100|[1-9][0-9]?)$"}},
                                                        json{{"type", "null"}}})},
                                 {"default", 20},
                                 {"description", "How many runs to return (1-100, default 20)."}}},
                      {"repo", opt_string_schema("Only runs started for this repository (owner/name).", 300)}}},
                    {"additionalProperties", false}})
            .output(output_schema(
                {{"runs", {{"type", "array"},
                           {"items", {{"type", "object"},
                                      {"properties", {{"id", {{"type", "integer"}}},
                                                      {"status", {{"type", json::array({"string", "null"})}}},
                                                      {"created_at", {{"type", json::array({"string", "null"})}}},
                                                      {"web_url", {{"type", json::array({"string", "null"})}}},
                                                      {"metadata", {{"type", json::array({"object", "null"})}}},
                                                      {"source_type", {{"type", json::array({"string", "null"})}}}}},
                                      {"required", {"id"}}}}}},
                 {"total", {{"type", "integer"}}},
                 {"limit", {{"type", "integer"}}},
                 {"pages_scanned", {{"type", "integer"}}},
                 {"scanned", {{"type", "integer"}}},
                 {"upstream_total", {{"type", json::array({"integer", "null"})}}},
                 {"complete", {{"type", "boolean"}}}}))
            .annotations({{"title", "List Codegen agent runs"}, {"readOnlyHint", true}, {"openWorldHint", true}}),
        &Codegen::do_list);

    add(ToolSpec("codegen_config")
            .title("Codegen configuration")
            .description("get: whether api_token is set and where it comes from (user: your sign-in; runtime, yaml, "
                         "environment), or the org_id; the token itself is never shown. set: save api_token or org_id "
                         "(an integer) in the host's state store; they take precedence over YAML and environment. "
                         "Users signed in with OAuth change theirs by signing in again. The API base URL is set in "
                         "the host configuration only.")
            .input({{"type", "object"},
                    {"properties",
                     {{"action", {{"type", "string"}, {"enum", {"get", "set"}}}},
                      {"key", {{"type", "string"}, {"enum", {"api_token", "org_id", "api-token", "org-id"}}}},
                      {"value", {{"type", json::array({"string", "integer", "null"})}, {"maxLength", 4096},
                                 {"description", "For set: the token, or the organisation id."}}}}},
                    {"required", {"action", "key"}},
                    {"additionalProperties", false},
                    {"if", {{"properties", {{"action", {{"const", "set"}}}}}}},
                    {"then", {{"required", {"value"}}}}})
            .output(output_schema({{"key", {{"type", "string"}}},
                                   {"set", {{"type", "boolean"}}},
                                   {"source", {{"type", "string"}}},
                                   {"value", {{"type", json::array({"string", "integer", "null"})}}},
                                   {"base_url", {{"type", "string"}}}}))
            .annotations({{"title", "Codegen configuration"}, {"readOnlyHint", false}, {"destructiveHint", false},
                          {"idempotentHint", true}, {"openWorldHint", false}}),
        &Codegen::do_config);
  }

  // Order matters: members are built top to bottom and the poller (last) uses the others.
  Settings settings_;
  Redactor redactor_;
  OrgBudget budget_;
  ConfigStore config_;
  TaskStore store_;
  Api api_;
  std::unique_ptr<Poller> poller_;
};

}  // namespace
}  // namespace codegen

MCPH_SDK_PLUGIN(codegen::Codegen, "codegen", "1.0.0",
                "Codegen agent runs as durable asynchronous tasks, with orchestrator auto-resume")
