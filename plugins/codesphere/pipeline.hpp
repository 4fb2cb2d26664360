// codesphere plugin: pipeline status and when a stage counts as done (pure; unit-tested).
//
// GET /workspaces/{id}/pipeline/{stage} answers one entry per server replica (reference
// §2.5): {state, startedAt?, finishedAt?, steps: [{state, ...}], replica, server}, with
// states waiting|running|success|failure|aborted. The old server waited for states that do
// not exist (`failed`, `succeeded`) and counted landscape services too (§1.5 defects); the
// rules here are CSGO's (`cs start pipeline`), with PY's fallback for entries to ignore.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util.hpp"

namespace codesphere {

enum class State { Waiting, Running, Success, Failure, Aborted, Unknown };
enum class Stage { Prepare, Test, Run };

State parse_state(std::string_view s);
std::string_view to_string(State s);
std::string_view to_string(Stage s);
std::optional<Stage> parse_stage(std::string_view s);
bool is_terminal(State s);  // success, failure, aborted

// The server that runs prepare and test (CSGO const IdeServer).
inline constexpr std::string_view kIdeServer = "codesphere-ide";

struct PipelineEntry {
  State state = State::Unknown;
  std::string state_text;  // as sent (kept for unknown future states)
  std::string server;
  std::string replica;
  std::optional<std::int64_t> started_ms, finished_ms;
  std::string started_at;  // as sent
  std::vector<State> steps;
};

// Tolerant: entries without a state read as Unknown; a body that is not an array gives none.
std::vector<PipelineEntry> parse_pipeline(const json& body);

// The entries a stage is judged by.
//  - prepare/test: the codesphere-ide server's entries (CSGO). Without any, the entries that
//    have steps or are not waiting (PY), so a landscape's idle service servers do not count.
//  - run: the non-IDE servers when there are any (a landscape's services, CSGO), else all.
std::vector<PipelineEntry> relevant_entries(Stage stage, const std::vector<PipelineEntry>& all);

struct Verdict {
  enum class Outcome {
    Pending,  // keep waiting
    Done,     // prepare/test: every relevant entry succeeded; run: every one is up
    Failed,   // an entry failed or was aborted
  };
  Outcome outcome = Outcome::Pending;
  std::string state;  // one word for progress and results: waiting|running|success|failure|aborted|not started
  // For Failed: where. step is the 0-based index view_logs takes (-1 when unknown).
  std::string failed_server;
  std::string failed_replica;
  int failed_step = -1;
  State failed_state = State::Unknown;
  bool stale = false;  // the entries still describe a run from before `started_after`
};

// Judges a stage. Run is "up" when every relevant entry is running; an entry that already
// finished successfully (a run command that exited 0) also counts, so waiting ends.
//
// started_after_ms: the upstream time (its Date header) when we started the stage. Right
// after a start the status may still show the previous run (e.g. yesterday's failure): an
// entry that started before that moment is not ours yet and reads as waiting. Without it
// every entry counts.
Verdict evaluate(Stage stage, const std::vector<PipelineEntry>& entries,
                 std::optional<std::int64_t> started_after_ms = std::nullopt);

// The overall state of a stage for a status display: the "worst" state of its relevant
// entries (failure > aborted > running > waiting > success), "not started" when none.
std::string summarize(Stage stage, const std::vector<PipelineEntry>& entries);

// "prepare failed at step 1 (failure) on server codesphere-ide" and similar.
std::string describe_failure(Stage stage, const Verdict& v);

}  // namespace codesphere
