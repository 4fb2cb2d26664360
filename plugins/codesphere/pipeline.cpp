#include "pipeline.hpp"

#include <algorithm>

namespace codesphere {

State parse_state(std::string_view s) {
  if (s == "waiting") return State::Waiting;
  if (s == "running") return State::Running;
  if (s == "success") return State::Success;
  if (s == "failure") return State::Failure;
  if (s == "aborted") return State::Aborted;
  return State::Unknown;
}

std::string_view to_string(State s) {
  switch (s) {
    case State::Waiting: return "waiting";
    case State::Running: return "running";
    case State::Success: return "success";
    case State::Failure: return "failure";
    case State::Aborted: return "aborted";
    case State::Unknown: break;
  }
  return "unknown";
}

std::string_view to_string(Stage s) {
  switch (s) {
    case Stage::Prepare: return "prepare";
    case Stage::Test: return "test";
    case Stage::Run: return "run";
  }
  return "run";
}

std::optional<Stage> parse_stage(std::string_view s) {
  if (s == "prepare") return Stage::Prepare;
  if (s == "test") return Stage::Test;
  if (s == "run") return Stage::Run;
  return std::nullopt;
}

bool is_terminal(State s) { return s == State::Success || s == State::Failure || s == State::Aborted; }

namespace {

std::optional<std::int64_t> time_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return parse_rfc3339_ms(it->get<std::string>());
}

std::string string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::vector<PipelineEntry> parse_pipeline(const json& body) {
  std::vector<PipelineEntry> out;
  if (!body.is_array()) return out;
  for (const auto& item : body) {
    if (!item.is_object()) continue;
    PipelineEntry e;
    e.state_text = string_field(item, "state");
    e.state = parse_state(e.state_text);
    e.server = string_field(item, "server");
    e.replica = string_field(item, "replica");
    e.started_at = string_field(item, "startedAt");
    e.started_ms = time_field(item, "startedAt");
    e.finished_ms = time_field(item, "finishedAt");
    if (auto steps = item.find("steps"); steps != item.end() && steps->is_array()) {
      for (const auto& s : *steps) {
        e.steps.push_back(s.is_object() ? parse_state(string_field(s, "state")) : State::Unknown);
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<PipelineEntry> relevant_entries(Stage stage, const std::vector<PipelineEntry>& all) {
  std::vector<PipelineEntry> out;
  auto pick = [&](auto pred) {
    std::copy_if(all.begin(), all.end(), std::back_inserter(out), pred);
  };
  if (stage == Stage::Run) {
    pick([](const PipelineEntry& e) { return e.server != kIdeServer; });
    if (out.empty()) out = all;
    return out;
  }
  pick([](const PipelineEntry& e) { return e.server == kIdeServer; });
  if (out.empty()) pick([](const PipelineEntry& e) { return !e.steps.empty() || e.state != State::Waiting; });
  return out;
}

namespace {

// A 1 s allowance: the Date header has whole seconds, startedAt has milliseconds.
constexpr std::int64_t kDateResolutionMs = 1000;

bool is_stale(const PipelineEntry& e, std::optional<std::int64_t> started_after_ms) {
  if (!started_after_ms || !e.started_ms) return false;
  return *e.started_ms + kDateResolutionMs <= *started_after_ms;
}

int first_bad_step(const PipelineEntry& e) {
  for (std::size_t i = 0; i < e.steps.size(); ++i) {
    if (e.steps[i] == State::Failure || e.steps[i] == State::Aborted) return static_cast<int>(i);
  }
  return -1;
}

int rank(State s) {  // for summaries: the state that matters most wins
  switch (s) {
    case State::Failure: return 5;
    case State::Aborted: return 4;
    case State::Running: return 3;
    case State::Waiting: return 2;
    case State::Unknown: return 1;
    case State::Success: return 0;
  }
  return 1;
}

}  // namespace

Verdict evaluate(Stage stage, const std::vector<PipelineEntry>& entries, std::optional<std::int64_t> started_after_ms) {
  Verdict v;
  std::vector<PipelineEntry> rel = relevant_entries(stage, entries);
  if (rel.empty()) {
    v.state = "not started";
    return v;
  }
  for (auto& e : rel) {
    if (is_stale(e, started_after_ms)) {
      e.state = State::Waiting;  // the previous run's result, not this one's
      v.stale = true;
    }
  }
  for (const auto& e : rel) {
    if (e.state == State::Failure || e.state == State::Aborted) {
      v.outcome = Verdict::Outcome::Failed;
      v.state = std::string(to_string(e.state));
      v.failed_server = e.server;
      v.failed_replica = e.replica;
      v.failed_step = first_bad_step(e);
      v.failed_state = v.failed_step >= 0 ? e.steps[static_cast<std::size_t>(v.failed_step)] : e.state;
      return v;
    }
  }
  const bool all_success = std::all_of(rel.begin(), rel.end(), [](const auto& e) { return e.state == State::Success; });
  const bool all_up = std::all_of(rel.begin(), rel.end(), [](const auto& e) {
    return e.state == State::Running || e.state == State::Success;
  });
  if (stage == Stage::Run ? all_up : all_success) {
    v.outcome = Verdict::Outcome::Done;
    v.state = stage == Stage::Run && !all_success ? "running" : "success";
    return v;
  }
  State worst = State::Success;
  for (const auto& e : rel) {
    if (rank(e.state) > rank(worst)) worst = e.state;
  }
  v.state = std::string(to_string(worst));
  return v;
}

std::string summarize(Stage stage, const std::vector<PipelineEntry>& entries) {
  std::vector<PipelineEntry> rel = relevant_entries(stage, entries);
  if (rel.empty()) return "not started";
  State worst = State::Success;
  for (const auto& e : rel) {
    if (rank(e.state) > rank(worst)) worst = e.state;
  }
  return std::string(to_string(worst));
}

std::string describe_failure(Stage stage, const Verdict& v) {
  std::string out = std::string(to_string(stage)) + (v.state == "aborted" ? " was aborted" : " failed");
  if (v.failed_step >= 0) out += " at step " + std::to_string(v.failed_step) + " (" + std::string(to_string(v.failed_state)) + ")";
  if (!v.failed_server.empty()) out += " on server " + v.failed_server;
  return out;
}

}  // namespace codesphere
