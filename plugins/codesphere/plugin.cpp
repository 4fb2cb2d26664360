// codesphere: the Codesphere plugin — workspaces, pipelines, logs and domains through the
// Codesphere public API. It replaces the TypeScript `codesphere-mcp` server: same tool and
// argument names (IDs may be integers or numeric strings), real pipeline states, bounded
// waiting with progress and cancellation, SSE logs, merge-not-replace domain routing.
// Upstream facts are cited from the research notes (shared/reference/codesphere.md) as §N.
//
// Configuration (an entry under `plugins:` in mcp-host.yaml):
//
//   - name: codesphere
//     library: codesphere
//     credentials:
//       api_token: "${CODESPHERE_API_TOKEN:-}"   # Codesphere API key (avatar → User Settings →
//                                                # API Keys). Without it the plugin still loads
//                                                # and every tool says how to set it.
//     settings:
//       base_url: https://codesphere.com/api     # API root; cloud.codesphere.com/api or a
//                                                # self-hosted https://<host>/api also work (§2.1)
//       team_id: ""                              # default team for teamId; empty = the token's
//                                                # only team (several teams: tools ask for teamId)
//       request_timeout_ms: 30000                # one upstream request (each retry gets its own)
//       poll_interval_ms: 5000                   # how often a wait checks the pipeline/status
//       prepare_timeout_ms: 180000               # deploy: longest wait for the prepare stage
//       run_timeout_ms: 90000                    # deploy/restart: longest wait for run to be up
//       create_timeout_ms: 240000                # create_workspace: longest wait until it runs
//       logs_timeout_ms: 10000                   # view_logs: longest read of a log stream
//       max_retries: 3                           # GET retries on network errors/timeouts/5xx, and
//                                                # repeats after a 429 (any method)
//       retry_backoff_ms: 500                    # first retry delay, doubled per retry (max 10 s)
//       max_retry_after_ms: 60000                # a 429 asking to wait longer fails instead
//
// The host cancels a call after server.call_timeout_ms (default 300000): keep
// prepare_timeout_ms + run_timeout_ms (deploy) and create_timeout_ms below it, or raise it.
//
// Tools (see each ToolSpec for the full description):
//   list_teams, list_plans                 discovery (read-only)
//   list_workspaces {teamId?}              a team's workspaces (read-only)
//   get_workspace_status {workspaceId}     details, running, pipeline per stage (read-only)
//   deploy {workspaceId, remote?, skipPrepare?, waitForPrepare?, profile?}
//   stop_workspace {workspaceId}           destructive
//   restart_workspace {workspaceId}
//   create_workspace {gitUrl, name, planId, branch?, teamId?, isPrivateRepo?, waitForRunning?}
//   view_logs {workspaceId, stage?, step?, lines?, server?}   (read-only, SSE)
//   switch_domain {domainName, workspaceId, path?, teamId?}   destructive
//   list_domains {teamId?}                 (read-only)
//   list_env_vars {workspaceId, showValues?}   values hidden by default (read-only)
//   git_pull {workspaceId, remote?, branch?}
//   scale_workspace {workspaceId, replicas}
//   delete_workspace {workspaceId, confirm: true}   destructive; refuses without confirm
//
// Files: client (HTTP, errors, retries), sse (log stream parsing), pipeline (stage rules),
// waiting (bounded polls), settings, util, errors; tools_*.cpp hold the handlers (tools.hpp
// lists which file has which tool).
#include "errors.hpp"
#include "settings.hpp"
#include "tools.hpp"

namespace codesphere {

namespace {

class CodespherePlugin final : public sdk::Plugin, private Registry {
 public:
  CodespherePlugin(sdk::Host& host, const json& settings) : Plugin(host), settings_(Settings::parse(settings)) {
    register_workspace_tools(*this);
    register_pipeline_tools(*this);
    register_log_tools(*this);
    register_domain_tools(*this);
    register_more_tools(*this);
    // Over HTTP with OAuth each user signs in with their own token; elsewhere the YAML's.
    user_credential("api_token", "Codesphere API token",
                    "Create one in Codesphere under Settings > API tokens. It is stored encrypted and used only for your calls.");
    // ...which is checked before anything is issued, and picks the user's default team.
    credential_check([this](sdk::Call& call) { return check_token(call); });
    if (!host.credential("api_token")) {
      host.info("no credentials.api_token (CODESPHERE_API_TOKEN): over stdio every tool will answer how to set it; "
                "over HTTP with OAuth each user brings their own");
    }
  }

 private:
  void add(const sdk::ToolSpec& spec, ToolFn fn) override {
    tool(spec, [this, fn = std::move(fn)](sdk::Call& call, const json& args) {
      // Per call: the token belongs to the caller (their own, when signed in with OAuth).
      auto token = call.credential("api_token");
      if (!token || token->empty()) throw sdk::ToolError(std::string(kMissingToken), MCPH_ERR_UNAUTHENTICATED);
      Env env{call, settings_, Client(call, settings_, *token)};
      return fn(env, args);
    });
  }

  // The sign-in form's check (§1.2, without its weak points): the token must see at least
  // one team (GET /teams); with several, the user picks the default team rather than
  // silently getting the first. The pick comes back as the user's credential "team_id".
  json check_token(sdk::Call& call) {
    auto token = call.credential("api_token");
    if (!token || token->empty()) throw sdk::ToolError("Please enter your Codesphere API token.", MCPH_ERR_INVALID_ARGUMENT);
    json teams;
    try {
      teams = Client(call, settings_, *token).get("/teams").body;
    } catch (const UpstreamError& e) {
      if (e.http_status() == 401 || e.http_status() == 403) {
        throw sdk::ToolError("Codesphere did not accept this API token (HTTP " + std::to_string(e.http_status()) +
                                 "). Check that you copied all of it.",
                             MCPH_ERR_UNAUTHENTICATED);
      }
      throw sdk::ToolError("Codesphere could not check the token just now (" + std::string(e.what()) + "). Please try again.",
                           e.transient() ? MCPH_ERR_UNAVAILABLE : MCPH_ERR_FAILED_PRECONDITION);
    }
    json options = json::array();
    if (teams.is_array()) {
      for (const auto& t : teams) {
        auto id = t.is_object() && t.contains("id") ? coerce_id(t["id"]) : std::nullopt;
        if (id) options.push_back({{"value", std::to_string(*id)}, {"label", text_field(t, "name", "team") + " (" + std::to_string(*id) + ")"}});
      }
    }
    if (options.empty()) {
      throw sdk::ToolError("This API token sees no Codesphere teams. Create a team, or use a token with access to one.",
                           MCPH_ERR_FAILED_PRECONDITION);
    }
    if (options.size() == 1) return json{{"values", {{"team_id", options[0]["value"]}}}};
    if (auto picked = call.credential("team_id")) {
      for (const auto& o : options) {
        if (o["value"] == *picked) return json::object();
      }
    }
    return json{{"choose", json::array({{{"key", "team_id"},
                                         {"label", "Default team"},
                                         {"help", "Tools use this team when you do not name one."},
                                         {"options", options}}})}};
  }

  Settings settings_;
};

}  // namespace

}  // namespace codesphere

MCPH_SDK_PLUGIN(codesphere::CodespherePlugin, "codesphere", "1.0.0",
                "Codesphere workspaces, pipelines, logs and domains through the Codesphere public API")
