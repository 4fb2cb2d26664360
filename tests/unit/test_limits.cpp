// The pieces that keep outside input and plugins bounded: JSON nesting checked before a
// value is built, redaction over JSON values, and the call scheduler (caps per instance,
// bounded queues, deadlines that hold whether or not a job returns).
#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "json/bounded.hpp"
#include "plugins/secrets.hpp"
#include "protocol/jsonrpc.hpp"
#include "protocol/scheduler.hpp"

namespace mcph {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(JsonBounds, BracketsInStringsDoNotCountAsNesting) {
  const int max = json_text::kMaxDepth;
  json_text::ParseFailure why;
  EXPECT_TRUE(json_text::parse("[\"" + std::string(1000, '[') + "\\\"{\"]", &why));
  EXPECT_EQ(why, json_text::ParseFailure::kNone);
  EXPECT_FALSE(json_text::parse(std::string(1000000, '['), &why));  // stops at max + 1
  EXPECT_EQ(why, json_text::ParseFailure::kTooDeep);
  EXPECT_FALSE(json_text::parse(std::string(max, '[') + "1,", &why));
  EXPECT_EQ(why, json_text::ParseFailure::kSyntax);
}

// The host's parser reads what json::parse reads, into the same values (fuzz_json compares
// them on every input); these are the corners.
TEST(JsonBounds, ParsesAsNlohmannDoes) {
  for (const char* text : {"7", "-0", "-9223372036854775808", "18446744073709551615", "18446744073709551616",
                           "-9223372036854775809", "1.5e3", "-0.0", "1E-400", "\"\\u00e9\\ud83d\\ude00\\u0000\"",
                           "\xEF\xBB\xBF{\"a\":1,\"a\":[true,false,null]}", " {\"k\" : \"\xC3\xA9\xF0\x9F\x98\x80\x7F\"} "}) {
    auto ours = json_text::parse(text);
    json theirs = json::parse(text, nullptr, false);
    ASSERT_TRUE(ours) << text;
    ASSERT_FALSE(theirs.is_discarded()) << text;
    EXPECT_EQ(ours->dump(), theirs.dump()) << text;
    EXPECT_EQ(ours->type(), theirs.type()) << text;
  }
  for (const char* text : {"", " ", "01", "1.", ".5", "-", "1e", "+1", "1e400", "-1e400", "tru", "nul", "[1,]", "{\"a\"}",
                           "{\"a\":1,}", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"\x01\"",
                           "\"\xC0\x80\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xE0\x9F\xBF\"", "\xEF\xBB",
                           "[1] [2]", "/* c */ 1", "\"abc"}) {
    EXPECT_FALSE(json_text::parse(text)) << text;
    EXPECT_TRUE(json::parse(text, nullptr, false).is_discarded()) << text;
  }
}

// Plain runs are scanned eight bytes at a time: a byte that must be escaped (or is not
// ASCII) is found at every place in and after the first eight, by the reader and the writer.
TEST(JsonBounds, EveryByteThatEndsAPlainRunIsFoundWhereverItIs) {
  for (const std::string& special : std::vector<std::string>{"\"", "\\", "\n", std::string(1, '\x01'), "\x7f", "\xc3\xa9"}) {
    for (size_t at = 0; at < 20; ++at) {
      const std::string s = std::string(at, 'a') + special + std::string(19 - at, 'b');
      const std::string text = json(s).dump();
      EXPECT_EQ(json_text::dump(json(s)), text) << at;
      auto back = json_text::parse(text);
      ASSERT_TRUE(back) << text;
      EXPECT_EQ(back->get<std::string>(), s) << at;
      if (special == "\"" || special == "\n" || special[0] == '\x01') {  // raw in a JSON string: refused
        EXPECT_FALSE(json_text::parse("\"" + s + "\"")) << at;
      }
    }
  }
}

TEST(JsonBounds, ParseRefusesTooDeepBeforeBuilding) {
  json_text::ParseFailure why;
  const int max = json_text::kMaxDepth;
  EXPECT_TRUE(json_text::parse(std::string(max, '[') + std::string(max, ']'), &why));
  EXPECT_EQ(why, json_text::ParseFailure::kNone);
  EXPECT_FALSE(json_text::parse(std::string(max + 1, '[') + std::string(max + 1, ']'), &why));
  EXPECT_EQ(why, json_text::ParseFailure::kTooDeep);
  EXPECT_FALSE(json_text::parse("{\"a\":", &why));
  EXPECT_EQ(why, json_text::ParseFailure::kSyntax);
  EXPECT_EQ(json_text::dump(json(std::string("\xff"))), "\"\xEF\xBF\xBD\"");  // never throws
}

TEST(JsonScan, ChecksAsParseDoesWithoutBuilding) {
  for (const char* text : {R"({"a":1,"b":[true,null,"x\u00e9"],"c":{"d":-0.5e3}})", "{}", " {\"a\" : 1 } ",
                           "\xEF\xBB\xBF{\"a\":1}", R"({"a":1,"a":2})"}) {
    auto scanned = json_text::scan_object(text);
    ASSERT_TRUE(scanned) << text;
    EXPECT_TRUE(json_text::parse(text)->is_object()) << text;
  }
  // Whatever parse() refuses, or reads as something other than an object, scan refuses.
  for (const char* text : {"[1]", "1", "\"a\"", "null", "{\"a\":1e400}", "{\"a\":01}", "{\"a\":\"\x01\"}", "{\"a\":\"\xC0\x80\"}",
                           "{\"a\":\"\\ud800\"}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\" 1}", "{\"a\":tru}", ""}) {
    EXPECT_FALSE(json_text::scan_object(text)) << text;
    auto parsed = json_text::parse(text);
    EXPECT_TRUE(!parsed || !parsed->is_object()) << text;
  }
  json_text::ParseFailure why;
  const int max = json_text::kMaxDepth;
  EXPECT_TRUE(json_text::scan_object("{\"a\":" + std::string(max - 1, '[') + std::string(max - 1, ']') + "}", &why));
  EXPECT_FALSE(json_text::scan_object("{\"a\":" + std::string(max, '[') + std::string(max, ']') + "}", &why));
  EXPECT_EQ(why, json_text::ParseFailure::kTooDeep);
}

TEST(JsonScan, ReportsTopLevelMembersAsWrittenAndWhetherTheTextCanStand) {
  const std::string text = R"({"content":[{"type":"text","text":"hi \"there\""}],"isError":true,"n":{"a":{}}})";
  auto scanned = json_text::scan_object(text);
  ASSERT_TRUE(scanned);
  EXPECT_TRUE(scanned->verbatim);
  ASSERT_EQ(scanned->size, 3u);
  EXPECT_EQ(scanned->members[0].key, "content");
  EXPECT_EQ(scanned->members[0].value, R"([{"type":"text","text":"hi \"there\""}])");
  EXPECT_EQ(*scanned->find("isError"), "true");
  EXPECT_EQ(*scanned->find("n"), R"({"a":{}})");
  EXPECT_EQ(scanned->find("a"), nullptr);  // a deeper key is not a member
  // Found again, unchecked, in the text of a written value.
  const auto again = json_text::members_of(text);
  ASSERT_EQ(again.size, 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(again.members[i].key, scanned->members[i].key);
    EXPECT_EQ(again.members[i].value, scanned->members[i].value);
  }
  // Not verbatim: whitespace between tokens (a message line must not break), a byte order
  // mark, a repeated key (parse() keeps the later one) or an escaped one (it might repeat
  // another).
  for (const char* text : {R"({"a": 1})", "{\"a\":1}\n", "\xEF\xBB\xBF{\"a\":1}", R"({"a":1,"a":2})", R"({"\u0061":1})"}) {
    auto s = json_text::scan_object(text);
    ASSERT_TRUE(s) << text;
    EXPECT_FALSE(s->verbatim) << text;
  }
  // Up to kMaxMembers members are compared; an object with more is built instead.
  std::string many = "{";
  for (size_t i = 0; i <= json_text::ScannedObject::kMaxMembers; ++i) many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  many.back() = '}';
  EXPECT_FALSE(json_text::scan_object(many)->verbatim);
  EXPECT_TRUE(json_text::scan_object(many.substr(0, many.rfind(',')) + "}")->verbatim);
  // Whitespace and escapes inside strings, and repeated keys deeper down, do not matter.
  EXPECT_TRUE(json_text::scan_object(R"({"a":" x\n","b":{"c":1,"c":2}})")->verbatim);
}

