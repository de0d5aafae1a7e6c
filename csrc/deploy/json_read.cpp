#include "json_read.h"

#include <cmath>

namespace bmf {

namespace {

constexpr int64_t kMaxJsonInt = 9'000'000'000'000'000;  // integers are exact in a double up to 2^53 ~ 9.007e15

const char* type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "an unknown value";
  }
}

JsonError type_error(const char* want, const Json& got) {
  return JsonError(std::string("expected ") + want + ", got " + type_name(got));
}

}  // namespace

Json parse_json(const std::string& text) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ..."; keep the readable part.
    const std::string what = e.what();
    const size_t cut = what.find("] ");
    throw JsonError("invalid JSON: " + (cut == std::string::npos ? what : what.substr(cut + 2)));
  }
}

const Json* json_find(const Json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const std::string& json_string(const Json& j) {
  if (!j.is_string()) throw type_error("a string", j);
  return j.get_ref<const std::string&>();
}

double json_number(const Json& j) {
  if (!j.is_number()) throw type_error("a number", j);
  return j.get<double>();
}

int64_t json_int(const Json& j) {
  if (j.is_number_unsigned() && j.get<uint64_t>() <= uint64_t(kMaxJsonInt)) return j.get<int64_t>();
  if (j.is_number_integer() && !j.is_number_unsigned()) {
    const int64_t v = j.get<int64_t>();
    if (v >= -kMaxJsonInt && v <= kMaxJsonInt) return v;
  }
  const double v = json_number(j);
  if (std::floor(v) != v || std::fabs(v) > double(kMaxJsonInt))
    throw JsonError("expected an integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

const Json::object_t& json_object(const Json& j) {
  if (!j.is_object()) throw type_error("an object", j);
  return j.get_ref<const Json::object_t&>();
}

const Json::array_t& json_array(const Json& j) {
  if (!j.is_array()) throw type_error("an array", j);
  return j.get_ref<const Json::array_t&>();
}

}  // namespace bmf
