// A small JSON Schema validator for the keywords tool input schemas use (2020-12 wording,
// draft-07 compatible): type, enum, const, numeric and string bounds, pattern, properties,
// required, additionalProperties, patternProperties, propertyNames, min/maxProperties,
// dependentRequired, items (schema or draft-07 array form), prefixItems, min/maxItems,
// uniqueItems, contains, allOf/anyOf/oneOf/not, if/then/else, local $ref ("#/...",
// $defs/definitions), boolean schemas. Unknown keywords (format, title, default, ...) are
// ignored, as annotations. No network $ref is ever fetched.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "result.hpp"

namespace mcph::protocol {

class Schema {
 public:
  // Checks that `schema` is a usable schema (object or boolean; keyword values of the right
  // types; regexes compile; local $refs resolve) and prepares it for fast validation.
  static Result<std::shared_ptr<const Schema>> compile(const nlohmann::json& schema);

  // Empty string when `value` conforms; otherwise one message naming the first failing
  // location as a JSON pointer, e.g. "/a: expected number, got string".
  virtual std::string validate(const nlohmann::json& value) const = 0;
  virtual ~Schema() = default;
};

}  // namespace mcph::protocol