TEST(JsonScan, AWrittenValueIsDumpedAsItsTextAndBuiltBack) {
  const std::string text = R"({"b":1,"a":[2.50,"\u00e9"]})";
  const json w = json_text::written(text);
  EXPECT_EQ(json_text::written_text(w), text);
  EXPECT_FALSE(json_text::written_text(json::binary({1, 2, 3})));  // another binary value
  EXPECT_FALSE(json_text::written_text(json(text)));
  // Inside a message, as it is: its key order, its number's digits, its escape.
  EXPECT_EQ(json_text::dump(json{{"id", 1}, {"result", w}}), R"({"id":1,"result":)" + text + "}");
  EXPECT_EQ(json_text::built(w), json::parse(text));
  EXPECT_EQ(json_text::built(json{{"x", 1}}), (json{{"x", 1}}));
  // A plugin's result as it is taken: its text when it can stand, else built; not an object: none.
  EXPECT_EQ(json_text::written_text(*json_text::object_as_given(text)), text);
  EXPECT_EQ(*json_text::object_as_given("{ \"a\": 1 }"), (json{{"a", 1}}));
  EXPECT_FALSE(json_text::object_as_given("[1]"));
}

TEST(JsonScan, AClientsMessageKeepsACompactParamsMetaAsWritten) {
  const std::string meta = R"({"io.modelcontextprotocol/protocolVersion":"2026-07-28","x":{"a":[1,2.50]}})";
  const std::string text = R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"name":"n","_meta":)" + meta + "}}";
  auto message = json_text::parse_request(text);
  ASSERT_TRUE(message);
  EXPECT_EQ(json_text::written_text((*message)["params"]["_meta"]), meta);
  EXPECT_EQ((*message)["params"]["name"], "n");
  (*message)["params"]["_meta"] = json_text::built((*message)["params"]["_meta"]);
  EXPECT_EQ(*message, *json_text::parse(text));
  // Built as parse() builds it: a _meta that could not stand as written, or not params'.
  for (const char* other : {
           R"({"params":{"_meta":{"a": 1}}})", R"({"params":{"_meta":{"a":1,"a":2}}})", R"({"params":{"_meta":{"\u0061":1}}})",
           R"({"params":{"_meta":[1]}})", R"({"params":{"_meta":"x"}})", R"({"_meta":{"a":1}})", R"({"result":{"_meta":{"a":1}}})",
           R"({"params":{"arguments":{"_meta":{"a":1}}}})", R"([{"params":{"_meta":{"a":1}}}])", R"({"x":{"_meta":{"a":1}}})"}) {
    auto m = json_text::parse_request(other);
    ASSERT_TRUE(m) << other;
    EXPECT_EQ(*m, *json_text::parse(other)) << other;
  }
  // Refused alike, for the same reason, the nesting limit counted from the message's top.
  const int max = json_text::kMaxDepth;
  for (const std::string& bad : {std::string(R"({"params":{"_meta":{"a":1,}}})"), std::string(R"({"params":{"_meta":{"a":1})"),
                                 R"({"params":{"_meta":)" + std::string(max - 1, '[') + std::string(max - 1, ']') + "}}",
                                 R"({"params":{"_meta":{"a":)" + std::string(max - 2, '[') + std::string(max - 2, ']') + "}}}"}) {
    json_text::ParseFailure ours, theirs;
    EXPECT_FALSE(json_text::parse_request(bad, &ours)) << bad;
    EXPECT_FALSE(json_text::parse(bad, &theirs)) << bad;
    EXPECT_EQ(ours, theirs) << bad;
  }
  const std::string deepest = R"({"params":{"_meta":{"a":)" + std::string(max - 3, '[') + std::string(max - 3, ']') + "}}}";
  ASSERT_TRUE(json_text::parse_request(deepest));
  EXPECT_TRUE(json_text::written_text((*json_text::parse_request(deepest))["params"]["_meta"]));
}

