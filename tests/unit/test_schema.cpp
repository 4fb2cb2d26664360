// Tests for protocol/schema: the official JSON-Schema-Test-Suite (draft-07 keyword files) for
// conformance, then the host's own promises: message wording and locations, compile errors,
// the $ref recursion guard and code-point string lengths.

#include "protocol/schema.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <utility>

#ifndef JSON_SCHEMA_SUITE_DIR
#define JSON_SCHEMA_SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"
#endif

namespace mcph::protocol {
namespace {

using json = nlohmann::json;

std::shared_ptr<const Schema> compile_ok(const json& schema) {
  auto compiled = Schema::compile(schema);
  if (!compiled.ok()) {
    ADD_FAILURE() << "compile failed: " << compiled.error();
    return nullptr;
  }
  return *compiled;
}

// Validation message of `value` against `schema`, or "<compile failed>".
std::string validate(const json& schema, const json& value) {
  const auto compiled = compile_ok(schema);
  return compiled ? compiled->validate(value) : "<compile failed>";
}

// {key: {key: ... inner}} with `depth` levels, built without copying the growing value.
json nested(const std::string& key, json inner, int depth) {
  for (int i = 0; i < depth; ++i) {
    json outer = json::object();
    outer[key] = std::move(inner);
    inner = std::move(outer);
  }
  return inner;
}

std::string compile_error(const json& schema) {
  const auto compiled = Schema::compile(schema);
  return compiled.ok() ? "<compiled>" : compiled.error();
}

// ---------------------------------------------------------------------------------------------
// JSON-Schema-Test-Suite, draft-07 keyword files.

// definitions.json is left out entirely: both of its groups are {"$ref":
// "http://json-schema.org/draft-07/schema#"}, a remote ref to the meta-schema.
// dependencies.json, default.json and refRemote.json cover keywords/features the validator does
// not claim (draft-07 "dependencies", annotations, remote refs).
const char* const kSuiteFiles[] = {
    "type",          "enum",          "const",          "minimum",
    "maximum",       "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength",     "maxLength",     "pattern",        "properties",
    "required",      "additionalProperties", "patternProperties", "propertyNames",
    "minProperties", "maxProperties", "items",          "additionalItems",
    "minItems",      "maxItems",      "uniqueItems",    "contains",
    "allOf",         "anyOf",         "oneOf",          "not",
    "if-then-else",  "boolean_schema", "ref",
};

// Whole test groups that need features outside the validator's scope. Every entry must match a
// group, and its schema must be rejected by compile() rather than silently misvalidated.
struct Exclusion {
  const char* file;
  const char* group;
  const char* reason;
};
const Exclusion kExclusions[] = {
    {"ref", "remote ref, containing refs itself",
     "remote $ref to the draft-07 meta-schema; no network $ref is ever fetched"},
    {"ref", "Recursive references between schemas",
     "$id changes the base URI and refs are relative to it; only '#...' refs are supported"},
};

// Cases run when every file above is present; the test fails if fewer ran, so it cannot pass
// by silently skipping files or groups.
constexpr int kExpectedSuiteCases = 374;
constexpr int kExpectedExcludedCases = 4;

const Exclusion* find_exclusion(const std::string& file, const std::string& group) {
  for (const auto& e : kExclusions) {
    if (file == e.file && group == e.group) return &e;
  }
  return nullptr;
}

TEST(SchemaSuiteTest, Draft7KeywordFilesPass) {
  int ran = 0;
  int excluded = 0;
  std::set<const Exclusion*> used;
  for (const char* file : kSuiteFiles) {
    const std::string path = std::string(JSON_SCHEMA_SUITE_DIR) + "/" + file + ".json";
    std::ifstream in(path);
    ASSERT_TRUE(in) << "cannot open " << path;
    const json groups = json::parse(in);
    for (const auto& group : groups) {
      const std::string group_name = group.at("description").get<std::string>();
      SCOPED_TRACE(std::string(file) + ".json: " + group_name);
      const auto compiled = Schema::compile(group.at("schema"));
      if (const Exclusion* exclusion = find_exclusion(file, group_name)) {
        used.insert(exclusion);
        excluded += static_cast<int>(group.at("tests").size());
        EXPECT_FALSE(compiled.ok()) << "excluded (" << exclusion->reason << ") but compiles";
        continue;
      }
      if (!compiled.ok()) {
        ADD_FAILURE() << "compile failed: " << compiled.error();
        continue;
      }
      for (const auto& test : group.at("tests")) {
        SCOPED_TRACE(test.at("description").get<std::string>());
        const std::string message = (*compiled)->validate(test.at("data"));
        EXPECT_EQ(message.empty(), test.at("valid").get<bool>()) << "message: " << message;
        ++ran;
      }
    }
  }
  EXPECT_GE(ran, kExpectedSuiteCases);
  EXPECT_EQ(excluded, kExpectedExcludedCases);
  EXPECT_EQ(used.size(), std::size(kExclusions)) << "an exclusion no longer matches any group";
}

// ---------------------------------------------------------------------------------------------
// A typical tool input schema.

const json kToolSchema = json::parse(R"({
  "type": "object",
  "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
  "required": ["a", "b"],
  "additionalProperties": false
})");

TEST(SchemaToolTest, AcceptsConformingArguments) {
  EXPECT_EQ(validate(kToolSchema, {{"a", 1}, {"b", 2.5}}), "");
}

TEST(SchemaToolTest, NamesMissingRequiredProperty) {
  EXPECT_EQ(validate(kToolSchema, {{"a", 1}}), "(root): missing required property \"b\"");
}

TEST(SchemaToolTest, NamesWrongTypedProperty) {
  EXPECT_EQ(validate(kToolSchema, {{"a", "1"}, {"b", 2}}), "/a: expected number, got string");
}

TEST(SchemaToolTest, NamesUnexpectedProperty) {
  EXPECT_EQ(validate(kToolSchema, {{"a", 1}, {"b", 2}, {"foo", 3}}),
            "(root): unexpected property \"foo\"");
}

TEST(SchemaToolTest, RejectsNonObjectArguments) {
  EXPECT_EQ(validate(kToolSchema, json::array()), "(root): expected object, got array");
}

TEST(SchemaToolTest, CompiledSchemaIsReusable) {
  const auto schema = compile_ok(kToolSchema);
  ASSERT_TRUE(schema);
  EXPECT_EQ(schema->validate({{"a", 1}}), "(root): missing required property \"b\"");
  EXPECT_EQ(schema->validate({{"a", 1}, {"b", 2}}), "");
}

// ---------------------------------------------------------------------------------------------
// Message locations and wording.

TEST(SchemaMessageTest, NestedPathUsesJsonPointerEscaping) {
  const json schema = json::parse(R"({
    "properties": {"list": {"items": {"properties": {"x/y~z": {"type": "integer"}}}}}
  })");
  EXPECT_EQ(validate(schema, json::parse(R"({"list": [{}, {"x/y~z": 1.5}]})")),
            "/list/1/x~1y~0z: expected integer, got number");
}

