// The codesphere plugin's pure logic (ID coercion, redaction, time parsing, error texts,
// SSE parsing, pipeline rules, settings, redirect rules), compiled from the plugin's sources,
// plus a few in-process checks of the built plugin against the SDK's fake host (no network).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "client.hpp"
#include "errors.hpp"
#include "mcp_plugin/testing.hpp"
#include "pipeline.hpp"
#include "settings.hpp"
#include "sse.hpp"
#include "util.hpp"

namespace codesphere {
namespace {

using std::chrono::milliseconds;

// --- IDs ---------------------------------------------------------------------------------------

TEST(CodesphereIds, IntegersAndNumericStringsAreAccepted) {
  EXPECT_EQ(coerce_id(json(42)), 42);
  EXPECT_EQ(coerce_id(json(0)), 0);
  EXPECT_EQ(coerce_id(json("42")), 42);
  EXPECT_EQ(coerce_id(json("007")), 7);
  EXPECT_EQ(coerce_id(json(42.0)), 42);  // JSON Schema's "integer" admits 42.0
  EXPECT_EQ(coerce_id(json(std::uint64_t{123456789012})), 123456789012);
  EXPECT_EQ(coerce_id(json("999999999999999999")), 999999999999999999);
}

TEST(CodesphereIds, EverythingElseIsRefused) {
  for (const json& bad : {json(-1), json("-1"), json("4a"), json(""), json(" 4"), json(42.5), json(true), json(nullptr),
                          json::array({1}), json("1234567890123456789")}) {
    EXPECT_FALSE(coerce_id(bad).has_value()) << bad;
  }
}

// --- Redaction and one-line texts --------------------------------------------------------------

TEST(CodesphereRedaction, TheTokenAndTokenLikeStringsDisappear) {
  const std::string token = "cs_tok-SECRET.123";
  EXPECT_EQ(redact("prefix " + token + " and again " + token, token), "prefix [REDACTED] and again [REDACTED]");
  EXPECT_EQ(redact("Authorization: Bearer abc.DEF-ghi_1", ""), "Authorization: Bearer [REDACTED]");
  EXPECT_EQ(redact("bearer   xyz", ""), "bearer   [REDACTED]");
  EXPECT_EQ(redact("api_key=k123 api-key: k456 apiKey k789", ""), "api_key=[REDACTED] api-key: [REDACTED] apiKey [REDACTED]");
  EXPECT_EQ(redact(R"({"api_key": "k123"})", ""), R"({"api_key": "[REDACTED]"})");
  // Ordinary words survive; so do secrets too short to be real tokens.
  EXPECT_EQ(redact("rapid keys, a bearer-less text, abc", "abc"), "rapid keys, a bearer-less text, abc");
  EXPECT_EQ(redact("Bearer [REDACTED]", ""), "Bearer [REDACTED]");
}

TEST(CodesphereRedaction, OneLineCollapsesAndCutsWithoutSplittingUtf8) {
  EXPECT_EQ(one_line("  a\n\tb   c  "), "a b c");
  EXPECT_EQ(one_line("abcdef", 3), "abc…");
  // "é" is two bytes; cutting at 2 would split it.
  EXPECT_EQ(one_line("aé", 2), "a…");
}

TEST(CodesphereFields, OddUpstreamTypesFallBackInsteadOfThrowing) {
  const json obj = json::parse(R"({"name": null, "n": 3, "b": true, "o": {"x": 1}, "s": "t"})");
  EXPECT_EQ(text_field(obj, "name", "?"), "?");
  EXPECT_EQ(text_field(obj, "s"), "t");
  EXPECT_EQ(text_field(json::array(), "s", "x"), "x");
  EXPECT_TRUE(flag_field(obj, "b"));
  EXPECT_FALSE(flag_field(obj, "n"));
  EXPECT_EQ(number_field(obj, "n", 0), 3);
  EXPECT_EQ(number_field(obj, "s", 0), 0);
  EXPECT_EQ(object_field(obj, "o"), json({{"x", 1}}));
  EXPECT_EQ(object_field(obj, "name"), json::object());
}

// --- Time --------------------------------------------------------------------------------------

TEST(CodesphereTime, Rfc3339) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ms("2000-01-01T00:00:00Z"), 946684800000);
  EXPECT_EQ(parse_rfc3339_ms("2000-01-01T00:00:00.5Z"), 946684800500);
  EXPECT_EQ(parse_rfc3339_ms("2000-01-01T00:00:00.123456Z"), 946684800123);
  EXPECT_EQ(parse_rfc3339_ms("2000-01-01T01:00:00+01:00"), 946684800000);
  EXPECT_EQ(parse_rfc3339_ms("1999-12-31T23:30:00-00:30"), 946684800000);
  EXPECT_EQ(parse_rfc3339_ms("2024-02-29T12:00:00z"), 1709208000000);
  for (const char* bad : {"", "2000-01-01", "2000-01-01T00:00:00", "2000-13-01T00:00:00Z", "2000-01-32T00:00:00Z",
                          "2000-01-01T24:00:00Z", "2000-01-01T00:00:00.Z", "2000-01-01T00:00:00Zjunk"}) {
    EXPECT_FALSE(parse_rfc3339_ms(bad).has_value()) << bad;
  }
}

