// Custom domains: switch_domain, list_domains.
#include "tools.hpp"

namespace codesphere {

namespace {

std::string domain_path(std::int64_t team, const std::string& name) {
  return "/domains/team/" + std::to_string(team) + "/domain/" + path_segment(name);
}

// The routing map {"/path": [workspaceId, ...]} of a domain object (§2.6), tolerating a
// missing or odd one (read as "no routes").
json routing_of(const json& domain) {
  json out = json::object();
  if (!domain.is_object()) return out;
  auto it = domain.find("workspaces");
  if (it == domain.end() || !it->is_object()) return out;
  for (const auto& [path, ids] : it->items()) {
    json list = json::array();
    for (const auto& id : ids.is_array() ? ids : json::array()) {
      if (auto n = coerce_id(id)) list.push_back(*n);
    }
    out[path] = std::move(list);
  }
  return out;
}

std::string routes_text(const json& routing) {
  std::string out;
  for (const auto& [path, ids] : routing.items()) {
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id.dump();
    out += (out.empty() ? "" : "; ") + path + " → [" + list + "]";
  }
  return out.empty() ? "(no routes)" : out;
}

json switch_domain(Env& env, const json& args) {
  const std::int64_t team = resolve_team(env, args);
  const std::int64_t ws = id_arg(args, "workspaceId");
  const std::string name = args.at("domainName").get<std::string>();
  const std::string route = args.value("path", std::string("/"));
  // PUT workspace-connections replaces the whole map (§2.6, §4), so the old server's
  // {"<path>": [id]} body dropped every other route (§1.5). Read, change one path, write all.
  const json domain = env.client.get(domain_path(team, name)).body;
  const json before = routing_of(domain);
  json after = before;
  after[route] = json::array({ws});
  // PUT is not retried on failure: a 409 "Another request is in progress" (§2.2) means
  // someone else is changing the domain, and writing our older copy over theirs would be wrong.
  const json answer = env.client.send("PUT", domain_path(team, name) + "/workspace-connections", after).body;
  const json confirmed = answer.is_object() && answer.contains("workspaces") ? routing_of(answer) : after;
  json out{{"domainName", name}, {"teamId", team}, {"path", route}, {"workspaceId", ws}, {"before", before}, {"after", confirmed}};
  std::string text = "Domain " + name + ": path " + route + " now routes to workspace " + std::to_string(ws) + ".\nBefore: " +
                     routes_text(before) + "\nAfter:  " + routes_text(confirmed);
  return sdk::structured(std::move(out), text);
}

json list_domains(Env& env, const json& args) {
  const std::int64_t team = resolve_team(env, args);
  const json list = env.client.get("/domains/team/" + std::to_string(team)).body;
  json items = json::array();
  std::string text;
  for (const auto& d : list.is_array() ? list : json::array()) {
    if (!d.is_object()) continue;
    const json routing = routing_of(d);
    const bool verified = flag_field(object_field(d, "domainVerificationStatus"), "verified");
    const bool certificate = flag_field(object_field(d, "certificateRequestStatus"), "issued");
    json item{{"name", text_field(d, "name")}, {"routing", routing}, {"verified", verified}, {"certificateIssued", certificate}};
    if (auto dns = d.find("dnsEntries"); dns != d.end() && dns->is_object()) item["dnsEntries"] = *dns;
    text += "\n- " + item["name"].get<std::string>() + (verified ? "" : " (not verified)") + ": " + routes_text(routing);
    items.push_back(std::move(item));
  }
  return sdk::structured(json{{"items", std::move(items)}, {"teamId", team}},
                         std::to_string(items.size()) + " custom domains in team " + std::to_string(team) +
                             (items.empty() ? "." : ":") + text);
}

json routing_schema() {
  return json{{"type", "object"},
              {"additionalProperties", {{"type", "array"}, {"items", {{"type", "integer"}}}}},
              {"description", "path → workspace IDs"}};
}

}  // namespace

void register_domain_tools(Registry& r) {
  const json team_arg = id_schema("Team ID; defaults to settings.team_id, else the token's only team");
  r.add(sdk::ToolSpec("switch_domain")
            .title("Switch domain")
            .description("Point one path of a custom domain at a workspace (for zero-downtime releases). Reads the "
                         "domain's routing, changes only `path` (default \"/\"), writes the whole map back so other "
                         "paths keep their workspaces, and reports the routing before and after.")
            .input(object_schema({{"domainName",
                                   {{"type", "string"},
                                    {"pattern", "^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"},
                                    {"description", "The custom domain, e.g. shop.example.com"}}},
                                  {"workspaceId", id_schema("Workspace to route to")},
                                  {"path",
                                   {{"type", "string"},
                                    {"pattern", "^/"},
                                    {"maxLength", 1024},
                                    {"default", "/"},
                                    {"description", "Path to route"}}},
                                  {"teamId", team_arg}},
                                 {"domainName", "workspaceId"}))
            .output(json{{"type", "object"},
                         {"properties",
                          {{"domainName", {{"type", "string"}}},
                           {"teamId", {{"type", "integer"}}},
                           {"path", {{"type", "string"}}},
                           {"workspaceId", {{"type", "integer"}}},
                           {"before", routing_schema()},
                           {"after", routing_schema()}}},
                         {"required", {"domainName", "path", "workspaceId", "before", "after"}}})
            .annotations(write_annotations("Switch domain", true, true)),
        switch_domain);

  r.add(sdk::ToolSpec("list_domains")
            .title("List domains")
            .description("List a team's custom domains with their routing (path → workspace IDs), DNS verification "
                         "and certificate status, and the DNS records to create.")
            .input(object_schema({{"teamId", team_arg}}))
            .output(list_schema(json{{"type", "object"},
                                     {"properties",
                                      {{"name", {{"type", "string"}}},
                                       {"routing", routing_schema()},
                                       {"verified", {{"type", "boolean"}}},
                                       {"certificateIssued", {{"type", "boolean"}}},
                                       {"dnsEntries", {{"type", "object"}}}}},
                                     {"required", {"name", "routing"}}},
                                {{"teamId", {{"type", "integer"}}}}))
            .annotations(read_only_annotations("List domains")),
        list_domains);
}

}  // namespace codesphere
