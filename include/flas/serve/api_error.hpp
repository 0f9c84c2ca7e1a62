#pragma once
// An error the HTTP API reports to its client: an HTTP status, a message that names the offending
// field and what was expected, and the OpenAI error object it is sent as.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace flas::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {}, std::string type = "invalid_request_error")
      : std::runtime_error(message), status_(status), param_(std::move(param)), type_(std::move(type)) {}

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& type() const { return type_; }

  // {"error": {"message", "type", "param", "code"}}, as the OpenAI API answers.
  nlohmann::json body() const { return error_body(what(), type_, param_); }

  static nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param = {}) {
    return {{"error",
             {{"message", message},
              {"type", type},
              {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
              {"code", nullptr}}}};
  }

 private:
  int status_;
  std::string param_, type_;
};

// A 400 about one field of the request body.
[[noreturn]] inline void bad_field(const std::string& field, const std::string& what_is_wrong) {
  throw ApiError(400, field + ": " + what_is_wrong, field);
}

}  // namespace flas::serve