TEST(CodesphereTime, HttpDate) {
  EXPECT_EQ(parse_http_date_ms("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777000);
  EXPECT_EQ(parse_http_date_ms("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  for (const char* bad : {"", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT"}) {
    EXPECT_FALSE(parse_http_date_ms(bad).has_value()) << bad;
  }
}

TEST(CodesphereTime, RetryAfterSecondsOrDate) {
  EXPECT_EQ(parse_retry_after("120", std::nullopt, 0), milliseconds(120000));
  EXPECT_EQ(parse_retry_after(" 3 ", std::nullopt, 0), milliseconds(3000));
  EXPECT_EQ(parse_retry_after("0", std::nullopt, 0), milliseconds(0));
  // A date is measured against the answer's own Date header (same clock) ...
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", std::string_view("Sun, 06 Nov 1994 08:49:37 GMT"), 0),
            milliseconds(10000));
  // ... else against now; a date in the past means "now".
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", std::nullopt, 784111777000), milliseconds(10000));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", std::nullopt, 784111787000), milliseconds(0));
  EXPECT_FALSE(parse_retry_after("soon", std::nullopt, 0).has_value());
  EXPECT_FALSE(parse_retry_after("", std::nullopt, 0).has_value());
  EXPECT_FALSE(parse_retry_after("-5", std::nullopt, 0).has_value());
}

TEST(CodesphereTime, Durations) {
  EXPECT_EQ(format_duration(milliseconds(850)), "850 ms");
  EXPECT_EQ(format_duration(milliseconds(12345)), "12.3 s");
  EXPECT_EQ(format_duration(milliseconds(245000)), "4 min 5 s");
}

// --- Upstream errors ---------------------------------------------------------------------------

TEST(CodesphereErrors, TheProblemShapeIsReadAndPrinted) {
  auto p = parse_problem(R"({"status":404,"title":"Not Found","detail":"Workspace is not found.","traceId":"t-1"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 404);
  EXPECT_EQ(p->title, "Not Found");
  EXPECT_EQ(p->detail, "Workspace is not found.");
  EXPECT_EQ(p->trace_id, "t-1");
  EXPECT_EQ(describe_problem(*p), "404 (Not Found): Workspace is not found. (trace ID: t-1)");
  EXPECT_EQ(http_error_message("GET", "/workspaces/9", 404,
                               R"({"status":404,"title":"Not Found","detail":"Workspace is not found.","traceId":"t-1"})", "tok-123456"),
            "Codesphere API error 404 (Not Found) on GET /workspaces/9: Workspace is not found. (trace ID: t-1)");
  // Other shapes: the first message-like field.
  p = parse_problem(R"({"message":"gateway exploded"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->detail, "gateway exploded");
  EXPECT_FALSE(parse_problem("[1,2]"));
  EXPECT_FALSE(parse_problem("<html>"));
  EXPECT_FALSE(parse_problem("{}"));
}

TEST(CodesphereErrors, AuthFailuresSayWhatToDoAndBodiesAreQuotedRedacted) {
  const std::string token = "tok-VERY-SECRET-42";
  std::string m = http_error_message("GET", "/teams", 401, R"({"status":401,"title":"Unauthorized","traceId":"x"})", token);
  EXPECT_NE(m.find("invalid or expired"), std::string::npos) << m;
  EXPECT_NE(m.find("CODESPHERE_API_TOKEN"), std::string::npos) << m;
  m = http_error_message("POST", "/workspaces", 403, "", token);
  EXPECT_NE(m.find("lacks the rights"), std::string::npos) << m;
  m = http_error_message("GET", "/x", 502, "<html>\n  bad gateway for " + token + "  </html>", token);
  EXPECT_EQ(m, "Codesphere API error 502 on GET /x: <html> bad gateway for [REDACTED] </html>");
  m = http_error_message("GET", "/x", 400, R"({"status":400,"title":"Bad","detail":"echo Bearer )" + token + R"("})", token);
  EXPECT_EQ(m.find(token), std::string::npos) << m;
  EXPECT_EQ(m.find("VERY-SECRET"), std::string::npos) << m;
}

TEST(CodesphereErrors, StatusMappingAndRetryableSet) {
  EXPECT_EQ(status_for_http(400), MCPH_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_for_http(401), MCPH_ERR_UNAUTHENTICATED);
  EXPECT_EQ(status_for_http(403), MCPH_ERR_PERMISSION_DENIED);
  EXPECT_EQ(status_for_http(404), MCPH_ERR_NOT_FOUND);
  EXPECT_EQ(status_for_http(409), MCPH_ERR_FAILED_PRECONDITION);
  EXPECT_EQ(status_for_http(429), MCPH_ERR_RESOURCE_EXHAUSTED);
  EXPECT_EQ(status_for_http(503), MCPH_ERR_UNAVAILABLE);
  for (int s : {500, 502, 503, 504}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {200, 400, 401, 404, 429, 501}) EXPECT_FALSE(is_retryable_status(s)) << s;
}

// --- SSE ---------------------------------------------------------------------------------------

std::vector<SseEvent> parse_in_chunks(const std::string& stream, const std::vector<std::size_t>& sizes) {
  SseParser p;
  std::vector<SseEvent> out;
  std::size_t pos = 0, i = 0;
  while (pos < stream.size()) {
    const std::size_t n = sizes.empty() ? stream.size() : sizes[i++ % sizes.size()];
    p.feed(std::string_view(stream).substr(pos, n), [&](const SseEvent& e) {
      out.push_back(e);
      return true;
    });
    pos += n;
  }
  p.finish();
  return out;
}

// A stream with every awkward feature: BOM, CRLF/LF/CR endings, comments, multi-line data,
// a field without a colon, no space after the colon, ids, an event without data, and an
// unterminated last event (dropped, as the spec says).
const std::string kStream =
    "\xEF\xBB\xBF: hello\r\n"
    "event: data\r\n"
    "data: [1,\r\n"
    "data:2]\r\n"
    "\r\n"
    "id: 7\n"
    "event: problem\n"
    "data: {\"status\":400}\n"
    "\n"
    "retry: 100\r"
    "data\r"
    "\r"
    "event: nothing\n"
    "\n"
    "data:  two spaces\n"
    "unknown: x\n"
    "\n"
    "data: cut off";

void expect_the_stream_events(const std::vector<SseEvent>& ev) {
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].type, "data");
  EXPECT_EQ(ev[0].data, "[1,\n2]");
  EXPECT_EQ(ev[0].id, "");
  EXPECT_EQ(ev[1].type, "problem");
  EXPECT_EQ(ev[1].data, "{\"status\":400}");
  EXPECT_EQ(ev[1].id, "7");
  EXPECT_EQ(ev[2].type, "message");  // `data` with no colon: one empty data line
  EXPECT_EQ(ev[2].data, "");
  EXPECT_EQ(ev[2].id, "7");  // the last id persists
  EXPECT_EQ(ev[3].data, " two spaces");  // only one leading space is dropped
}

