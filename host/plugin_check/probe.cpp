#include "plugin_check/probe.hpp"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "plugins/instance.hpp"
#include "plugins/library.hpp"
#include "http_stack/http_stack.hpp"
#include "store/state_store.hpp"

namespace mcph::plugin_check {
namespace {

using nlohmann::json;
using Level = Finding::Level;

std::string str(mcph_str s) { return s.data != nullptr ? std::string(s.data, s.len) : std::string(); }

// ---- A host table that records what the plugin registers ---------------------------------
// The real host table (plugins/host_api.cpp) with register_tool and set_create_error
// wrapped: the wrappers keep the plugin's raw definitions and its own create error, then
// call the real functions, so the plugin sees exactly the host it will run in.

struct Recording {
  std::vector<RawTool> tools;
  std::vector<std::string> resources;  // (1.1) URIs or templates, and prompt names, as accepted
  std::vector<std::string> prompts;
  std::vector<std::string> refused;    // (1.1) why the host refused a resource or prompt
  std::string create_error;  // what the plugin itself said (not the host's registration errors)
};
std::map<const mcph_host_instance*, Recording*> g_recordings;  // only the probe's thread touches it

Recording* recording_of(const mcph_host_instance* hi) {
  auto it = g_recordings.find(hi);
  return it == g_recordings.end() ? nullptr : it->second;
}

mcph_status recording_register_tool(mcph_host_instance* hi, const mcph_tool_def* def) {
  Recording* rec = recording_of(hi);
  if (rec != nullptr && def != nullptr) {
    mcph_tool_def d{};
    std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
    rec->tools.push_back(RawTool{str(d.name), str(d.title), str(d.description), str(d.input_schema),
                                 str(d.output_schema), str(d.annotations), d.handler != nullptr, !hi->registering});
  }
  return plugins::host_api().register_tool(hi, def);
}

// Resources and prompts (ABI 1.1) are checked by the host's own registration; the wrapper
// keeps what it accepted and the reason for each refusal.
template <class Def>
mcph_status record_other(mcph_host_instance* hi, const Def* def, mcph_status (*real)(mcph_host_instance*, const Def*),
                         std::vector<std::string> Recording::*accepted, std::string label) {
  Recording* rec = recording_of(hi);
  const std::string before = hi != nullptr ? hi->create_error : "";
  hi->create_error.clear();
  mcph_status st = real(hi, def);
  if (rec != nullptr) {
    if (st == MCPH_OK) {
      (rec->*accepted).push_back(label);
    } else {
      rec->refused.push_back(hi->create_error.empty() ? label + " was refused (" + plugins::status_name(st) + ")" : hi->create_error);
    }
  }
  if (!before.empty() || st == MCPH_OK) hi->create_error = before;
  return st;
}

mcph_status recording_register_resource(mcph_host_instance* hi, const mcph_resource_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  mcph_resource_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  return record_other(hi, def, plugins::host_api().register_resource, &Recording::resources, str(d.uri) + str(d.uri_template));
}

mcph_status recording_register_prompt(mcph_host_instance* hi, const mcph_prompt_def* def) {
  if (hi == nullptr || def == nullptr) return MCPH_ERR_INVALID_ARGUMENT;
  mcph_prompt_def d{};
  std::memcpy(&d, def, std::min<size_t>(def->struct_size, sizeof d));
  return record_other(hi, def, plugins::host_api().register_prompt, &Recording::prompts, str(d.name));
}

void recording_set_create_error(mcph_host_instance* hi, mcph_str message) {
  if (Recording* rec = recording_of(hi)) rec->create_error = str(message);
  plugins::host_api().set_create_error(hi, message);
}

const mcph_host_api& recording_api() {
  static const mcph_host_api api = [] {
    mcph_host_api a = plugins::host_api();
    a.register_tool = recording_register_tool;
    a.register_resource = recording_register_resource;
    a.register_prompt = recording_register_prompt;
    a.set_create_error = recording_set_create_error;
    return a;
  }();
  return api;
}

// ---- One instance ----------------------------------------------------------------------

struct Created {
  std::unique_ptr<mcph_host_instance> hi = std::make_unique<mcph_host_instance>();
  Recording rec;
  mcph_status status = MCPH_OK;
  void* instance = nullptr;

