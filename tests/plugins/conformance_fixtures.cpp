// conformance-fixtures: the tools, resources and prompts the official MCP conformance
// suite (@modelcontextprotocol/conformance) calls by name, with the exact texts its
// scenarios check (../shared/reference/mcp-spec.md §7.3). A test plugin: built with the
// tests, never installed. Also the fullest example of the C++ SDK in the tree: resources,
// templates, prompts, completion, and input from the client in both protocol eras.
#include <atomic>
#include <cstdio>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mcp_plugin/sdk.hpp"

namespace {

using mcph::sdk::Call;
using mcph::sdk::json;
using mcph::sdk::PromptSpec;
using mcph::sdk::ResourceSpec;
using mcph::sdk::ToolSpec;

// A 1x1 PNG and a short silent WAV, base64.
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
constexpr const char* kWav = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

json content(json block) { return json{{"content", json::array({std::move(block)})}}; }
json text_block(const std::string& t) { return json{{"type", "text"}, {"text", t}}; }
json image_block() { return json{{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}}; }
json object_schema(json properties, json required = json::array()) {
  return json{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}
json string_arg(const std::string& name) { return object_schema({{name, {{"type", "string"}}}}, {name}); }
void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

class Fixtures : public mcph::sdk::Plugin {
 public:
  Fixtures(mcph::sdk::Host& host, const json& settings) : Plugin(host) {
    // A second instance whose lists follow the configuration (see list_triggers()).
    if (settings.contains("generation")) {
      generated(settings["generation"].get<std::string>());
      return;
    }
    if (settings.contains("list_file")) list_triggers(settings["list_file"].get<std::string>());
    content_tools();
    notification_tools();
    input_tools();
    diagnostic_tools();
    task_tools();
    resources();
    prompts();
  }
  ~Fixtures() override {
    std::lock_guard lock(threads_mutex_);
    for (auto& t : threads_) t.join();
  }

 private:
  void content_tools() {
    tool(ToolSpec("test_simple_text").description("Returns a simple text response"),
         [](Call&, const json&) { return content(text_block("This is a simple text response for testing.")); });
    tool(ToolSpec("test_image_content").description("Returns a PNG image"),
         [](Call&, const json&) { return content(image_block()); });
    tool(ToolSpec("test_audio_content").description("Returns a WAV sound"), [](Call&, const json&) {
      return content({{"type", "audio"}, {"data", kWav}, {"mimeType", "audio/wav"}});
    });
    tool(ToolSpec("test_embedded_resource").description("Returns an embedded resource"), [](Call&, const json&) {
      return content({{"type", "resource"},
                      {"resource", {{"uri", "test://embedded-resource"}, {"mimeType", "text/plain"},
                                    {"text", "This is an embedded resource content."}}}});
    });
    tool(ToolSpec("test_multiple_content_types").description("Returns text, an image and a resource"), [](Call&, const json&) {
      json r = content(text_block("Multiple content types test:"));
      r["content"].push_back(image_block());
      r["content"].push_back({{"type", "resource"},
                              {"resource", {{"uri", "test://mixed-content-resource"}, {"mimeType", "application/json"},
                                            {"text", R"({"test":"data","value":123})"}}}});
      return r;
    });
    tool(ToolSpec("test_error_handling").description("Always fails"), [](Call&, const json&) -> json {
      throw mcph::sdk::ToolError("This tool intentionally returns an error for testing");
    });
    // JSON Schema 2020-12 keywords must reach the client untouched (SEP-1613, SEP-2106).
    tool(ToolSpec("json_schema_2020_12_tool").description("Tool with JSON Schema 2020-12 features").input(json::parse(R"({
           "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
           "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                                 "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
           "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                          "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                          "phone": {"type": "string"}, "email": {"type": "string"}},
           "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
           "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
           "then": {"required": ["phone"]}, "else": {"required": ["email"]},
           "additionalProperties": false})")),
         [](Call&, const json& args) { return content(text_block("Received: " + args.dump())); });
  }

  void notification_tools() {
    tool(ToolSpec("test_tool_with_progress").description("Reports progress 0, 50, 100 of 100"), [](Call& call, const json&) {
      for (int p : {0, 50, 100}) {
        call.progress(p, 100);
        if (p < 100) sleep_ms(50);
      }
      return content(text_block("Progress test completed"));
    });
    tool(ToolSpec("test_tool_with_logging").description("Sends three info log messages"), [](Call& call, const json&) {
      call.log(MCPH_LOG_INFO, "Tool execution started");
      sleep_ms(50);
      call.log(MCPH_LOG_INFO, "Tool processing data");
      sleep_ms(50);
      call.log(MCPH_LOG_INFO, "Tool execution completed");
      return content(text_block("Logging test completed"));
    });
  }

  void input_tools() {
    tool(ToolSpec("test_sampling").description("Asks the client's model").input(string_arg("prompt")), [](Call& call, const json& args) {
      auto answer = call.input("sampling", mcph::sdk::sampling(args["prompt"], 100));
      if (!answer) call.await_input();
      return content(text_block("LLM response: " + answer->value("content", json::object()).value("text", "")));
    });
    tool(ToolSpec("test_elicitation").description("Asks the user").input(string_arg("message")), [](Call& call, const json& args) {
      auto answer = call.input("user", mcph::sdk::elicitation(args["message"], object_schema(
          {{"username", {{"type", "string"}, {"description", "User's response"}}},
           {"email", {{"type", "string"}, {"description", "User's email address"}}}}, {"username", "email"})));
      if (!answer) call.await_input();
      return content(text_block("User response: " + answer->dump()));
    });
    elicit_tool("test_elicitation_sep1034_defaults", "Asks with default values (SEP-1034)", object_schema({
        {"name", {{"type", "string"}, {"default", "John Doe"}}},
        {"age", {{"type", "integer"}, {"default", 30}}},
        {"score", {{"type", "number"}, {"default", 95.5}}},
        {"status", {{"type", "string"}, {"enum", {"active", "inactive", "pending"}}, {"default", "active"}}},
        {"verified", {{"type", "boolean"}, {"default", true}}}}));
    elicit_tool("test_elicitation_sep1330_enums", "Asks with every enum form (SEP-1330)", object_schema({
        {"untitledSingle", {{"type", "string"}, {"enum", {"option1", "option2", "option3"}}}},
        {"titledSingle", {{"type", "string"}, {"oneOf", {{{"const", "value1"}, {"title", "First Option"}},
                                                         {{"const", "value2"}, {"title", "Second Option"}},
                                                         {{"const", "value3"}, {"title", "Third Option"}}}}}},
        {"legacyEnum", {{"type", "string"}, {"enum", {"opt1", "opt2", "opt3"}},
                        {"enumNames", {"Option One", "Option Two", "Option Three"}}}},
        {"untitledMulti", {{"type", "array"}, {"items", {{"type", "string"}, {"enum", {"option1", "option2", "option3"}}}}}},
        {"titledMulti", {{"type", "array"}, {"items", {{"anyOf", {{{"const", "value1"}, {"title", "First Choice"}},
                                                                   {{"const", "value2"}, {"title", "Second Choice"}},
                                                                   {{"const", "value3"}, {"title", "Third Choice"}}}}}}}}}));

    // 2026-07-28 input_required family (SEP-2322); the keys are the ones the suite expects.
    const json name_schema = object_schema({{"name", {{"type", "string"}}}}, {"name"});
    const json ok_schema = object_schema({{"ok", {{"type", "boolean"}}}}, {"ok"});
    tool(ToolSpec("test_input_required_result_elicitation").description("Asks for the user's name (input_required)"), [=](Call& call, const json&) {
      auto a = call.input("user_name", mcph::sdk::elicitation("What is your name?", name_schema));
      if (!a) call.await_input();
      return content(text_block("Hello, " + a->value("content", json::object()).value("name", std::string("stranger")) + "!"));
    });
    tool(ToolSpec("test_input_required_result_sampling").description("Asks the client's model a question (input_required)"), [](Call& call, const json&) {
      auto a = call.input("capital_question", mcph::sdk::sampling("What is the capital of France?", 100));
      if (!a) call.await_input();
      return content(text_block("The model said: " + a->value("content", json::object()).value("text", "")));
    });
    tool(ToolSpec("test_input_required_result_list_roots").description("Asks for the client's roots (input_required)"), [](Call& call, const json&) {
      auto a = call.input("client_roots", mcph::sdk::roots());
      if (!a) call.await_input();
      return content(text_block("Client roots: " + a->value("roots", json::array()).dump()));
    });
    tool(ToolSpec("test_input_required_result_request_state").description("Keeps state across the input round"), [=](Call& call, const json&) {
      auto a = call.input("confirm", mcph::sdk::elicitation("Please confirm", ok_schema));
      if (!a) {
        call.set_state("round-1");
        call.await_input();
      }
      return content(text_block(call.state() == "round-1" ? "state-ok: confirmed" : "state missing"));
    });
    tool(ToolSpec("test_input_required_result_tampered_state").description("Refuses a tampered requestState"), [=](Call& call, const json&) {
      auto a = call.input("confirm", mcph::sdk::elicitation("Please confirm", ok_schema));
      if (!a) {
        call.set_state("round-1");
        call.await_input();
      }
      return content(text_block("state-ok"));
    });
    tool(ToolSpec("test_input_required_result_multiple_inputs").description("Asks three things at once"), [=](Call& call, const json&) {
      auto name = call.input("user_name", mcph::sdk::elicitation("What is your name?", name_schema));
      auto greeting = call.input("greeting", mcph::sdk::sampling("Generate a greeting", 50));
      auto roots = call.input("client_roots", mcph::sdk::roots());
      if (!name || !greeting || !roots) {
        call.set_state("asked-all");
        call.await_input();
      }
      return content(text_block("Got a name, a greeting and " + std::to_string(roots->value("roots", json::array()).size()) + " roots"));
    });
    tool(ToolSpec("test_input_required_result_multi_round").description("Asks twice, one question per round"), [=](Call& call, const json&) {
      // Round 1 asks step1; round 2 (step1 answered) asks step2; round 3 finishes. The
      // state says which question is out, so each round's requestState differs.
      const json step2 = mcph::sdk::elicitation("Step 2: What is your favorite color?",
                                                object_schema({{"color", {{"type", "string"}}}}, {"color"}));
      if (call.state() != "step2-asked") {
        const bool step1 = call.input("step1", mcph::sdk::elicitation("Step 1: What is your name?", name_schema)).has_value();
        if (step1) call.input("step2", step2);
        call.set_state(step1 ? "step2-asked" : "step1-asked");
        call.await_input();
      }
      auto color = call.input("step2", step2);
      if (!color) call.await_input();
      return content(text_block("Your favorite color is " + color->value("content", json::object()).value("color", "?")));
    });
    tool(ToolSpec("test_input_required_result_capabilities").description("Asks only through declared capabilities"), [](Call& call, const json&) {
      // Ask only through what the client declared.
      const json caps = call.client_capabilities();
      std::optional<json> a;
      if (caps.contains("elicitation")) {
        a = call.input("answer", mcph::sdk::elicitation("Pick one", object_schema({{"choice", {{"type", "string"}}}})));
      } else if (caps.contains("sampling")) {
        a = call.input("answer", mcph::sdk::sampling("Pick one", 20));
      } else {
        return content(text_block("The client offers no way to ask"));
      }
      if (!a) call.await_input();
      return content(text_block("Answered: " + a->dump()));
    });
  }

  // server-stateless's list-change probes: the host's lists change only when its
  // configuration does, so these tools change it. They count up a file the YAML names, as
  // ${file:generation} in another instance's settings; reload.watch sees the file change
  // and reloads, and that instance comes back with another tool and prompt.
  void list_triggers(const std::string& file) {
    for (const char* name : {"test_trigger_tool_change", "test_trigger_prompt_change"}) {
      tool(ToolSpec(name).description("Changes the tool and prompt lists (the host reloads its configuration)"), [file](Call&, const json&) {
        int n = 0;
        if (std::FILE* in = std::fopen(file.c_str(), "r")) {
          if (std::fscanf(in, "%d", &n) != 1) n = 0;
          std::fclose(in);
        }
        const std::string next = file + ".next";
        std::FILE* out = std::fopen(next.c_str(), "w");
        if (out == nullptr) throw mcph::sdk::ToolError("cannot write " + next);
        std::fprintf(out, "%d\n", n + 1);
        std::fclose(out);
        std::rename(next.c_str(), file.c_str());
        return content(text_block("the lists change in a moment (generation " + std::to_string(n + 1) + ")"));
      });
    }
  }
  void generated(const std::string& generation) {
    tool(ToolSpec("generated_tool_" + generation).description("Exists in one generation of the configuration"),
         [](Call&, const json&) { return content(text_block("generated")); });
    prompt(PromptSpec("generated_prompt_" + generation).description("Exists in one generation of the configuration"),
           [](Call&, const json&) { return mcph::sdk::prompt_text("generated"); });
  }

  void diagnostic_tools() {
    // server-stateless probes (SEP-2575).
    tool(ToolSpec("test_missing_capability").description("Needs sampling, whether declared or not"), [](Call& call, const json&) {
      auto a = call.input("sample", mcph::sdk::sampling("Say something", 20));
      if (!a) call.await_input();
      return content(text_block("sampled"));
    });
    tool(ToolSpec("test_streaming_elicitation").description("Reports progress, then asks the user"), [](Call& call, const json&) {
      call.progress(1, 2, "about to ask");
      auto a = call.input("confirm", mcph::sdk::elicitation("Continue?", object_schema({{"ok", {{"type", "boolean"}}}})));
      if (!a) call.await_input();
      return content(text_block("continued"));
    });
    tool(ToolSpec("test_logging_tool").description("Logs at every level"), [](Call& call, const json&) {
      for (mcph_log_level l = MCPH_LOG_DEBUG; l <= MCPH_LOG_EMERGENCY; ++l) call.log(l, "log line " + std::to_string(l));
      return content(text_block("logged"));
    });
    tool(ToolSpec("test_touch_watched_resource").description("Reports test://watched-resource as updated"), [this](Call&, const json&) {
      resource_updated("test://watched-resource");
      return content(text_block("touched"));
    });
  }

  void resources() {
    resource(ResourceSpec::fixed("test://static-text", "Static text").description("A text resource").mime_type("text/plain"),
             [](Call&, const std::string&, const json&) {
               return mcph::sdk::resource_text("This is the content of the static text resource.");
             });
    resource(ResourceSpec::fixed("test://static-binary", "Static binary").description("A PNG image").mime_type("image/png"),
             [](Call&, const std::string&, const json&) { return json{{"contents", json::array({json{{"blob", kPng}}})}}; });
    resource(ResourceSpec::fixed("test://watched-resource", "Watched").description("Subscribe to it").mime_type("text/plain"),
             [](Call&, const std::string&, const json&) { return mcph::sdk::resource_text("watched"); });
    resource(ResourceSpec::templated("test://template/{id}/data", "Template data").description("Data by id").mime_type("application/json"),
             [](Call&, const std::string&, const json& vars) {
               const std::string id = vars["id"];
               if (id == "missing") throw mcph::sdk::ToolError("no data for id " + id, MCPH_ERR_NOT_FOUND);
               return mcph::sdk::resource_text(json{{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}}.dump());
             },
             [](Call&, const std::string&, const std::string& value, const json&) {
               std::vector<std::string> out;
               for (const char* id : {"123", "124", "200"}) {
                 if (std::string(id).rfind(value, 0) == 0) out.emplace_back(id);
               }
               return out;
             });
  }

  void prompts() {
    prompt(PromptSpec("test_simple_prompt").description("A simple prompt"),
           [](Call&, const json&) { return mcph::sdk::prompt_text("This is a simple prompt for testing."); });
    prompt(PromptSpec("test_prompt_with_arguments").description("A prompt with arguments")
               .argument("arg1", "First argument", true).argument("arg2", "Second argument", true),
           [](Call&, const json& args) {
             return mcph::sdk::prompt_text("Prompt with arguments: arg1='" + args.value("arg1", "") + "', arg2='" +
                                           args.value("arg2", "") + "'");
           },
           [](Call&, const std::string& argument, const std::string& value, const json&) {
             std::vector<std::string> out;
             for (const char* v : {"paris", "park", "party", "hello"}) {
               if (argument == "arg1" && std::string(v).rfind(value, 0) == 0) out.emplace_back(v);
             }
             return out;
           });
    prompt(PromptSpec("test_prompt_with_embedded_resource").description("A prompt embedding a resource")
               .argument("resourceUri", "URI of the resource to embed", true),
           [](Call&, const json& args) {
             json embedded{{"type", "resource"}, {"resource", {{"uri", args.value("resourceUri", "")}, {"mimeType", "text/plain"},
                                                               {"text", "Embedded resource content for testing."}}}};
             return json{{"messages", {{{"role", "user"}, {"content", embedded}},
                                       {{"role", "user"}, {"content", text_block("Please process the embedded resource above.")}}}}};
           });
    prompt(PromptSpec("test_prompt_with_image").description("A prompt with an image"), [](Call&, const json&) {
      return json{{"messages", {{{"role", "user"}, {"content", image_block()}},
                                {{"role", "user"}, {"content", text_block("Please analyze the image above.")}}}}};
    });
    prompt(PromptSpec("test_input_required_result_prompt").description("Asks the user for context first"), [](Call& call, const json&) {
      auto a = call.input("user_context", mcph::sdk::elicitation("What context should the prompt use?",
                                                                 object_schema({{"context", {{"type", "string"}}}}, {"context"})));
      if (!a) call.await_input();
      return mcph::sdk::prompt_text("Context: " + a->value("content", json::object()).value("context", ""));
    });
  }

  // The tasks extension's scenarios (SEP-2663), with the names and behaviour they expect.
  void task_tools() {
    tool(ToolSpec("greet").description("Says hello (never a task)").input(string_arg("name")), [](Call&, const json& args) {
      return content(text_block("Hello, " + args["name"].get<std::string>() + "!"));
    });
    const json compute = object_schema({{"seconds", {{"type", "number"}, {"minimum", 0}}}, {"label", {{"type", "string"}}}});
    tool(ToolSpec("slow_compute").description("Sleeps `seconds`, then answers (a task when the client takes one)")
             .input(compute).task_support(MCPH_TASK_SUPPORT_OPTIONAL),
         [](Call& call, const json& args) {
           const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(1000 * args.value("seconds", 0.0)));
           while (std::chrono::steady_clock::now() < until) {
             call.check_cancelled();
             sleep_ms(20);
           }
           return content(text_block("computed " + args.value("label", std::string("result"))));
         });
    tool(ToolSpec("failing_job").description("Fails as a tool after a second (tasks only)").task_support(MCPH_TASK_SUPPORT_REQUIRED),
         [](Call&, const json&) -> json {
           sleep_ms(1000);
           throw mcph::sdk::ToolError("the job failed, as it always does");
         });
    tool(ToolSpec("protocol_error_job").description("Breaks (an internal error) after half a second").task_support(MCPH_TASK_SUPPORT_OPTIONAL),
         [](Call&, const json&) -> json {
           sleep_ms(500);
           throw std::runtime_error("protocol_error_job broke on purpose");
         });
    const json confirm = object_schema({{"confirm", {{"type", "boolean"}}}}, {"confirm"});
    tool(ToolSpec("confirm_delete").description("Asks before deleting a file").input(string_arg("filename"))
             .task_support(MCPH_TASK_SUPPORT_OPTIONAL),
         [confirm](Call& call, const json& args) {
           const std::string file = args["filename"];
           auto a = call.input("confirm", mcph::sdk::elicitation("Delete " + file + "?", confirm));
           if (!a) call.await_input();
           const bool yes = a->value("action", "") == "accept" && a->value("content", json::object()).value("confirm", false);
           return content(text_block(yes ? "Deleted " + file : "Kept " + file));
         });
    const json named = object_schema({{"name", {{"type", "string"}}}, {"confirm", {{"type", "boolean"}}}}, {"name"});
    tool(ToolSpec("multi_input").description("Asks two things at once").task_support(MCPH_TASK_SUPPORT_OPTIONAL),
         [named](Call& call, const json&) {
           auto first = call.input("first", mcph::sdk::elicitation("First name?", named));
           auto second = call.input("second", mcph::sdk::elicitation("Second name?", named));
           if (!first || !second) call.await_input();
           return content(text_block("Got " + first->value("content", json::object()).value("name", "") + " and " +
                                     second->value("content", json::object()).value("name", "")));
         });
    // Asks in the call (MRTR), then continues as a task the plugin finishes from its own thread.
    tool(ToolSpec("test_tool_with_task").description("Asks for a name, then greets it from a task"), [this, named](Call& call, const json&) -> json {
      auto a = call.input("user_name", mcph::sdk::elicitation("What is your name?", named));
      if (!a) call.await_input();
      const std::string name = a->value("content", json::object()).value("name", std::string("stranger"));
      if (!call.can_hand_over()) return content(text_block("Hello, " + name + "!"));
      const std::string handle = "greeting-" + std::to_string(++handles_);
      std::lock_guard lock(threads_mutex_);
      threads_.emplace_back([this, handle, name] {
        // The host records the task once the handler returned: until then the handle is unknown.
        const json done{{"status", "completed"}, {"result", content(text_block("Hello, " + name + "!"))}};
        for (int i = 0; i < 100 && host().task_update(handle, done) == MCPH_ERR_NOT_FOUND; ++i) sleep_ms(20);
      });
      call.hand_over(handle);
    });
  }

  void elicit_tool(const std::string& name, const std::string& description, json schema) {
    tool(ToolSpec(name).description(description), [schema](Call& call, const json&) {
      auto a = call.input("form", mcph::sdk::elicitation("Please review and update the form fields", schema));
      if (!a) call.await_input();
      return content(text_block("Elicitation completed: action=" + a->value("action", "") + ", content=" +
                                a->value("content", json::object()).dump()));
    });
  }

  std::atomic<int> handles_{0};
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;  // guarded by threads_mutex_; joined at destroy
};

}  // namespace

MCPH_SDK_PLUGIN(Fixtures, "conformance-fixtures", "1.0.0", "The fixtures of the official MCP conformance suite")