TEST(CodesphereSse, WholeStream) { expect_the_stream_events(parse_in_chunks(kStream, {})); }

TEST(CodesphereSse, ByteByByte) { expect_the_stream_events(parse_in_chunks(kStream, {1})); }

TEST(CodesphereSse, OddChunksAndEverySplitPoint) {
  for (std::vector<std::size_t> sizes : {std::vector<std::size_t>{2}, {3}, {5, 1}, {7, 2, 1}, {13}, {4, 11}}) {
    SCOPED_TRACE(sizes.size());
    expect_the_stream_events(parse_in_chunks(kStream, sizes));
  }
  for (std::size_t cut = 1; cut < kStream.size(); ++cut) {
    SCOPED_TRACE(cut);
    expect_the_stream_events(parse_in_chunks(kStream, {cut, kStream.size()}));
  }
}

TEST(CodesphereSse, CrAtAChunkEndFollowedByLf) {
  SseParser p;
  std::vector<SseEvent> out;
  auto sink = [&](const SseEvent& e) {
    out.push_back(e);
    return true;
  };
  // The LF that starts the second chunk completes "a"'s CRLF; it is not an empty line, so
  // "a" and "b" are one event.
  p.feed("data: a\r", sink);
  p.feed("\ndata: b\r", sink);
  p.feed("\n\r", sink);  // LF completes b's CRLF, then CR is the empty line
  p.feed("\n", sink);     // and this LF belongs to that CR: no second (empty) dispatch
  p.feed("data: c\n\n", sink);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data, "a\nb");
  EXPECT_EQ(out[1].data, "c");
}

TEST(CodesphereSse, ACallbackCanStopTheParser) {
  SseParser p;
  int seen = 0;
  EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) { return ++seen < 1; }));
  EXPECT_EQ(seen, 1);
}

TEST(CodesphereSse, ABomSplitAcrossChunksIsSkipped) {
  SseParser p;
  std::vector<std::string> data;
  auto sink = [&](const SseEvent& e) {
    data.push_back(e.data);
    return true;
  };
  p.feed("\xEF", sink);
  p.feed("\xBB", sink);
  p.feed("\xBF" "data: x\n\n", sink);
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data[0], "x");
}

// --- The log stream reader ----------------------------------------------------------------------

std::string data_event(const std::string& name, const json& payload) {
  return "event: " + name + "\ndata: " + payload.dump() + "\n\n";
}

json entry(int i, const char* kind = "I") {
  return json{{"timestamp", "2026-01-01T00:00:0" + std::to_string(i % 10) + "Z"}, {"kind", kind}, {"data", "line " + std::to_string(i) + "\n"}};
}