  bool ok() const { return status == MCPH_OK; }
  // What a tool list looks like to a client, for comparing two instances.
  std::string tools_signature() const {
    std::string s;
    for (const auto& r : rec.resources) s += "resource " + r + '\n';
    for (const auto& p : rec.prompts) s += "prompt " + p + '\n';
    for (const auto& t : rec.tools) {
      s += t.name + '\n' + t.title + '\n' + t.description + '\n' + t.input_schema + '\n' + t.output_schema + '\n' +
           t.annotations + '\n';
    }
    return s;
  }
  std::vector<std::string> tool_names() const {
    std::vector<std::string> names;
    for (const auto& t : rec.tools) names.push_back(t.name);
    return names;
  }
};

std::unique_ptr<Created> create(const mcph_plugin_descriptor& d, const std::string& name,
                                const ProbeOptions& options, plugins::Services services) {
  auto c = std::make_unique<Created>();
  c->hi->name = name;
  c->hi->credentials = options.credentials;
  c->hi->services = services;
  std::vector<std::string> secrets;
  for (const auto& [key, value] : options.credentials) {
    if (plugins::worth_redacting(value)) secrets.push_back(value);
  }
  c->hi->secrets.set_fixed(std::move(secrets));
  g_recordings[c->hi.get()] = &c->rec;
  const std::string settings = options.settings.dump();
  c->hi->registering = true;
  c->status = d.create(&recording_api(), c->hi.get(), mcph_str{settings.c_str(), settings.size()}, &c->instance);
  c->hi->registering = false;
  return c;
}

// Threads of this process, from /proc (the plugin's own threads show up here).
size_t thread_count() {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

// A thread that was joined is gone at once; one that was only told to stop may take a
// moment. Waits up to a second for the count to come back down.
size_t threads_left_over(size_t baseline) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  size_t now = thread_count();
  while (now > baseline && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = thread_count();
  }
  return now > baseline ? now - baseline : 0;
}

}  // namespace

void probe(const ProbeOptions& options, Reporter& out) {
  auto report = [&](Level level, const char* check, std::string message) {
    out.finding(Finding{level, check, std::move(message)});
  };

  out.stage("loading the library and calling mcph_plugin_entry");
  auto library = plugins::Library::load(options.library, options.search_dirs);
  if (!library) {
    report(Level::kError, "load", library.error());
    return;
  }
  const mcph_plugin_descriptor& d = (*library)->descriptor();
  DescriptorInfo info{str(d.name), str(d.version), str(d.description), d.abi_major, d.abi_minor};
  for (auto& f : check_descriptor(info, MCPH_ABI_MAJOR, MCPH_ABI_MINOR)) out.finding(f);
  json plugin{{"name", info.name}, {"version", info.version}, {"path", (*library)->path()},
              {"abi", std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor)}};

  // The real services: durable state in a scratch folder, the real HTTP client.
  auto state = store::StateStore::open(options.state_dir);
  if (!state) {
    report(Level::kError, "setup", "cannot open a scratch state store: " + state.error());
    return;
  }
  http_stack::OutboundHttp http;
  const plugins::Services services{state->get(), &http};
  const size_t baseline_threads = thread_count();
  const bool empty_settings = options.settings.empty();
  const std::string with = empty_settings ? "empty settings" : "the given settings";

  // 1. One instance: create (a clear error or an instance), the tools it registered, destroy.
  out.stage("creating an instance with " + with);
  auto first = create(d, "check-1", options, services);
  for (auto& f : check_tools(first->rec.tools)) out.finding(f);
  for (const auto& why : first->rec.refused) report(Level::kError, "resources", why);
  plugin["tools"] = first->tool_names();
  plugin["resources"] = first->rec.resources;
  plugin["prompts"] = first->rec.prompts;
  if (!first->ok()) {
    const std::string status = plugins::status_name(first->status);
    if (first->rec.create_error.empty()) {
      report(Level::kError, "create",
             "create with " + with + " failed (" + status +
                 ") without saying why: call host->set_create_error(hi, \"...\") before returning an error");
    } else {
      report(Level::kNote, "create",
             "create with " + with + " refused (" + status + "): " + first->rec.create_error +
                 (empty_settings ? " (pass --settings to check an instance)" : ""));
    }
    if (size_t extra = threads_left_over(baseline_threads)) {
      report(Level::kError, "create",
             std::to_string(extra) + " thread(s) still running after create failed (stop them before returning an error)");
    }
    out.plugin(plugin);
    return;
  }
  if (first->rec.tools.empty() && first->rec.resources.empty() && first->rec.prompts.empty()) {
    report(Level::kWarning, "tools", "the instance registered no tools, resources or prompts");
  }
  out.plugin(plugin);
  out.stage("destroying the instance");
  d.destroy(first->instance);
  if (size_t extra = threads_left_over(baseline_threads)) {
    report(Level::kError, "destroy",
           std::to_string(extra) + " thread(s) the plugin started still run after destroy returned (destroy must stop and join them)");
  }

  // 2. Two instances side by side (two YAML entries of one library): each registers the
  // same tools on its own (registration kept per instance, not in globals), each has its
  // own instance pointer, and destroying one leaves the library able to make another.
  out.stage("creating two instances side by side");
  auto a = create(d, "check-a", options, services);
  auto b = create(d, "check-b", options, services);
  if (!a->ok() || !b->ok()) {
    report(Level::kError, "instances", "a second instance could not be created (" +
                                           std::string(plugins::status_name(a->ok() ? b->status : a->status)) +
                                           "): keep state per instance, not in globals");
  } else {
    if (a->tools_signature() != first->tools_signature() || b->tools_signature() != first->tools_signature()) {
      report(Level::kError, "instances",
             "two instances side by side registered different tools than one alone: keep registration per "
             "instance, not in globals");
    }
    if (a->instance != nullptr && a->instance == b->instance) {
      report(Level::kError, "instances", "two instances got the same instance pointer: they share state");
    }
  }
  out.stage("destroying the first of two instances");
  if (a->ok()) d.destroy(a->instance);
  out.stage("creating another instance while the second still lives");
  auto c = create(d, "check-c", options, services);
  if (c->ok() && b->ok() && c->tools_signature() != b->tools_signature()) {
    report(Level::kError, "instances",
           "an instance created after another was destroyed registered different tools: destroy must not "
           "change what other instances see");
  } else if (!c->ok() && b->ok()) {
    report(Level::kError, "instances", "no new instance could be created after destroying one (" +
                                           std::string(plugins::status_name(c->status)) + ")");
  }
  out.stage("destroying the remaining instances");
  if (b->ok()) d.destroy(b->instance);
  if (c->ok()) d.destroy(c->instance);
  if (size_t extra = threads_left_over(baseline_threads)) {
    report(Level::kError, "destroy", std::to_string(extra) + " thread(s) still run after every instance was destroyed");
  }
}

}  // namespace mcph::plugin_check