TEST(SchemaMessageTest, ListsAllowedTypes) {
  EXPECT_EQ(validate({{"type", {"string", "null"}}}, 3), "(root): expected string or null, got integer");
}

TEST(SchemaMessageTest, AnyOfAndOneOfSayWhichFailed) {
  const json any_of = {{"properties", {{"x", {{"anyOf", {{{"type", "string"}}, {{"type", "null"}}}}}}}}};
  EXPECT_EQ(validate(any_of, {{"x", 1}}), "/x: does not match any of the allowed schemas (anyOf)");

  const json one_of = {{"oneOf", {{{"type", "number"}}, {{"type", "integer"}}}}};
  EXPECT_EQ(validate(one_of, 1), "(root): matches more than one of the allowed schemas (oneOf)");
  EXPECT_EQ(validate(one_of, "s"), "(root): does not match any of the allowed schemas (oneOf)");
  EXPECT_EQ(validate(one_of, 1.5), "");
}

TEST(SchemaMessageTest, AllOfReportsTheFailingBranchItself) {
  const json schema = {{"allOf", {{{"type", "object"}}, {{"required", {"text"}}}}}};
  EXPECT_EQ(validate(schema, json::object()), "(root): missing required property \"text\"");
}

TEST(SchemaMessageTest, NumericBounds) {
  EXPECT_EQ(validate({{"minimum", 1}}, 0), "(root): must be >= 1");
  EXPECT_EQ(validate({{"maximum", 1}}, 2), "(root): must be <= 1");
  EXPECT_EQ(validate({{"exclusiveMinimum", 1}}, 1), "(root): must be > 1");
  EXPECT_EQ(validate({{"exclusiveMaximum", 1.5}}, 1.5), "(root): must be < 1.5");
  EXPECT_EQ(validate({{"multipleOf", 0.5}}, 0.75), "(root): must be a multiple of 0.5");
}