TEST(CodesphereLogs, KeepsTheLastEntriesAndFormatsThem) {
  LogCollector c(3);
  std::string stream = ": keep-alive\n\n" + data_event("data", json::array({entry(0), entry(1, "E")})) +
                       data_event("message", json::array({entry(2), entry(3, "E"), entry(4)}));  // CSGO's mock name
  for (char ch : stream) ASSERT_TRUE(c.feed(std::string_view(&ch, 1)));
  c.finish();
  ASSERT_EQ(c.entries().size(), 3u);
  EXPECT_EQ(c.total_seen(), 5u);
  EXPECT_EQ(c.entries()[0].data, "line 2\n");
  EXPECT_EQ(format_log_entry(c.entries()[1]), "2026-01-01T00:00:03Z [E] line 3");
  EXPECT_FALSE(c.problem());
  EXPECT_FALSE(c.ended_by_event());
}

TEST(CodesphereLogs, AProblemStopsReading) {
  LogCollector c(10);
  EXPECT_TRUE(c.feed(data_event("data", json::array({entry(0)}))));
  EXPECT_FALSE(c.feed(data_event("problem", {{"status", 400}, {"title", "Bad Request"}, {"detail", "Workspace is not running"}, {"traceId", "t"}}) +
                      data_event("data", json::array({entry(1)}))));
  ASSERT_TRUE(c.problem());
  EXPECT_EQ(c.problem()->status, 400);
  EXPECT_EQ(c.entries().size(), 1u);  // nothing after the problem
  // Judged by payload: a problem object under another event name is still a problem.
  LogCollector d(10);
  EXPECT_FALSE(d.feed(data_event("message", {{"status", 404}, {"title", "Not Found"}, {"traceId", "t"}})));
  EXPECT_EQ(d.problem()->status, 404);
  // An unreadable problem event is still one.
  LogCollector e(10);
  EXPECT_FALSE(e.feed("event: problem\ndata: boom\n\n"));
  EXPECT_EQ(e.problem()->detail, "boom");
}

TEST(CodesphereLogs, EndEventsAndJunk) {
  LogCollector c(10);
  EXPECT_TRUE(c.feed("data: not json\n\ndata: 42\n\n" + data_event("data", json::array({entry(0), 5, json{{"data", {{"x", 1}}}}}))));
  EXPECT_EQ(c.ignored_events(), 2u);
  ASSERT_EQ(c.entries().size(), 2u);
  EXPECT_EQ(c.entries()[1].data, R"({"x":1})");
  EXPECT_EQ(format_log_entry(c.entries()[1]), "- [?] {\"x\":1}");
  // Null fields (nlohmann's value() would throw, which inside the stream callback would
  // silently end the read) are read as empty.
  EXPECT_TRUE(c.feed("data: [{\"timestamp\": null, \"kind\": null, \"data\": \"x\"}]\n\n"));
  ASSERT_EQ(c.entries().size(), 3u);
  EXPECT_EQ(format_log_entry(c.entries()[2]), "- [?] x");
  EXPECT_FALSE(c.feed("event: done\ndata: bye\n\n"));
  EXPECT_TRUE(c.ended_by_event());
}

// --- Pipeline rules ------------------------------------------------------------------------------

json pentry(const std::string& server, const std::string& state, std::vector<std::string> steps,
            const char* started = nullptr) {
  json s = json::array();
  for (auto& st : steps) s.push_back({{"state", st}});
  json e{{"server", server}, {"state", state}, {"steps", s}, {"replica", "r-" + server}};
  if (started) e["startedAt"] = started;
  return e;
}

TEST(CodespherePipeline, PrepareIsJudgedByTheIdeServerOnly) {
  // A landscape: the service servers wait idle during prepare and must not block it (§1.5).
  json body = {pentry("codesphere-ide", "success", {"success", "success"}), pentry("app", "waiting", {}),
               pentry("api", "waiting", {})};
  auto v = evaluate(Stage::Prepare, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Done);
  EXPECT_EQ(v.state, "success");
  body[0]["state"] = "running";
  v = evaluate(Stage::Prepare, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Pending);
  EXPECT_EQ(v.state, "running");
}

TEST(CodespherePipeline, FailureNamesTheStepAndServer) {
  json body = json::array({pentry("codesphere-ide", "failure", {"success", "failure", "waiting"})});
  auto v = evaluate(Stage::Prepare, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Failed);
  EXPECT_EQ(v.failed_step, 1);
  EXPECT_EQ(v.failed_server, "codesphere-ide");
  EXPECT_EQ(describe_failure(Stage::Prepare, v), "prepare failed at step 1 (failure) on server codesphere-ide");
  body = json::array({pentry("codesphere-ide", "aborted", {"aborted"})});
  v = evaluate(Stage::Test, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Failed);
  EXPECT_EQ(describe_failure(Stage::Test, v), "test was aborted at step 0 (aborted) on server codesphere-ide");
  // A failed entry without a failed step still fails, without a step number.
  body = json::array({pentry("codesphere-ide", "failure", {"success"})});
  v = evaluate(Stage::Prepare, parse_pipeline(body));
  EXPECT_EQ(v.failed_step, -1);
  EXPECT_EQ(describe_failure(Stage::Prepare, v), "prepare failed on server codesphere-ide");
}

