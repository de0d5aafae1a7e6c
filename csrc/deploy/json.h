// Minimal JSON reader (RFC 8259) for bundle.json, plus string escaping for the runner's output.
//
// Parses the whole grammar (objects, arrays, strings with \uXXXX escapes and surrogate pairs, numbers, true,
// false, null) into a small tree; numbers are kept as double. Errors throw JsonError with the byte offset.
// No dependency beyond the C++17 standard library.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace bmf {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json parse(const std::string& text);  // throws JsonError

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_bool() const { return type_ == Type::Bool; }

  // Accessors throw JsonError naming the expected type.
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // a number with no fractional part
  const std::string& as_string() const;
  const std::vector<Json>& as_array() const;
  const std::map<std::string, Json>& as_object() const;

  bool has(const std::string& key) const;         // object with this key
  const Json* find(const std::string& key) const;  // nullptr when absent (or not an object)

  static const char* type_name(Type t);

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool b_ = false;
  double num_ = 0.0;
  std::string str_;
  std::vector<Json> arr_;
  std::map<std::string, Json> obj_;
};

// `s` as a JSON string literal (with quotes). Input must be valid UTF-8 (the runner sanitizes first);
// control characters are escaped, non-ASCII is written as UTF-8 (like Python's ensure_ascii=False).
std::string json_quote(const std::string& s);

}  // namespace bmf
