// Result<T>: a value or an error message. Host code returns these instead of throwing on
// paths that network threads or plugins call (see ../shared/design/STYLE.md).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace mcph {

struct Error {
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const std::string& error() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, Error> v_;
};

// For functions that produce nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

}  // namespace mcph