TEST(CodespherePipeline, WithoutAnIdeEntryIdleEntriesAreIgnored) {
  // PY's rule: entries with steps or not waiting count.
  json body = {pentry("worker", "success", {"success"}), pentry("idle", "waiting", {})};
  EXPECT_EQ(evaluate(Stage::Prepare, parse_pipeline(body)).outcome, Verdict::Outcome::Done);
  EXPECT_EQ(evaluate(Stage::Prepare, parse_pipeline(json::array())).state, "not started");
  EXPECT_EQ(evaluate(Stage::Prepare, parse_pipeline(json::object())).outcome, Verdict::Outcome::Pending);
}

TEST(CodespherePipeline, RunIsUpWhenItsServersAreRunning) {
  json body = {pentry("codesphere-ide", "waiting", {}), pentry("app", "running", {"running"}), pentry("api", "waiting", {"waiting"})};
  EXPECT_EQ(evaluate(Stage::Run, parse_pipeline(body)).outcome, Verdict::Outcome::Pending);
  body[2]["state"] = "running";
  auto v = evaluate(Stage::Run, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Done);  // the IDE entry does not count for a landscape
  EXPECT_EQ(v.state, "running");
  body[1]["state"] = "failure";
  body[1]["steps"][0]["state"] = "failure";
  v = evaluate(Stage::Run, parse_pipeline(body));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Failed);
  EXPECT_EQ(v.failed_server, "app");
  // An ordinary workspace runs on the IDE server itself.
  EXPECT_EQ(evaluate(Stage::Run, parse_pipeline(json::array({pentry("codesphere-ide", "running", {"running"})}))).outcome,
            Verdict::Outcome::Done);
  // A run command that exited 0 ends the wait too.
  v = evaluate(Stage::Run, parse_pipeline(json::array({pentry("codesphere-ide", "success", {"success"})})));
  EXPECT_EQ(v.outcome, Verdict::Outcome::Done);
  EXPECT_EQ(v.state, "success");
}

TEST(CodespherePipeline, AnEntryFromBeforeTheStartIsNotOurs) {
  const auto start = *parse_rfc3339_ms("2026-02-15T10:00:00Z");
  json old_failure = json::array({pentry("codesphere-ide", "failure", {"failure"}, "2026-02-15T09:00:00.000Z")});
  auto v = evaluate(Stage::Prepare, parse_pipeline(old_failure), start);
  EXPECT_EQ(v.outcome, Verdict::Outcome::Pending);
  EXPECT_TRUE(v.stale);
  EXPECT_EQ(v.state, "waiting");
  // Without a start time the same entry counts.
  EXPECT_EQ(evaluate(Stage::Prepare, parse_pipeline(old_failure)).outcome, Verdict::Outcome::Failed);
  // Started within the Date header's one-second resolution: ours.
  json fresh = json::array({pentry("codesphere-ide", "success", {"success"}, "2026-02-15T10:00:00.400Z")});
  EXPECT_EQ(evaluate(Stage::Prepare, parse_pipeline(fresh), start + 900).outcome, Verdict::Outcome::Done);
  // A stale "running" run stage is the previous process.
  json old_run = json::array({pentry("codesphere-ide", "running", {"running"}, "2026-02-15T09:59:58.000Z")});
  EXPECT_EQ(evaluate(Stage::Run, parse_pipeline(old_run), start).outcome, Verdict::Outcome::Pending);
}

TEST(CodespherePipeline, SummariesAndStates) {
  json body = {pentry("codesphere-ide", "success", {"success"}), pentry("app", "failure", {"failure"}),
               pentry("api", "running", {"running"})};
  auto entries = parse_pipeline(body);
  EXPECT_EQ(summarize(Stage::Run, entries), "failure");
  EXPECT_EQ(summarize(Stage::Prepare, entries), "success");
  EXPECT_EQ(summarize(Stage::Test, parse_pipeline(json::array())), "not started");
  EXPECT_EQ(parse_state("aborted"), State::Aborted);
  EXPECT_EQ(parse_state("failed"), State::Unknown);  // the old server's non-state
  EXPECT_TRUE(is_terminal(State::Aborted));
  EXPECT_FALSE(is_terminal(State::Running));
  EXPECT_EQ(parse_stage("test"), Stage::Test);
  EXPECT_FALSE(parse_stage("build"));
  auto e = parse_pipeline(json::array({json{{"state", "weird"}, {"server", "x"}, {"steps", json::array({json(1), json{{"state", "running"}}})}}}));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].state_text, "weird");
  EXPECT_EQ(e[0].steps, (std::vector<State>{State::Unknown, State::Running}));
}

// --- Settings ----------------------------------------------------------------------------------

