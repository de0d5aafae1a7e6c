// Reading the bundle's small JSON files (bundle.json, manifest.json) with nlohmann/json.
//
// nlohmann/json parses and validates the document (RFC 8259, UTF-8 checked); these helpers add the runner's
// one-line errors: a parse error names the line and column, a wrong type says what was expected
// ("expected a number, got a string"). Callers prefix the file and field.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace bmf {

using Json = nlohmann::json;

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The JSON document `text`; throws JsonError "invalid JSON: parse error at line L, column C: ...".
Json parse_json(const std::string& text);

// Member `key` of `j`; nullptr when absent or when `j` is not an object.
const Json* json_find(const Json& j, const std::string& key);

// Typed reads; each throws JsonError naming the expected and the actual type.
const std::string& json_string(const Json& j);
double json_number(const Json& j);
int64_t json_int(const Json& j);  // an integer, or a number with no fractional part; |v| <= 9e15
const Json::object_t& json_object(const Json& j);
const Json::array_t& json_array(const Json& j);

}  // namespace bmf