TEST(JsonScan, AMetaSentAgainIsTakenAsTheSameObject) {
  // parse_request remembers the last _meta it kept on this thread: the same bytes again are
  // that object, and members_of knows its members; other bytes are read as ever.
  auto message = [](const std::string& meta, const std::string& after = "}}") {
    return R"({"jsonrpc":"2.0","id":1,"method":"m","params":{"name":"n","_meta":)" + meta + after;
  };
  const std::string m1 = R"({"v":"2026-07-28","c":{"x":[1,2]}})", m2 = R"({"v":"2026-07-28","c":{"x":[1,3]}})";
  for (const std::string& meta : {m1, m1, m2, m1, m2, m2}) {
    const std::string text = message(meta);
    auto parsed = json_text::parse_request(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(json_text::written_text((*parsed)["params"]["_meta"]), meta);
    (*parsed)["params"]["_meta"] = json_text::built((*parsed)["params"]["_meta"]);
    EXPECT_EQ(*parsed, *json_text::parse(text));
  }
  // Its members, found in the caller's own copy of the bytes.
  const std::string copy = m2;
  const auto members = json_text::members_of(copy);
  ASSERT_EQ(members.size, 2u);
  EXPECT_EQ(members.members[1].key, "c");
  EXPECT_EQ(members.members[1].value, R"({"x":[1,3]})");
  EXPECT_GE(members.members[1].value.data(), copy.data());
  EXPECT_LT(members.members[1].value.data(), copy.data() + copy.size());
  // What follows the remembered bytes is read as ever: good, or refused for parse()'s reason.
  for (const std::string& after : {std::string(R"(,"k":[true]}})"), std::string("}"), std::string(R"(}}x)"), std::string(R"(,}})")}) {
    const std::string text = message(m2, after);
    json_text::ParseFailure ours, theirs;
    const auto a = json_text::parse_request(text, &ours);
    const auto b = json_text::parse(text, &theirs);
    ASSERT_EQ(a.has_value(), b.has_value()) << text;
    EXPECT_EQ(ours, theirs) << text;
    if (a) {
      EXPECT_EQ(json_text::built((*a)["params"]["_meta"]), (*b)["params"]["_meta"]) << text;
    }
  }
}

TEST(JsonScan, AMetaViewReadsABuiltAndAWrittenMetaAlike) {
  const std::string text = R"({"v":"2026-07-28","caps":{"x":{}},"n":3,"s":"2026\u002d07-28","e":{}})";
  const json built = json::parse(text), written = json_text::written(text);
  for (const json* meta : {&built, &written}) {
    const protocol::MetaView view(*meta);
    EXPECT_TRUE(view.contains("caps"));
    EXPECT_FALSE(view.contains("x"));  // not a member of its own
    EXPECT_EQ(view.find("v"), json("2026-07-28"));
    EXPECT_EQ(view.find("caps"), (json{{"x", json::object()}}));
    EXPECT_EQ(view.find("n"), json(3));
    EXPECT_FALSE(view.find("absent"));
    EXPECT_TRUE(view.is_string("v", "2026-07-28"));
    EXPECT_TRUE(view.is_string("s", "2026-07-28"));  // (escaped)
    EXPECT_FALSE(view.is_string("v", "2026-07-2"));
    EXPECT_FALSE(view.is_string("n", "3"));
    EXPECT_FALSE(view.is_string("absent", ""));
    EXPECT_TRUE(view.is_empty_object("e"));
    EXPECT_FALSE(view.is_empty_object("caps"));
    EXPECT_FALSE(view.is_empty_object("n"));
  }
  for (const json& none : {json(), json(1), json::array({1})}) EXPECT_FALSE(protocol::MetaView(none).contains("v"));
  const json message{{"params", {{"_meta", written}}}};
  EXPECT_EQ(protocol::MetaView::of(message).find("n"), json(3));
  EXPECT_FALSE(protocol::MetaView::of(json{{"params", 1}}).contains("n"));
}

TEST(Redaction, NumbersStayNumbersStringsAndKeysAreRedacted) {
  json v = json::parse(R"({"n":12345,"s":"id 12345!","list":[12345,"12345"],"12345":{"k-12345":true}})");
  EXPECT_TRUE(plugins::redact_json(v, {"12345"}));
  EXPECT_EQ(v["n"], 12345);
  EXPECT_EQ(v["s"], "id [REDACTED]!");
  EXPECT_EQ(v["list"], json::parse(R"([12345,"[REDACTED]"])"));
  EXPECT_EQ(v["[REDACTED]"]["k-[REDACTED]"], true);
  EXPECT_FALSE(v.contains("12345"));
}

// Found by fuzz_redaction: a key that redacts to one already there must not replace it.
TEST(Redaction, KeysThatRedactAlikeAreBothKept) {
  json v = json::parse(R"({"[REDACTED]":1,"12345":2})");
  EXPECT_TRUE(plugins::redact_json(v, {"12345"}));
  ASSERT_EQ(v.size(), 2u) << v;
  EXPECT_EQ(v["[REDACTED]"].get<int>() + v["[REDACTED] #2"].get<int>(), 3) << v;
}

TEST(Redaction, MatchesDecodedTextAndLongestFirst) {
  json v = json{{"t", "x\"y\\z and abcd1234"}};
  std::vector<std::string> secrets{"1234", "x\"y\\z", "abcd1234"};
  plugins::sort_longest_first(secrets);
  EXPECT_TRUE(plugins::redact_json(v, secrets));
  EXPECT_EQ(v["t"], "[REDACTED] and [REDACTED]");  // not "abcd[REDACTED]"
  std::string text = "a 1234 b";
  EXPECT_TRUE(plugins::redact_text(text, secrets));
  EXPECT_EQ(text, "a [REDACTED] b");
  json untouched = json{{"a", 1}};
  EXPECT_FALSE(plugins::redact_json(untouched, secrets));
}

TEST(Redaction, SecretsKeepUsersAndFixedApart) {
  plugins::Secrets s;
  s.set_fixed({"fixed-secret"});
  s.add_user("abc");  // too short to be a secret
  s.add_user("user-secret-1");
  std::string line = "fixed-secret user-secret-1 abc";
  EXPECT_TRUE(s.redact(line));
  EXPECT_EQ(line, "[REDACTED] [REDACTED] abc");
  EXPECT_EQ(s.fixed().size(), 1u);
}

// ---- Scheduler ---------------------------------------------------------------------------

struct Gate {  // holds jobs until opened
  std::promise<void> p;
  std::shared_future<void> f = p.get_future().share();
  void open() { p.set_value(); }
};

TEST(SchedulerTest, CapsPerLaneLeaveRoomForOthers) {
  protocol::Scheduler s({4, 100});
  int a = 0, b = 0;
  s.set_cap(&a, 3);
  Gate gate;
  std::atomic<int> a_running{0}, a_peak{0}, b_done{0};
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(s.submit(&a, Clock::now() + 10s, [&] {
      a_peak = std::max(a_peak.load(), ++a_running);
      gate.f.wait();
      --a_running;
    }, [] {}));
  }
  for (auto t0 = Clock::now(); a_running < 3 && Clock::now() - t0 < 5s;) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(s.submit(&b, Clock::now() + 10s, [&] { ++b_done; }, [] {}));
  const auto t0 = Clock::now();
  while (b_done == 0 && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(b_done, 1);  // ran while a's jobs held three threads
  EXPECT_EQ(s.stats(&a).running, 3u);
  EXPECT_EQ(s.stats(&a).queued, 7u);
  gate.open();
  EXPECT_TRUE(s.wait_idle(Clock::now() + 5s));
  EXPECT_EQ(a_peak, 3);
}

TEST(SchedulerTest, AFullLaneQueueRefusesAtOnce) {
  protocol::Scheduler s({1, 2});
  int a = 0;
  Gate gate;
  EXPECT_TRUE(s.submit(&a, Clock::now() + 10s, [&] { gate.f.wait(); }, [] {}));
  EXPECT_TRUE(s.submit(&a, Clock::now() + 10s, [] {}, [] {}));
  EXPECT_TRUE(s.submit(&a, Clock::now() + 10s, [] {}, [] {}));
  EXPECT_FALSE(s.submit(&a, Clock::now() + 10s, [] {}, [] {}));
  gate.open();
  EXPECT_TRUE(s.wait_idle(Clock::now() + 5s));
}

TEST(SchedulerTest, DeadlinesExpireQueuedAndStuckJobsOnce) {
  protocol::Scheduler s({1, 10});
  int a = 0;
  Gate gate;
  std::atomic<int> expired_running{0}, expired_queued{0}, queued_ran{0};
  s.submit(&a, Clock::now() + 300ms, [&] { gate.f.wait(); }, [&] { ++expired_running; });
  s.submit(&a, Clock::now() + 100ms, [&] { ++queued_ran; }, [&] { ++expired_queued; });  // waits behind it
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(expired_running, 1);
  EXPECT_EQ(expired_queued, 1);
  EXPECT_EQ(s.stats(&a).stuck, 1u);
  // The stuck job's thread is written off: a new job still runs.
  std::atomic<bool> ran{false};
  s.submit(&a, Clock::now() + 10s, [&] { ran = true; }, [] {});
  const auto t0 = Clock::now();
  while (!ran && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(ran);
  gate.open();
  EXPECT_TRUE(s.wait_idle(Clock::now() + 5s));
  EXPECT_EQ(queued_ran, 0);
  EXPECT_EQ(expired_running, 1);
  EXPECT_EQ(s.stats(&a).stuck, 0u);
}

TEST(SchedulerTest, TryEnterRespectsCapsAndQueue) {
  protocol::Scheduler s({2, 10});
  int a = 0, b = 0;
  s.set_cap(&a, 1);
  const auto later = Clock::now() + 10s;
  auto first = s.try_enter(&a, later, [] {});
  ASSERT_TRUE(first);
  EXPECT_FALSE(s.try_enter(&a, later, [] {}));  // the lane's cap
  auto other = s.try_enter(&b, later, [] {});
  ASSERT_TRUE(other);
  EXPECT_FALSE(s.try_enter(&b, later, [] {}));  // max_running over all lanes
  s.leave(other);
  // A job that waits for lane a's slot is not overtaken by a caller.
  std::atomic<bool> ran{false};
  s.submit(&a, later, [&] { ran = true; }, [] {});
  s.leave(first);
  const auto t0 = Clock::now();
  while (!ran && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(s.wait_idle(Clock::now() + 1s));
  auto again = s.try_enter(&a, later, [] {});
  EXPECT_TRUE(again);
  s.leave(again);
  EXPECT_TRUE(s.wait_idle(Clock::now() + 1s));
}

// Work a caller runs on its own thread has a deadline like a worker's job: past it, the
// watchdog calls `expired` once and the slot is free for others while the work goes on.
TEST(SchedulerTest, AnEnteredCallPastItsDeadlineExpiresAndFreesItsSlot) {
  protocol::Scheduler s({2, 10});
  int a = 0;
  s.set_cap(&a, 1);
  std::atomic<int> expired{0};
  auto entry = s.try_enter(&a, Clock::now() + 50ms, [&] { ++expired; });
  ASSERT_TRUE(entry);
  const auto t0 = Clock::now();
  while (expired == 0 && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(s.stats(&a).stuck, 1u);
  auto next = s.try_enter(&a, Clock::now() + 10s, [] {});  // the stuck call holds no slot
  ASSERT_TRUE(next);
  s.leave(next);
  s.leave(entry);  // it returned after all
  EXPECT_EQ(s.stats(&a).stuck, 0u);
  EXPECT_EQ(expired, 1);
  EXPECT_TRUE(s.wait_idle(Clock::now() + 1s));
}

// A detached job's work goes on after it returns (a call started on another process): its
// slot stays taken until leave(), and the slot it leaves goes to the next detached job of its
// lane on the leaving thread, with no worker woken for it.
TEST(SchedulerTest, ADetachedJobHoldsItsSlotUntilItLeavesAndHandsItOn) {
  protocol::Scheduler s({4, 10});
  int a = 0;
  s.set_cap(&a, 1);
  const auto later = Clock::now() + 10s;
  std::mutex m;
  std::vector<protocol::Scheduler::Entry> entries;
  std::vector<std::thread::id> ran_on;
  auto job = [&](const protocol::Scheduler::Entry& e) {
    std::lock_guard lock(m);
    entries.push_back(e);
    ran_on.push_back(std::this_thread::get_id());
  };
  ASSERT_TRUE(s.submit_detached(&a, later, job, [] {}));
  ASSERT_TRUE(s.submit_detached(&a, later, job, [] {}));
  const auto t0 = Clock::now();
  while (s.stats(&a).queued > 1 && Clock::now() - t0 < 2s) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);  // the first has returned; its slot is still taken
  {
    std::lock_guard lock(m);
    ASSERT_EQ(entries.size(), 1u);
  }
  EXPECT_EQ(s.stats(&a).running, 1u);
  EXPECT_EQ(s.stats(&a).queued, 1u);
  EXPECT_FALSE(s.try_enter(&a, later, [] {}));
  s.leave(entries[0]);  // runs the second here
  {
    std::lock_guard lock(m);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(ran_on[1], std::this_thread::get_id());
  }
  EXPECT_EQ(s.stats(&a).running, 1u);
  EXPECT_FALSE(s.wait_idle(Clock::now() + 20ms));
  s.leave(entries[1]);
  EXPECT_TRUE(s.wait_idle(Clock::now() + 1s));
}

TEST(SchedulerTest, StopExpiresWhatWaits) {
  std::atomic<int> expired{0};
  {
    protocol::Scheduler s({1, 10});
    int a = 0;
    Gate gate;
    s.submit(&a, Clock::now() + 10s, [&] { gate.f.wait(); }, [] {});
    std::this_thread::sleep_for(20ms);
    for (int i = 0; i < 3; ++i) s.submit(&a, Clock::now() + 10s, [] {}, [&] { ++expired; });
    std::thread opener([&] {
      std::this_thread::sleep_for(100ms);
      gate.open();
    });
    s.stop();
    opener.join();
    EXPECT_FALSE(s.submit(&a, Clock::now() + 10s, [] {}, [] {}));
  }
  EXPECT_EQ(expired, 3);
}

}  // namespace
}  // namespace mcph