TEST(SchemaMessageTest, StringArrayAndObjectBounds) {
  EXPECT_EQ(validate({{"pattern", "^a+$"}}, "ab"), "(root): does not match pattern \"^a+$\"");
  EXPECT_EQ(validate({{"minItems", 2}}, {1}), "(root): must have at least 2 items");
  EXPECT_EQ(validate({{"maxProperties", 1}}, {{"a", 1}, {"b", 2}}),
            "(root): must have at most 1 property");
  EXPECT_EQ(validate({{"uniqueItems", true}}, {1, 2, 1.0}),
            "(root): items must be unique (items 0 and 2 are equal)");
  EXPECT_EQ(validate({{"contains", {{"type", "string"}}}}, {1, 2}),
            "(root): must contain at least one matching item (contains)");
  EXPECT_EQ(validate({{"propertyNames", {{"maxLength", 2}}}}, {{"abc", 1}}),
            "(root): invalid property name \"abc\"");
}

TEST(SchemaMessageTest, EnumConstAndNot) {
  EXPECT_EQ(validate({{"enum", {"a", "b"}}}, "c"), "(root): must be one of [\"a\",\"b\"]");
  EXPECT_EQ(validate({{"const", "a"}}, "c"), "(root): must be equal to \"a\"");
  EXPECT_EQ(validate({{"not", {{"type", "null"}}}}, nullptr), "(root): must not match the schema in \"not\"");
}

TEST(SchemaMessageTest, FalseSchemaAndClosedTuple) {
  EXPECT_EQ(validate({{"properties", {{"a", false}}}}, {{"a", 1}}), "/a: no value is allowed here");
  const json tuple = json::parse(R"({"prefixItems": [{"type": "string"}], "items": false})");
  EXPECT_EQ(validate(tuple, {"x"}), "");
  EXPECT_EQ(validate(tuple, {"x", 1}), "(root): must have at most 1 item");
  EXPECT_EQ(validate(tuple, {2}), "/0: expected string, got integer");
}

TEST(SchemaMessageTest, DependentRequired) {
  const json schema = {{"dependentRequired", {{"card", {"cvv"}}}}};
  EXPECT_EQ(validate(schema, {{"card", 1}}), "(root): property \"card\" requires property \"cvv\"");
  EXPECT_EQ(validate(schema, {{"card", 1}, {"cvv", 2}}), "");
  EXPECT_EQ(validate(schema, {{"other", 1}}), "");
}

// ---------------------------------------------------------------------------------------------
// Numbers, equality and lengths.

TEST(SchemaValueTest, IntegerAcceptsZeroFraction) {
  EXPECT_EQ(validate({{"type", "integer"}}, 1.0), "");
  EXPECT_EQ(validate({{"type", "integer"}}, 1.5), "(root): expected integer, got number");
}

TEST(SchemaValueTest, ComparesMixedNumberRepresentationsExactly) {
  // 2^63 - 1 as int64 against UINT64_MAX: a cast to either type would wrap.
  EXPECT_NE(validate({{"maximum", INT64_MAX}}, UINT64_MAX), "");
  EXPECT_NE(validate({{"minimum", 0U}}, -1), "");
  // 2^53 + 1 is not representable as a double, so a double comparison would call them equal.
  EXPECT_NE(validate({{"maximum", 9007199254740992.0}}, 9007199254740993LL), "");
  EXPECT_EQ(validate({{"maximum", 9007199254740992.0}}, 9007199254740992LL), "");
  EXPECT_NE(validate({{"exclusiveMinimum", 1e300}}, UINT64_MAX), "");
}

TEST(SchemaValueTest, MultipleOfHandlesFloatsAndIntegers) {
  EXPECT_EQ(validate({{"multipleOf", 0.0001}}, 0.0075), "");
  EXPECT_NE(validate({{"multipleOf", 0.0001}}, 0.00751), "");
  EXPECT_EQ(validate({{"multipleOf", 0.01}}, 19.99), "");
  EXPECT_EQ(validate({{"multipleOf", 3}}, INT64_MIN + 2), "");
  EXPECT_NE(validate({{"multipleOf", 0.123456789}}, 1e308), "");  // quotient overflows
}

