#include "plugins/registry.hpp"

#include <algorithm>
#include <future>

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
  std::vector<std::unique_ptr<Instance>> instances;
  const auto dirs = default_search_dirs(config.plugin_paths);
  // Child processes start side by side (each takes milliseconds to exec, load and create);
  // in-process instances are created in file order on this thread.
  std::vector<std::future<Result<std::unique_ptr<Instance>>>> started;
  for (const auto& entry : config.plugins) {
    if (!entry.enabled) continue;
    const auto policy = entry.isolation == "process" ? std::launch::async : std::launch::deferred;
    started.push_back(std::async(policy, [&entry, &dirs, services] { return create_instance(entry, dirs, services); }));
  }
  for (auto& future : started) {
    auto inst = future.get();
    if (!inst) return Error{inst.error()};
    spdlog::debug("loaded plugin instance '{}' from {} ({} {}, {} tools)", (*inst)->name(), (*inst)->library_path(),
                  (*inst)->library_name(), (*inst)->library_version(), (*inst)->tools().size());
    instances.push_back(std::move(*inst));
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

Result<std::unique_ptr<Registry>> Registry::build(std::vector<std::unique_ptr<Instance>> instances) {
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
  begin_shutdown();
  while (!instances_.empty()) instances_.pop_back();
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