TEST(CodesphereSettings, DefaultsAndValues) {
  Settings d = Settings::parse(json::object());
  EXPECT_EQ(d.base_url, "https://codesphere.com/api");
  EXPECT_FALSE(d.team_id);
  EXPECT_EQ(d.poll_interval, milliseconds(5000));
  EXPECT_EQ(d.ide_url(1, 2), "https://codesphere.com/ide/teams/1/workspaces/2");
  Settings s = Settings::parse({{"base_url", "http://127.0.0.1:9/api/"}, {"team_id", "42"}, {"poll_interval_ms", 20},
                                {"logs_timeout_ms", "500"}, {"max_retries", 0}});
  EXPECT_EQ(s.base_url, "http://127.0.0.1:9/api");
  EXPECT_EQ(s.team_id, 42);
  EXPECT_EQ(s.poll_interval, milliseconds(20));
  EXPECT_EQ(s.logs_timeout, milliseconds(500));
  EXPECT_EQ(s.max_retries, 0);
  EXPECT_FALSE(Settings::parse({{"team_id", ""}}).team_id);  // "${CS_TEAM_ID:-}"
  EXPECT_EQ(Settings::parse({{"base_url", "https://x.example/v1"}}).ide_url(1, 2), "");
}

TEST(CodesphereSettings, MistakesFailLoudly) {
  for (const json& bad : {json{{"base_url", "codesphere.com"}}, json{{"team_id", "abc"}}, json{{"poll_interval_ms", 0}},
                          json{{"poll_interval_ms", -5}}, json{{"pol_interval_ms", 5}}, json{{"max_retries", 11}},
                          json{{"request_timeout_ms", "fast"}}, json::array()}) {
    EXPECT_THROW(Settings::parse(bad), std::invalid_argument) << bad;
  }
  try {
    Settings::parse({{"timeout", 1}});
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'timeout'"), std::string::npos) << e.what();
  }
}

// --- Redirect rules and paths ------------------------------------------------------------------------

TEST(CodesphereClientRules, LocationsResolve) {
  EXPECT_EQ(resolve_location("https://codesphere.com/api/teams", "https://dc2.codesphere.com/api/teams"),
            "https://dc2.codesphere.com/api/teams");
  EXPECT_EQ(resolve_location("http://127.0.0.1:8/api/teams", "/api/v2/teams"), "http://127.0.0.1:8/api/v2/teams");
  EXPECT_EQ(resolve_location("http://127.0.0.1:8/api/teams?x=1", "other"), "http://127.0.0.1:8/api/other");
  EXPECT_EQ(resolve_location("https://a.example/x", "//b.example/y"), "https://b.example/y");
  EXPECT_FALSE(resolve_location("https://a.example/x", ""));
  EXPECT_FALSE(resolve_location("https://a.example/x", "ftp://b.example/y"));
}

TEST(CodesphereClientRules, TheTokenGoesOnlyToTrustedHosts) {
  EXPECT_TRUE(may_send_token("https://codesphere.com/api", "https://codesphere.com/api/teams"));
  EXPECT_TRUE(may_send_token("https://codesphere.com/api", "https://dc2.codesphere.com/api/teams"));
  EXPECT_TRUE(may_send_token("https://codesphere.com/api", "https://CLOUD.codesphere.com:443/api"));
  EXPECT_TRUE(may_send_token("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/other"));
  EXPECT_FALSE(may_send_token("https://codesphere.com/api", "http://dc2.codesphere.com/api"));  // no downgrade
  EXPECT_FALSE(may_send_token("https://codesphere.com/api", "https://evilcodesphere.com/api"));
  EXPECT_FALSE(may_send_token("https://codesphere.com/api", "https://codesphere.com.evil.example/api"));
  EXPECT_FALSE(may_send_token("https://codesphere.com/api", "https://user@codesphere.com/api"));
  EXPECT_FALSE(may_send_token("http://127.0.0.1:8080/api", "http://127.0.0.1:8081/api"));
  EXPECT_FALSE(may_send_token("https://self.example/api", "https://other.example/api"));
}

TEST(CodesphereClientRules, PathSegmentsAreEncoded) {
  EXPECT_EQ(path_segment("shop.example.com"), "shop.example.com");
  EXPECT_EQ(path_segment("a/b c?"), "a%2Fb%20c%3F");
}

// --- The built plugin against the SDK's fake host (no network) -------------------------------------

using mcph::testing::FakeHost;
using mcph::testing::HttpReply;

std::string plugin_path() { return std::string(MCPH_PLUGIN_DIR) + "/libcodesphere.so"; }

const json kSettings = {{"base_url", "https://cs.test/api"}, {"poll_interval_ms", 1}, {"retry_backoff_ms", 0}};

