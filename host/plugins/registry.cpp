#include "plugins/registry.hpp"

#include <algorithm>
#include <future>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "isolation/process_instance.hpp"
#include "plugins/in_process.hpp"

namespace mcph::plugins {
namespace {

bool listed(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::string owner(const Instance& inst) {
  return "instance '" + inst.name() + "' (library " + inst.library_path() + ")";
}

}  // namespace

Result<std::unique_ptr<Instance>> create_instance(const config::PluginConfig& entry, const std::vector<std::string>& search_dirs,
                                                  Services services) {
  if (entry.isolation == "process") {
    auto inst = isolation::ProcessInstance::create(entry, search_dirs, services);
    if (!inst) return Error{inst.error()};
    return std::unique_ptr<Instance>(std::move(*inst));
  }
  auto lib = Library::load(entry.library, search_dirs);
  if (!lib) return Error{"plugin '" + entry.name + "' (line " + std::to_string(entry.line) + "): " + lib.error()};
  auto inst = InProcessInstance::create(entry, *lib, services);
  if (!inst) return Error{inst.error()};
  return std::unique_ptr<Instance>(std::move(*inst));
}

Result<std::unique_ptr<Registry>> Registry::load(const config::Config& config, Services services) {
  return assemble(config, services, [](const config::PluginConfig&) { return nullptr; });
}

Result<std::unique_ptr<Registry>> Registry::reload(const config::Config& config, Services services, Changes& changes) const {
  changes = {};
  const auto dirs = default_search_dirs(config.plugin_paths);
  std::set<std::string> kept;
  auto keep = [&](const config::PluginConfig& entry) -> std::shared_ptr<Instance> {
    for (const auto& inst : instances_) {
      if (inst->name() != entry.name) continue;
      // The same entry, and the library it names is still the file the instance runs.
      const std::string path = Library::resolve(entry.library, dirs);
      if (!inst->config().same_instance(entry) || path != inst->library_path() || file_id(path) != inst->library_id()) {
        changes.replaced.push_back(entry.name);
        return nullptr;
      }
      kept.insert(entry.name);
      changes.unchanged.push_back(entry.name);
      return inst;
    }
    changes.added.push_back(entry.name);
    return nullptr;
  };
  auto next = assemble(config, services, keep);
  if (!next) return next;
  for (const auto& inst : instances_) {
    const bool replaced = std::find(changes.replaced.begin(), changes.replaced.end(), inst->name()) != changes.replaced.end();
    if (!kept.contains(inst->name()) && !replaced) changes.removed.push_back(inst->name());
  }
  return next;
}

Result<std::unique_ptr<Registry>> Registry::assemble(const config::Config& config, Services services, const Keep& keep) {
  std::vector<std::shared_ptr<Instance>> instances;
  const auto dirs = default_search_dirs(config.plugin_paths);
  // Child processes start side by side (each takes milliseconds to exec, load and create);
  // in-process instances are created in file order on this thread.
  std::vector<std::future<Result<std::shared_ptr<Instance>>>> started;
  for (const auto& entry : config.plugins) {
    if (!entry.enabled) continue;
    if (auto existing = keep(entry)) {
      std::promise<Result<std::shared_ptr<Instance>>> ready;
      ready.set_value(std::move(existing));
      started.push_back(ready.get_future());
      continue;
    }
    const auto policy = entry.isolation == "process" ? std::launch::async : std::launch::deferred;
    started.push_back(std::async(policy, [&entry, &dirs, services]() -> Result<std::shared_ptr<Instance>> {
      auto inst = create_instance(entry, dirs, services);
      if (!inst) return Error{inst.error()};
      spdlog::debug("loaded plugin instance '{}' from {} ({} {}, {} tools)", (*inst)->name(), (*inst)->library_path(),
                    (*inst)->library_name(), (*inst)->library_version(), (*inst)->tools().size());
      return std::shared_ptr<Instance>(std::move(*inst));
    }));
  }
  std::optional<Error> failed;
  for (auto& future : started) {  // every one is waited for, even after a failure
    auto inst = future.get();
    if (!inst && !failed) failed = Error{inst.error()};
    if (inst) instances.push_back(std::move(*inst));
  }
  if (failed) {
    // The new ones go again (newest first); kept ones belong to the registry they came from.
    for (auto it = instances.rbegin(); it != instances.rend(); ++it) {
      if (it->use_count() == 1) (*it)->begin_shutdown();
      it->reset();
    }
    return *failed;
  }
  return build(std::move(instances));
}

namespace {

// The YAML's word for a tool (per tool, then for the instance), else the plugin's own.
TaskSupport task_support(const config::PluginConfig& cfg, const Tool& tool) {
  auto it = cfg.tool_task_support.find(tool.name);
  const std::string& said = it != cfg.tool_task_support.end() ? it->second : cfg.task_support;
  if (said == "optional") return TaskSupport::kOptional;
  if (said == "required") return TaskSupport::kRequired;
  if (said == "forbidden") return TaskSupport::kForbidden;
  return tool.task_support;
}

}  // namespace

Result<std::unique_ptr<Registry>> Registry::build(std::vector<std::shared_ptr<Instance>> instances) {
  std::unique_ptr<Registry> reg(new Registry());
  reg->instances_ = std::move(instances);
  for (const auto& inst : reg->instances_) {
    const auto& filter = inst->config().tools;
    for (const auto& name : filter.allow) {
      if (std::none_of(inst->tools().begin(), inst->tools().end(), [&](const Tool& t) { return t.name == name; })) {
        return Error{"instance '" + inst->name() + "': tools.allow names '" + name + "', which the plugin does not offer"};
      }
    }
    for (const auto& said : inst->config().tool_task_support) {
      const std::string& name = said.first;
      if (std::none_of(inst->tools().begin(), inst->tools().end(), [&](const Tool& t) { return t.name == name; })) {
        return Error{"instance '" + inst->name() + "': task_support names '" + name + "', which the plugin does not offer"};
      }
    }
    for (const auto& tool : inst->tools()) {
      if (!filter.allow.empty() && !listed(filter.allow, tool.name)) continue;
      if (listed(filter.deny, tool.name)) continue;
      reg->tools_.push_back(Entry{inst->config().tool_prefix + tool.name, inst.get(), &tool, task_support(inst->config(), tool)});
    }
  }
  // Prompts and resources: the same owners rule as tools, checked the same way.
  for (const auto& inst : reg->instances_) {
    for (const auto& p : inst->prompts()) reg->prompts_.push_back({inst->config().tool_prefix + p.name, inst.get(), &p});
    for (const auto& r : inst->resources()) {
      auto& list = r.uri.empty() ? reg->templates_ : reg->resources_;
      list.push_back({r.uri.empty() ? r.uri_template : r.uri, inst.get(), &r});
    }
  }
  auto unique = [&](const auto& list, const char* what) -> Status {
    for (size_t i = 0; i < list.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (list[i].public_name != list[j].public_name) continue;
        return Error{std::string(what) + " '" + list[i].public_name + "' is registered by both " +
                     owner(*list[j].instance) + " and " + owner(*list[i].instance)};
      }
    }
    return Ok{};
  };
  for (auto status : {unique(reg->prompts_, "prompt name"), unique(reg->resources_, "resource"),
                      unique(reg->templates_, "resource template")}) {
    if (!status) return Error{status.error()};
  }
  reg->by_name_.reserve(reg->tools_.size());
  for (size_t i = 0; i < reg->tools_.size(); ++i) {
    const auto& e = reg->tools_[i];
    auto [it, inserted] = reg->by_name_.emplace(e.public_name, i);
    if (!inserted) {
      const auto& first = reg->tools_[it->second];
      return Error{"tool name '" + e.public_name + "' is registered by both " + owner(*first.instance) +
                   " and " + owner(*e.instance) + "; give one of them a tool_prefix or deny the tool"};
    }
  }
  return reg;
}

Registry::~Registry() {
  // An instance gains owners only by a reload copying it from the registry being served, so
  // one that this registry alone holds cannot gain another while the count is looked at.
  for (const auto& inst : instances_) {
    if (inst.use_count() == 1) inst->begin_shutdown();
  }
  while (!instances_.empty()) instances_.pop_back();
}

const Instance* Registry::instance(std::string_view name) const {
  for (const auto& inst : instances_) {
    if (inst->name() == name) return inst.get();
  }
  return nullptr;
}

std::vector<std::string> Registry::long_name_warnings(const std::string& server) const {
  constexpr size_t kClaudeMax = 64;
  std::vector<std::string> out;
  for (const auto& t : tools_) {
    const size_t full = 5 + server.size() + 2 + t.public_name.size();  // mcp__<server>__<tool>
    if (full <= kClaudeMax) continue;
    out.push_back("tool '" + t.public_name + "' (instance '" + t.instance->name() + "'): Claude Code calls it mcp__" + server +
                  "__" + t.public_name + ", " + std::to_string(full) + " characters, over its " + std::to_string(kClaudeMax) +
                  "; shorten the instance's tool_prefix (or the server's name there)");
  }
  return out;
}

const Registry::Entry* Registry::find(std::string_view public_name) const {
  auto it = by_name_.find(public_name);
  return it == by_name_.end() ? nullptr : &tools_[it->second];
}

const Registry::ResourceEntry* Registry::find_resource(std::string_view uri, nlohmann::json& values) const {
  for (const auto& r : resources_) {
    if (r.public_name == uri) return &r;
  }
  for (const auto& t : templates_) {
    if (t.item->match(uri, values)) return &t;
  }
  return nullptr;
}

const Registry::PromptEntry* Registry::find_prompt(std::string_view public_name) const {
  for (const auto& p : prompts_) {
    if (p.public_name == public_name) return &p;
  }
  return nullptr;
}

void Registry::begin_shutdown() {
  for (auto& inst : instances_) inst->begin_shutdown();
}

}  // namespace mcph::plugins
