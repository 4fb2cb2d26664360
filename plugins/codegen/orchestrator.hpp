// codegen plugin: orchestrator auto-resume (codegen.md §A.5 for what the old server tried,
// §D.8 for what it got wrong).
//
// A task created with orchestrator_run_id is a child of that run. When the child finishes,
// its outcome is queued durably for the orchestrator (one pending record per child run id,
// so a child is never in a batch twice). While the orchestrator run is active the results
// wait; when it is not, ONE resume goes out carrying every pending result, clearly
// delimited and size-capped. Delivery is exactly-once across kill -9:
//
//   1. write the intent (outbox, phase "sending": batch id, the children and versions it
//      carries, the prompt) durably,            2. POST the resume,
//   3. on 2xx mark the outbox "sent", delete the delivered pending records (only the
//      versions that were sent), delete the outbox, remember that the run was resumed.
//
// If the process dies between 1 and 3, the next start finds the outbox: "sent" just
// finishes step 3; "sending" is ambiguous (the API may or may not have taken it) and is
// reconciled by looking at the orchestrator: active again means it arrived (finish step 3),
// still terminal means it did not (send again). An HTTP error answer (429, 5xx, 4xx) means
// the API did not take it (phase "retry"); the next attempt backs off exponentially,
// honouring Retry-After. Known limit (§E: the API has no idempotency key and no way to read
// a run's prompts): if the resume arrived AND the orchestrator finished again before the
// restart, the batch is sent a second time. That needs a crash inside a window of one state
// write, so we accept it rather than risk losing results.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api.hpp"
#include "settings.hpp"
#include "tasks.hpp"

namespace codegen {

// One child's outcome waiting for its orchestrator.
struct PendingResult {
  int64_t child_run_id = 0;
  std::string task_id;
  std::string state;            // completed | failed
  std::string upstream_status;  // raw
  json result;                  // text or null
  std::optional<std::string> error;
  std::optional<std::string> web_url;
  std::string version;          // identifies this outcome (task id + completion time)
  int64_t queued_ms = 0;
};
json to_json(const PendingResult& p);
std::optional<PendingResult> pending_from_json(const json& j);
PendingResult pending_from_task(const TaskRecord& t, int64_t now);

// The resume prompt for a batch. De-duplicated by child run id (the latest outcome wins),
// each child between BEGIN/END markers that its own text cannot forge, every result cut to
// a fair share of max_chars (bytes) with a pointer to its web_url; children that do not fit
// at all stay pending for the next resume (left_out).
struct ResumeBatch {
  std::string prompt;
  std::vector<std::pair<int64_t, std::string>> included;  // (child run id, version)
  size_t left_out = 0;
};
ResumeBatch build_resume_batch(std::vector<PendingResult> pending, size_t max_chars);

// The durable state of one orchestrator link.
struct OrchRecord {
  std::string principal;
  int64_t org_id = 0;
  int64_t orchestrator_run_id = 0;
  int64_t track_run_id = 0;  // the run to check and resume (the id the last resume returned, §D.7)
  bool await_active = false;  // resumed by us; its terminal status is stale until seen active
  int64_t resumed_ms = 0;
  int64_t created_ms = 0;
  int64_t interval_ms = 0;
  int attempts = 0;  // failed resume attempts in a row
  int64_t delivered = 0;  // resumes delivered
  std::string last_status;
  std::string last_error;
  std::string trace;  // the trace context of the call that started its first child, or ""
};
json to_json(const OrchRecord& r);
std::optional<OrchRecord> orch_from_json(const json& j);

struct Outbox {
  std::string batch_id;
  std::string phase;  // sending | retry | sent
  std::vector<std::pair<int64_t, std::string>> included;
  std::string prompt;
  int attempts = 0;
  int64_t created_ms = 0;
};
json to_json(const Outbox& o);
std::optional<Outbox> outbox_from_json(const json& j);

// What to do after looking at the orchestrator run (pure; see the file comment).
enum class OrchAction { Wait, Send, Finalize };
OrchAction decide(OrchRecord& rec, const std::optional<Outbox>& outbox, RunClass observed, int64_t now,
                  int64_t resume_grace_ms);

std::string orch_key(std::string_view principal, int64_t org_id, int64_t orchestrator_run_id);

// The delivery machinery. Used only by the poller's thread (no locking of its own).
class Orchestrators {
 public:
  Orchestrators(const mcph::sdk::Host& host, Api& api, const ConfigStore& config, const Settings& settings)
      : host_(host), api_(api), config_(config), settings_(settings) {}

  // At start: every link with pending results or an unfinished outbox is due now.
  void load(int64_t now);
  // Queues a finished child's outcome (idempotent: same child, same version = same record).
  bool enqueue(const TaskRecord& child, int64_t now);
  // Works on every due link (at most two requests each) until done or stop() is true.
  void run_due(int64_t now, const std::function<bool()>& stop);
  // The earliest due time, or INT64_MAX.
  int64_t next_due() const;
  // Forgets links with nothing pending whose last activity is older than the retention.
  void prune(int64_t now);

 private:
  void step(const std::string& key, int64_t now);
  void finalize(OrchRecord& rec, const Outbox& ob, const json& body, int64_t now);
  void reschedule(const std::string& key, OrchRecord& rec, int64_t at);
  std::vector<PendingResult> pending(const OrchRecord& rec) const;
  std::optional<Outbox> outbox(const OrchRecord& rec) const;

  const mcph::sdk::Host& host_;
  Api& api_;
  const ConfigStore& config_;
  const Settings& settings_;
  std::map<std::string, int64_t> due_;  // record key -> when to look next (wall ms)
};

}  // namespace codegen