TEST(CodespherePlugin, RegistersTheToolsWithSchemasAndAnnotations) {
  FakeHost host;
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  std::vector<std::string> names;
  for (const auto& t : p.tools()) {
    names.push_back(t["name"]);
    EXPECT_TRUE(t.contains("outputSchema")) << t["name"];
    EXPECT_EQ(t["outputSchema"]["type"], "object") << t["name"];
    EXPECT_TRUE(t["annotations"].contains("readOnlyHint")) << t["name"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"list_teams", "list_plans", "list_workspaces", "get_workspace_status",
                                             "create_workspace", "deploy", "stop_workspace", "restart_workspace",
                                             "view_logs", "switch_domain", "list_domains", "list_env_vars", "git_pull",
                                             "scale_workspace", "delete_workspace"}));
  auto tool = [&](const std::string& n) {
    for (const auto& t : p.tools()) {
      if (t["name"] == n) return t;
    }
    return json();
  };
  EXPECT_TRUE(tool("view_logs")["annotations"]["readOnlyHint"].get<bool>());
  EXPECT_TRUE(tool("stop_workspace")["annotations"]["destructiveHint"].get<bool>());
  EXPECT_TRUE(tool("switch_domain")["annotations"]["destructiveHint"].get<bool>());
  EXPECT_TRUE(tool("delete_workspace")["annotations"]["destructiveHint"].get<bool>());
  EXPECT_EQ(tool("delete_workspace")["inputSchema"]["properties"]["confirm"]["const"], true);
  EXPECT_EQ(tool("delete_workspace")["inputSchema"]["required"], json({"workspaceId", "confirm"}));
  EXPECT_FALSE(tool("deploy")["annotations"]["readOnlyHint"].get<bool>());
  EXPECT_EQ(tool("deploy")["inputSchema"]["properties"]["workspaceId"]["type"], json({"integer", "string"}));
  EXPECT_EQ(tool("view_logs")["inputSchema"]["properties"]["lines"]["default"], 50);
  EXPECT_EQ(tool("create_workspace")["inputSchema"]["required"], json({"gitUrl", "name", "planId"}));
}

TEST(CodespherePlugin, WithoutATokenEveryToolSaysHowToSetIt) {
  FakeHost host;
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  for (const auto& t : p.tools()) {
    auto r = p.call(t["name"], {{"workspaceId", 1}, {"domainName", "a.example"}, {"gitUrl", "g"}, {"name", "n"},
                                {"planId", 8}, {"replicas", 2}, {"confirm", true}});
    EXPECT_TRUE(r.is_error()) << t["name"];
    EXPECT_NE(r.text().find("set CODESPHERE_API_TOKEN (or credentials.api_token"), std::string::npos) << r.text();
  }
  EXPECT_TRUE(host.http.requests().empty());
  ASSERT_FALSE(host.logs().empty());  // and the host log says so once, at load
  EXPECT_NE(host.logs()[0].message.find("CODESPHERE_API_TOKEN"), std::string::npos);
}

// The sign-in form's check (ABI 1.2): GET /teams with what the user typed, as the old
// server did (§1.2), but with a choice of team instead of silently the first.
TEST(CodesphereSignIn, TheCheckAsksCodesphereAndOffersTheTeams) {
  FakeHost host;
  const std::string teams = json::array({{{"id", 11}, {"name", "Acme"}}, {{"id", "12"}, {"name", "Beta <b>"}}}).dump();
  host.http.on("GET", "https://cs.test/api/teams", HttpReply(401, {}, R"({"status":401,"title":"Unauthorized"})"))
      .on("GET", "https://cs.test/api/teams", HttpReply(200, {}, json::array({{{"id", 7}, {"name", "Solo"}}}).dump()))
      .on("GET", "https://cs.test/api/teams", HttpReply(200, {}, teams));
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  ASSERT_EQ(p.user_credentials().size(), 1u);
  EXPECT_EQ(p.user_credentials()[0]["key"], "api_token");

  auto refused = p.check_credentials({{"api_token", "wrong-token-123"}});
  ASSERT_TRUE(refused.is_error());
  EXPECT_EQ(refused.error_status, MCPH_ERR_UNAUTHENTICATED);
  EXPECT_NE(refused.text().find("did not accept this API token (HTTP 401)"), std::string::npos) << refused.text();
  EXPECT_EQ(refused.text().find("wrong-token-123"), std::string::npos);
  EXPECT_EQ(host.http.requests().at(0).header("Authorization"), "Bearer wrong-token-123");

  auto one = p.check_credentials({{"api_token", "solo-token"}});
  ASSERT_FALSE(one.is_error()) << one.text();
  EXPECT_EQ(one.result["values"]["team_id"], "7") << one.result.dump();

  auto several = p.check_credentials({{"api_token", "multi-token"}});
  ASSERT_FALSE(several.is_error()) << several.text();
  const json& choose = several.result["choose"];
  ASSERT_EQ(choose.size(), 1u) << several.result.dump();
  EXPECT_EQ(choose[0]["key"], "team_id");
  EXPECT_EQ(choose[0]["options"], json::array({{{"value", "11"}, {"label", "Acme (11)"}}, {{"value", "12"}, {"label", "Beta <b> (12)"}}}));
  // Run again with the pick: accepted; a team the token does not see is offered again.
  EXPECT_EQ(p.check_credentials({{"api_token", "multi-token"}, {"team_id", "12"}}).result, json::object());
  EXPECT_TRUE(p.check_credentials({{"api_token", "multi-token"}, {"team_id", "99"}}).result.contains("choose"));
}

