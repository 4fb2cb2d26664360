// `mcp-host plugin check`: the contract checks as functions, and the real binary against
// every bundled plugin (must pass) and every broken test plugin (must fail with its own
// message, and the checker must survive crashes and hangs).
#include <gtest/gtest.h>

#include "plugin_check/contract.hpp"
#include "plugins/instance.hpp"
#include "process.hpp"

namespace {

// The ABI this build speaks, as plugin check prints it.
const std::string kAbi = std::to_string(MCPH_ABI_MAJOR) + "." + std::to_string(MCPH_ABI_MINOR);

using mcph::plugin_check::check_descriptor;
using mcph::plugin_check::check_tools;
using mcph::plugin_check::DescriptorInfo;
using mcph::plugin_check::Finding;
using mcph::plugin_check::Findings;
using mcph::plugin_check::RawTool;
using mcph::testing::run_command;
using nlohmann::json;

std::string lib(const std::string& name) { return std::string(MCPH_PLUGIN_DIR) + "/lib" + name + ".so"; }

std::string messages(const Findings& findings) {
  std::string all;
  for (const auto& f : findings) all += std::string(mcph::plugin_check::level_name(f.level)) + ": " + f.message + "\n";
  return all;
}

RawTool good_tool(std::string name) {
  RawTool t;
  t.name = std::move(name);
  t.description = "does a thing";
  t.input_schema = R"({"type":"object","properties":{"a":{"type":"string"}},"required":["a"]})";
  t.output_schema = R"({"type":"object","properties":{"b":{"type":"number"}}})";
  t.annotations = R"({"title":"Thing","readOnlyHint":true,"openWorldHint":false})";
  t.has_handler = true;
  return t;
}

// ---- The checks as functions ------------------------------------------------------------

TEST(PluginContract, ToolNamesFollowMcp) {
  EXPECT_TRUE(mcph::plugins::valid_tool_name("get_item.v2-beta"));
  EXPECT_TRUE(mcph::plugins::valid_tool_name(std::string(128, 'a')));
  EXPECT_FALSE(mcph::plugins::valid_tool_name(std::string(129, 'a')));
  EXPECT_FALSE(mcph::plugins::valid_tool_name(""));
  EXPECT_FALSE(mcph::plugins::valid_tool_name("list files"));
  EXPECT_FALSE(mcph::plugins::valid_tool_name("ns/tool"));
  EXPECT_FALSE(mcph::plugins::valid_tool_name("caf\xc3\xa9"));
}

TEST(PluginContract, AGoodToolHasNoFindings) {
  EXPECT_EQ(messages(check_tools({good_tool("a"), good_tool("b")})), "");
  RawTool bare;  // no schemas at all: no arguments, no structuredContent
  bare.name = "ping";
  bare.description = "pong";
  bare.has_handler = true;
  EXPECT_EQ(messages(check_tools({bare})), "");
}

TEST(PluginContract, EveryBrokenRuleIsItsOwnFinding) {
  RawTool t = good_tool("x");
  t.input_schema = R"({"type":"object","properties":{"n":{"minimum":"zero"}}})";
  t.output_schema = R"([1,2])";
  t.annotations = R"({"readOnlyHint":"yes","title":7,"colour":"red"})";
  t.has_handler = false;
  t.description.clear();
  const std::string m = messages(check_tools({t, good_tool("x"), good_tool("bad name")}));
  EXPECT_NE(m.find("error: tool 'x': input_schema is not a valid JSON Schema: invalid schema at #/properties/n: minimum must be a number"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'x': output_schema must be a JSON Schema object, got array"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'x': annotations: readOnlyHint must be true or false"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'x': annotations: title must be a string"), std::string::npos) << m;
  EXPECT_NE(m.find("warning: tool 'x': annotations: unknown field 'colour'"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'x' has no handler"), std::string::npos) << m;
  EXPECT_NE(m.find("warning: tool 'x' has no description"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'x' is registered twice"), std::string::npos) << m;
  EXPECT_NE(m.find("error: tool 'bad name': invalid name"), std::string::npos) << m;
}

TEST(PluginContract, SchemasMustDescribeObjectsAndParse) {
  RawTool t = good_tool("x");
  t.input_schema = R"({"type":"string"})";
  t.output_schema = R"({"type":"object",)";
  t.annotations = "[]";
  const std::string m = messages(check_tools({t}));
  EXPECT_NE(m.find("input_schema must have \"type\": \"object\""), std::string::npos) << m;
  EXPECT_NE(m.find("output_schema is not valid JSON"), std::string::npos) << m;
  EXPECT_NE(m.find("annotations must be a JSON object"), std::string::npos) << m;
}

TEST(PluginContract, RegistrationAfterCreateIsAnError) {
  RawTool t = good_tool("late");
  t.outside_create = true;
  EXPECT_NE(messages(check_tools({t})).find("registered after create returned"), std::string::npos);
}

TEST(PluginContract, DescriptorFieldsAndMinor) {
  EXPECT_EQ(messages(check_descriptor({"p", "1.0", "does p", 1, 0}, 1, 0)), "");
  const std::string m = messages(check_descriptor({"", "", "", 1, 5}, 1, 2));
  EXPECT_NE(m.find("error: the descriptor has no name"), std::string::npos) << m;
  EXPECT_NE(m.find("error: the descriptor has no version"), std::string::npos) << m;
  EXPECT_NE(m.find("warning: the descriptor has no description"), std::string::npos) << m;
  EXPECT_NE(m.find("built for ABI 1.5, newer than this host's 1.2"), std::string::npos) << m;
}

// ---- The command, through the real binary -----------------------------------------------

std::pair<int, std::string> check(std::vector<std::string> args) {
  args.insert(args.begin(), {MCPH_BINARY, "plugin", "check"});
  return run_command(args);
}

TEST(PluginCheck, PassesEveryBundledPluginAndTheTemplate) {
  auto [code, out] = check({lib("example-echo"), lib("example-counter"), lib("codesphere"), lib("codegen"),
                            MCPH_TEMPLATE_PLUGIN});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("libexample-echo.so: ok: example-echo 1.0.0 (ABI " + kAbi + "), 2 tools, 0 warnings"), std::string::npos) << out;
  EXPECT_NE(out.find("libexample-counter.so: ok: example-counter"), std::string::npos) << out;
  EXPECT_NE(out.find("libcodesphere.so: ok: codesphere"), std::string::npos) << out;
  EXPECT_NE(out.find("libcodegen.so: ok: codegen"), std::string::npos) << out;
  EXPECT_NE(out.find("libmy_plugin.so: ok: my_plugin"), std::string::npos) << out;
  EXPECT_EQ(out.find("error:"), std::string::npos) << out;
}

TEST(PluginCheck, FindsABundledPluginByName) {
  auto [code, out] = check({"example-echo"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("example-echo: ok: example-echo"), std::string::npos) << out;
}

struct Broken {
  std::string library;
  std::vector<std::string> expected;  // each must appear in the output
};

void PrintTo(const Broken& b, std::ostream* os) { *os << b.library; }

class PluginCheckRejects : public ::testing::TestWithParam<Broken> {};

TEST_P(PluginCheckRejects, WithItsOwnMessageAndSurvives) {
  const Broken& b = GetParam();
  const std::string path = b.library.find('/') == std::string::npos ? lib(b.library) : b.library;
  const auto t0 = std::chrono::steady_clock::now();
  auto [code, out] = check({path, "--timeout", "1"});
  EXPECT_EQ(code, 1) << out;  // a finding, not a crash of the checker (which would be a signal or -1)
  for (const auto& e : b.expected) EXPECT_NE(out.find(e), std::string::npos) << "missing: " << e << "\n" << out;
  EXPECT_NE(out.find(path + ": FAILED: "), std::string::npos) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

INSTANTIATE_TEST_SUITE_P(
    BrokenPlugins, PluginCheckRejects,
    ::testing::Values(
        Broken{"test-no-entry", {"error: ", "exports no 'mcph_plugin_entry' function"}},
        Broken{"test-bad-major", {"was built for plugin ABI 2.3, but this host speaks ABI 1."}},
        Broken{"test-duplicate-tool", {"error: tool 'twice' is registered twice"}},
        Broken{"test-bad-tool-name", {"error: tool 'list files': invalid name (MCP tool names are 1-128 of A-Z a-z 0-9 _ . -)"}},
        Broken{"test-bad-schema",
               {"error: tool 'count': input_schema is not a valid JSON Schema: invalid schema at #/properties/n: minimum must be a number",
                "error: tool 'report': output_schema is not valid JSON",
                "error: tool 'report': annotations: readOnlyHint must be true or false"}},
        Broken{"test-bad-resource",
               {"error: resource 'docs://{+path}': uri_template '{+path}' is not a simple {name} expression",
                "error: resource 'notes://today': has no read handler",
                "error: prompt 'review': arguments is not a JSON array"}},
        Broken{"test-crash-create", {"error: crashed (", "while creating an instance with empty settings"}},
        Broken{"test-hang-create", {"error: hung: no progress for 1 s while creating an instance with empty settings (the check killed it)"}},
        Broken{"test-shared-state",
               {"error: two instances side by side registered different tools than one alone",
                "error: two instances got the same instance pointer: they share state"}},
        Broken{"/nonexistent/libnothing.so", {"error: plugin library '/nonexistent/libnothing.so' not found"}}),
    [](const ::testing::TestParamInfo<Broken>& info) {
      std::string n = info.param.library.find('/') == std::string::npos ? info.param.library : "missing-file";
      for (char& c : n) {
        if (c == '-') c = '_';
      }
      return n;
    });

TEST(PluginCheck, ACreateThatRefusesWithAReasonIsANote) {
  auto [code, out] = check({lib("test-services"), "--settings", R"({"fail_create":true})"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("note: create with the given settings refused (INVALID_ARGUMENT): settings.fail_create is set"),
            std::string::npos)
      << out;
}

TEST(PluginCheck, OneBadLibraryFailsTheRunButTheOthersAreStillChecked) {
  auto [code, out] = check({lib("test-crash-create"), lib("example-echo")});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("libexample-echo.so: ok: "), std::string::npos) << out;
}

TEST(PluginCheck, JsonForMachines) {
  mcph::testing::Process p({MCPH_BINARY, "plugin", "check", "--json", lib("example-echo"), lib("test-bad-tool-name")});
  p.close_stdin();
  std::string out;
  while (auto line = p.read_line(std::chrono::seconds(30))) out += *line + "\n";
  EXPECT_EQ(p.wait(std::chrono::seconds(30)), 1);
  json doc = json::parse(out);
  EXPECT_EQ(doc["ok"], false);
  ASSERT_EQ(doc["libraries"].size(), 2u);
  EXPECT_EQ(doc["libraries"][0]["ok"], true);
  EXPECT_EQ(doc["libraries"][0]["plugin"]["tools"], json({"echo", "add"}));
  EXPECT_EQ(doc["libraries"][0]["plugin"]["abi"], kAbi);
  const json& bad = doc["libraries"][1];
  EXPECT_EQ(bad["ok"], false);
  ASSERT_FALSE(bad["findings"].empty());
  EXPECT_EQ(bad["findings"][0]["level"], "error");
  EXPECT_EQ(bad["findings"][0]["check"], "tools");
}

TEST(PluginCheck, BadOptionsAreUsageErrors) {
  auto [code, out] = check({lib("example-echo"), "--settings", "[1]"});
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--settings must be a JSON object"), std::string::npos) << out;
  std::tie(code, out) = check({lib("example-echo"), "--credential", "novalue"});
  EXPECT_EQ(code, 2) << out;
  std::tie(code, out) = check({});
  EXPECT_NE(code, 0) << out;
}

}  // namespace