TEST(SchemaValueTest, EnumAndConstCompareNumbersByValue) {
  EXPECT_EQ(validate({{"enum", {1, "a"}}}, 1.0), "");
  EXPECT_EQ(validate({{"const", json::parse(R"([1, {"a": 2.0}])")}}, json::parse(R"([1.0, {"a": 2}])")), "");
  EXPECT_NE(validate({{"const", 1}}, true), "");
  EXPECT_NE(validate({{"const", json::array({0})}}, json::array({false})), "");
}

// Long strings from a model must neither crash the host (libstdc++'s backtracking regex
// recurses per character) nor be waved through.
TEST(SchemaValueTest, PatternsHandleLongStrings) {
  const std::string long_text(50000, 'a');
  EXPECT_EQ(validate({{"pattern", "^[a-z]+$"}}, long_text), "");
  EXPECT_EQ(validate({{"pattern", "^(a|b)*c$"}}, long_text), "(root): does not match pattern \"^(a|b)*c$\"");
  EXPECT_EQ(validate({{"patternProperties", {{"^a+$", {{"type", "null"}}}}}}, {{long_text, 1}}),
            "/" + long_text + ": expected null, got integer");
}

TEST(SchemaValueTest, BackReferencesWorkOnShortStringsOnly) {
  const json schema = {{"pattern", "^(ab)\\1$"}};
  EXPECT_EQ(validate(schema, "abab"), "");
  EXPECT_EQ(validate(schema, "abba"), "(root): does not match pattern \"^(ab)\\\\1$\"");
  EXPECT_EQ(validate(schema, std::string(5000, 'a')),
            "(root): could not be checked against pattern \"^(ab)\\\\1$\" (input too long or too complex)");
}

TEST(SchemaValueTest, LengthsCountCodePoints) {
  EXPECT_EQ(validate({{"maxLength", 1}}, "\u00e9"), "");               // 2 bytes in UTF-8
  EXPECT_EQ(validate({{"maxLength", 2}}, "\U0001F4A9\U0001F4A9"), "");  // 8 bytes
  EXPECT_EQ(validate({{"minLength", 2}}, "\U0001F4A9"), "(root): must be at least 2 characters long");
  EXPECT_EQ(validate({{"maxLength", 2}}, "abc"), "(root): must be at most 2 characters long");
}

// ---------------------------------------------------------------------------------------------
// $ref.

TEST(SchemaRefTest, ResolvesDefsAndDefinitions) {
  const json schema = json::parse(R"({
    "$defs": {"name": {"type": "string"}},
    "definitions": {"age": {"type": "integer", "minimum": 0}},
    "properties": {"name": {"$ref": "#/$defs/name"}, "age": {"$ref": "#/definitions/age"}}
  })");
  EXPECT_EQ(validate(schema, {{"name", "x"}, {"age", 3}}), "");
  EXPECT_EQ(validate(schema, {{"age", -1}}), "/age: must be >= 0");
}

TEST(SchemaRefTest, RecursiveSchemaValidatesUpToTheDepthLimit) {
  const json list = json::parse(R"({"type": "object", "properties": {"next": {"$ref": "#"}}})");
  EXPECT_EQ(validate(list, nested("next", json::object(), 10)), "");
  const std::string message = validate(list, nested("next", json::object(), 100));
  EXPECT_NE(message.find("$ref recursion too deep (limit 64)"), std::string::npos) << message;
  EXPECT_EQ(message.rfind("/next/next/", 0), 0U) << message;
}

TEST(SchemaRefTest, RefCyclesStopAtTheLimit) {
  EXPECT_EQ(validate({{"$ref", "#"}}, 1), "(root): $ref recursion too deep (limit 64)");
  const json mutual = json::parse(R"({
    "definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
    "$ref": "#/definitions/a"
  })");
  EXPECT_EQ(validate(mutual, 1), "(root): $ref recursion too deep (limit 64)");
}

TEST(SchemaRefTest, GivingUpIsNeverTurnedIntoSuccess) {
  // Without the abort flag, "not" would invert the recursion failure into a pass.
  EXPECT_EQ(validate({{"not", {{"$ref", "#"}}}}, 1), "(root): $ref recursion too deep (limit 64)");
  EXPECT_EQ(validate({{"anyOf", {{{"$ref", "#"}}, true}}}, 1), "(root): $ref recursion too deep (limit 64)");
}