TEST(CodesphereSignIn, NoTeamsOrNoAnswerAreSaidPlainly) {
  FakeHost host;
  host.http.on("GET", "https://cs.test/api/teams", HttpReply(200, {}, "[]"))
      .on("GET", "https://cs.test/api/teams", HttpReply::fail(MCPH_ERR_UNAVAILABLE, "connection refused"));
  json settings = kSettings;
  settings["max_retries"] = 0;
  auto p = mcph::testing::Plugin::load(plugin_path(), host, settings);
  auto none = p.check_credentials({{"api_token", "lonely-token"}});
  ASSERT_TRUE(none.is_error());
  EXPECT_NE(none.text().find("sees no Codesphere teams"), std::string::npos) << none.text();
  EXPECT_NE(none.error_status, MCPH_ERR_UNAVAILABLE);  // a failed attempt: the user must act
  auto down = p.check_credentials({{"api_token", "any-token"}});
  ASSERT_TRUE(down.is_error());
  EXPECT_EQ(down.error_status, MCPH_ERR_UNAVAILABLE) << down.text();  // "try again", not the user's fault
  EXPECT_NE(down.text().find("try again"), std::string::npos) << down.text();
}

// Signed in with OAuth, the team the user picked is the default; a teamId argument wins.
TEST(CodesphereSignIn, ThePickedTeamIsTheUsersDefault) {
  FakeHost host;
  host.http.on("GET", "https://cs.test/api/workspaces/team/12", HttpReply(200, {}, "[]"))
      .on("GET", "https://cs.test/api/workspaces/team/3", HttpReply(200, {}, "[]"));
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  mcph::testing::CallOptions user;
  user.principal = "u-alice";
  user.credentials = std::map<std::string, std::string>{{"api_token", "alice-token"}, {"team_id", "12"}};
  auto r = p.call("list_workspaces", json::object(), user);
  ASSERT_FALSE(r.is_error()) << r.text();
  r = p.call("list_workspaces", {{"teamId", 3}}, user);
  ASSERT_FALSE(r.is_error()) << r.text();
  const auto reqs = host.http.requests();
  ASSERT_EQ(reqs.size(), 2u) << "no GET /teams: the default is known";
  EXPECT_EQ(reqs[0].url, "https://cs.test/api/workspaces/team/12");
  EXPECT_EQ(reqs[1].url, "https://cs.test/api/workspaces/team/3");
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer alice-token");
}

TEST(CodespherePlugin, LogsArriveInOddChunksThroughTheStreamingHttp) {
  FakeHost host;
  host.credentials["api_token"] = "tok-abcdef";
  const std::string stream = ": hi\r\n\r\n" + data_event("data", json::array({entry(1), entry(2, "E")})) + data_event("data", json::array({entry(3)}));
  HttpReply reply(200, {{"Content-Type", "text/event-stream"}});
  for (std::size_t i = 0; i < stream.size(); i += 3) reply.chunks.push_back(stream.substr(i, 3));
  host.http.on("GET", "https://cs.test/api/workspaces/5/logs/prepare/1", reply);
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  auto r = p.call("view_logs", {{"workspaceId", "5"}, {"stage", "prepare"}, {"step", 1}, {"lines", 2}});
  ASSERT_FALSE(r.is_error()) << r.text();
  EXPECT_EQ(r.structured()["items"].size(), 2u);
  EXPECT_EQ(r.structured()["items"][0]["kind"], "E");
  EXPECT_EQ(r.structured()["totalReceived"], 3);
  EXPECT_TRUE(r.structured()["complete"].get<bool>());
  EXPECT_NE(r.text().find("2026-01-01T00:00:02Z [E] line 2"), std::string::npos) << r.text();
  auto req = host.http.requests().at(0);
  EXPECT_EQ(req.header("Accept"), "text/event-stream");
  EXPECT_EQ(req.header("Authorization"), "Bearer tok-abcdef");
}

TEST(CodespherePlugin, CancellingADeployWaitSaysTheStageGoesOn) {
  FakeHost host;
  host.credentials["api_token"] = "tok-abcdef";
  host.http.on("POST", "https://cs.test/api/workspaces/5/git/pull/origin", HttpReply(200));
  host.http.on("POST", "https://cs.test/api/workspaces/5/pipeline/prepare/start", HttpReply(200));
  host.http.on("GET", "https://cs.test/api/workspaces/5/pipeline/prepare",
               HttpReply(200, {}, json::array({pentry("codesphere-ide", "running", {"running"})}).dump()));
  auto p = mcph::testing::Plugin::load(plugin_path(), host, kSettings);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    // Cancel once the wait is polling (deadline-bounded: the test never waits blindly).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (host.http.requests().size() < 4 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    cancel = true;
  });
  auto r = p.call("deploy", {{"workspaceId", 5}}, {&cancel});
  canceller.join();
  ASSERT_TRUE(r.is_error());
  EXPECT_NE(r.text().find("prepare stage goes on upstream"), std::string::npos) << r.text();
  ASSERT_FALSE(r.progress.empty());
  EXPECT_NE(r.progress.back()["message"].get<std::string>().find("prepare: running"), std::string::npos);
}

}  // namespace
}  // namespace codesphere
