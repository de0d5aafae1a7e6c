#include "json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace bmf {

const char* Json::type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "a boolean";
    case Type::Number: return "a number";
    case Type::String: return "a string";
    case Type::Array: return "an array";
    case Type::Object: return "an object";
  }
  return "?";
}

static JsonError type_error(Json::Type want, Json::Type got) {
  return JsonError(std::string("expected ") + Json::type_name(want) + ", got " + Json::type_name(got));
}

bool Json::as_bool() const {
  if (type_ != Type::Bool) throw type_error(Type::Bool, type_);
  return b_;
}
double Json::as_number() const {
  if (type_ != Type::Number) throw type_error(Type::Number, type_);
  return num_;
}
int64_t Json::as_int() const {
  double v = as_number();
  if (!(std::floor(v) == v) || std::fabs(v) > 9.0e15) throw JsonError("expected an integer, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}
const std::string& Json::as_string() const {
  if (type_ != Type::String) throw type_error(Type::String, type_);
  return str_;
}
const std::vector<Json>& Json::as_array() const {
  if (type_ != Type::Array) throw type_error(Type::Array, type_);
  return arr_;
}
const std::map<std::string, Json>& Json::as_object() const {
  if (type_ != Type::Object) throw type_error(Type::Object, type_);
  return obj_;
}
bool Json::has(const std::string& key) const { return find(key) != nullptr; }
const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  auto it = obj_.find(key);
  return it == obj_.end() ? nullptr : &it->second;
}

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}

  Json document() {
    Json v = value(0);
    ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw JsonError("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  void literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) fail(std::string("expected ") + word);
    pos_ += n;
  }

  Json value(int depth) {
    if (depth > 64) fail("nesting deeper than 64");
    ws();
    Json v;
    char c = peek();
    if (c == '{') {
      v.type_ = Json::Type::Object;
      ++pos_;
      ws();
      if (peek() == '}') { ++pos_; return v; }
      for (;;) {
        ws();
        if (peek() != '"') fail("expected a string key");
        std::string key = string();
        ws();
        expect(':');
        v.obj_[key] = value(depth + 1);
        ws();
        if (peek() == ',') { ++pos_; continue; }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.type_ = Json::Type::Array;
      ++pos_;
      ws();
      if (peek() == ']') { ++pos_; return v; }
      for (;;) {
        v.arr_.push_back(value(depth + 1));
        ws();
        if (peek() == ',') { ++pos_; continue; }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.type_ = Json::Type::String;
      v.str_ = string();
      return v;
    }
    if (c == 't') { literal("true"); v.type_ = Json::Type::Bool; v.b_ = true; return v; }
    if (c == 'f') { literal("false"); v.type_ = Json::Type::Bool; v.b_ = false; return v; }
    if (c == 'n') { literal("null"); return v; }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.type_ = Json::Type::Number;
      v.num_ = number();
      return v;
    }
    if (c == '\0' && pos_ >= s_.size()) fail("unexpected end of input");
    fail(std::string("unexpected character '") + c + "'");
  }

  double number() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("bad number");
    }
    if (peek() == '.') {
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digit expected after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digit expected in exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    return std::strtod(s_.substr(start, pos_ - start).c_str(), nullptr);
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(pos_, 2, "\\u") == 0) {
            size_t save = pos_;
            pos_ += 2;
            unsigned lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else pos_ = save;  // lone high surrogate: keep it replaced below
          }
          if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;  // lone surrogate -> U+FFFD
          put_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }
};

Json Json::parse(const std::string& text) { return JsonParser(text).document(); }

std::string json_quote(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace bmf
