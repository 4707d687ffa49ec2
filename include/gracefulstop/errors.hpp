// gracefulstop/errors.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~
// The library's own error codes. Setup failures of system calls carry errno in
// std::system_category; misuse of the library carries one of these codes, each of which maps to
// the nearest std::errc so generic handling (`ec == std::errc::invalid_argument`) works too.
#ifndef GRACEFULSTOP_ERRORS_HPP
#define GRACEFULSTOP_ERRORS_HPP

#include <gracefulstop/detail/config.hpp>

#include <string>
#include <system_error>

namespace gracefulstop {

enum class errc {
  invalid_signal = 1, ///< Not a signal number this system has.
  forbidden_signal,   ///< SIGKILL, SIGSTOP or a fault signal: it cannot or must not be handled.
  duplicate_stage,    ///< Two stages with the same name.
  stage_after_stop,   ///< A stage registered once the stop has begun.
  unknown_stage,      ///< A policy names a stage that is not registered.
  already_active,     ///< Another controller is installed in this process.
  second_copy,   ///< Another copy of gracefulstop's global state is active (hidden visibility?).
  wrong_thread,  ///< dispatch() from a thread other than the loop's.
  not_installed, ///< The operation needs install() first.
  already_installed,   ///< The operation is only allowed before install().
  backend_unavailable, ///< The requested backend does not exist on this system.
  invalid_policy,      ///< A policy that contradicts itself or the backend.
};

namespace detail {
class error_category_impl final : public std::error_category {
public:
  const char *name() const noexcept override { return "gracefulstop"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
    case errc::invalid_signal:
      return "not a valid signal number";
    case errc::forbidden_signal:
      return "signal cannot be handled (SIGKILL, SIGSTOP) or must not be (a fault signal)";
    case errc::duplicate_stage:
      return "a stage with this name is already registered";
    case errc::stage_after_stop:
      return "stages cannot be added once the stop has begun";
    case errc::unknown_stage:
      return "policy names a stage that is not registered";
    case errc::already_active:
      return "another stop_controller is installed in this process";
    case errc::second_copy:
      return "a second copy of gracefulstop's global state is active in this process "
             "(built with hidden visibility in two shared objects?)";
    case errc::wrong_thread:
      return "dispatch() called from a thread other than the loop thread";
    case errc::not_installed:
      return "stop_controller is not installed";
    case errc::already_installed:
      return "stop_controller is already installed";
    case errc::backend_unavailable:
      return "requested backend is not available on this system";
    case errc::invalid_policy:
      return "invalid signal policy";
    }
    return "unknown gracefulstop error";
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
    case errc::already_active:
    case errc::second_copy:
      return std::errc::device_or_resource_busy;
    case errc::wrong_thread:
    case errc::not_installed:
    case errc::already_installed:
    case errc::stage_after_stop:
      return std::errc::operation_not_permitted;
    case errc::backend_unavailable:
      return std::errc::function_not_supported;
    default:
      return std::errc::invalid_argument;
    }
  }
};
} // namespace detail

/// The category of gracefulstop's own error codes.
inline const std::error_category &error_category() noexcept {
  static const detail::error_category_impl category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

} // namespace gracefulstop

template <>
struct std::is_error_code_enum<gracefulstop::errc> : std::true_type {};

#endif // GRACEFULSTOP_ERRORS_HPP