TEST(SchemaRefTest, SiblingsFollowTheDeclaredDialect) {
  json schema = json::parse(R"({"$defs": {"list": {"type": "array"}}, "$ref": "#/$defs/list", "maxItems": 1})");
  EXPECT_EQ(validate(schema, {1, 2}), "");  // draft-07: siblings of $ref are ignored
  schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  EXPECT_EQ(validate(schema, {1, 2}), "(root): must have at most 1 item");
}

// ---------------------------------------------------------------------------------------------
// compile() errors.

TEST(SchemaCompileTest, RejectsNonSchemaValues) {
  EXPECT_EQ(compile_error(42), "invalid schema at #: a schema must be an object or a boolean");
  EXPECT_EQ(compile_error({{"properties", {{"a", "string"}}}}),
            "invalid schema at #/properties/a: a schema must be an object or a boolean");
}

TEST(SchemaCompileTest, RejectsWronglyTypedKeywords) {
  EXPECT_EQ(compile_error({{"required", "a"}}), "invalid schema at #: required must be an array of strings");
  EXPECT_EQ(compile_error({{"required", {1}}}), "invalid schema at #: required must be an array of strings");
  EXPECT_EQ(compile_error({{"type", "text"}}), "invalid schema at #: unknown type \"text\"");
  EXPECT_EQ(compile_error({{"minLength", -1}}), "invalid schema at #: minLength must be a non-negative integer");
  EXPECT_EQ(compile_error({{"maxItems", 1.5}}), "invalid schema at #: maxItems must be a non-negative integer");
  EXPECT_EQ(compile_error({{"minimum", "0"}}), "invalid schema at #: minimum must be a number");
  EXPECT_EQ(compile_error({{"multipleOf", 0}}), "invalid schema at #: multipleOf must be greater than 0");
  EXPECT_EQ(compile_error({{"anyOf", json::array()}}), "invalid schema at #: anyOf must be a non-empty array of schemas");
  EXPECT_EQ(compile_error({{"enum", 1}}), "invalid schema at #: enum must be an array");
  EXPECT_EQ(compile_error({{"uniqueItems", 1}}), "invalid schema at #: uniqueItems must be a boolean");
  EXPECT_EQ(compile_error({{"items", {{"items", {{"type", 3}}}}}}),
            "invalid schema at #/items/items: type must be a type name or a non-empty array of type names");
}

TEST(SchemaCompileTest, RejectsInvalidRegexes) {
  const std::string pattern_error = compile_error({{"pattern", "(unclosed"}});
  EXPECT_EQ(pattern_error.rfind("invalid schema at #: invalid regex \"(unclosed\" in pattern", 0), 0U)
      << pattern_error;
  const std::string property_error = compile_error({{"patternProperties", {{"[a-", json::object()}}}});
  EXPECT_EQ(property_error.rfind("invalid schema at #: invalid regex \"[a-\" in patternProperties", 0), 0U)
      << property_error;
}

TEST(SchemaCompileTest, RejectsNonLocalAndUnresolvableRefs) {
  EXPECT_EQ(compile_error({{"$ref", "http://example.com/s.json"}}),
            "invalid schema at #: only local $ref ('#...') is supported: http://example.com/s.json");
  EXPECT_EQ(compile_error({{"properties", {{"a", {{"$ref", "#/$defs/missing"}}}}}}),
            "invalid schema at #/properties/a: unresolvable $ref: #/$defs/missing");
  EXPECT_EQ(compile_error({{"$ref", "#/bad~2escape"}}), "invalid schema at #: unresolvable $ref: #/bad~2escape");
  EXPECT_EQ(compile_error({{"$ref", "#/a%2"}}), "invalid schema at #: invalid $ref: #/a%2");
  EXPECT_EQ(compile_error({{"$ref", 1}}), "invalid schema at #: $ref must be a string");
}

TEST(SchemaCompileTest, RejectsSchemasNestedTooDeeply) {
  const std::string error = compile_error(nested("not", json::object(), 1000));
  EXPECT_NE(error.find("schema is nested too deeply"), std::string::npos) << error;
}

TEST(SchemaCompileTest, IgnoresUnknownKeywordsAndAnnotations) {
  const json schema = {{"title", 1}, {"format", "email"}, {"default", {1}}, {"x-custom", {{"type", 3}}}};
  EXPECT_EQ(validate(schema, "anything"), "");
}

}  // namespace
}  // namespace mcph::protocol
