// gracefulstop/detail/global_state.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The one piece of process-wide state: what the signal handler writes and the loop reads.
//
// Signal dispositions are per process, so this state must be too. It lives in a function-local
// static of an inline function with default visibility: every translation unit, every shared
// object and every LTO partition that includes this header resolves to the same object (the
// dynamic linker unifies the symbol). A copy built with -fvisibility=hidden would get its own
// object; install() detects that case through the environment (see stop_controller.hpp).
#ifndef GRACEFULSTOP_DETAIL_GLOBAL_STATE_HPP
#define GRACEFULSTOP_DETAIL_GLOBAL_STATE_HPP

#include <gracefulstop/detail/config.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>

namespace gracefulstop::detail {

#if defined(NSIG)
inline constexpr int max_signal = NSIG; // one past the highest signal number
#else
inline constexpr int max_signal = 65;
#endif

// Everything the handler touches must be lock-free: a lock that the interrupted code holds would
// deadlock the handler. Checked at compile time (a runtime is_lock_free() call needs -latomic
// with clang and libstdc++).
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "handler needs lock-free atomics");
static_assert(std::atomic<int>::is_always_lock_free, "handler needs lock-free atomics");

/// Per-signal record written by the handler. The counter is the truth: the wakeup byte may be
/// dropped on a full pipe, but no delivery is ever uncounted.
struct signal_slot {
  std::atomic<std::uint64_t> deliveries{0}; ///< every delivery since the process started
  std::atomic<int> last_pid{0};             ///< si_pid of the latest delivery
  std::atomic<std::uint32_t> last_uid{0};   ///< si_uid of the latest delivery
  std::atomic<int> last_code{0};            ///< si_code of the latest delivery
  /// Handler-side escalation: when `deliveries` reaches this value the handler ends the process
  /// itself, because a loop stuck in a stage could never act on the repeat. 0 = not armed.
  std::atomic<std::uint64_t> hard_exit_at{0};
  /// How the handler-side escalation ends the process: >= 0 is an _exit status, -1 re-raises.
  std::atomic<int> hard_exit_status{-1};
};

struct global_state {
  signal_slot slots[max_signal];
  /// Write end of the wakeup pipe, or -1. The handler reads it with acquire so that it never sees
  /// a descriptor before the pipe behind it exists.
  std::atomic<int> wake_fd{-1};
  /// Set after every wakeup byte is written. The signalfd backend reads the pipe only when this
  /// says a byte is there, saving a system call per dispatch (the pipe is not its signal path).
  /// Set *after* the write, so a reader that clears it and finds the pipe empty loses nothing:
  /// the byte written later is followed by another set, and the fd stays readable until then.
  std::atomic<bool> wake_pending{false};
  /// Identity of the installed controller, 0 when none. Also what the fork hook checks.
  std::atomic<std::uintptr_t> owner{0};

  // Saved at install, read by the fork child hook. Only install/uninstall write them, and only
  // while no child can be forked from this process concurrently (install is a setup-time call).
  struct sigaction previous[max_signal];
  std::atomic<bool> handled[max_signal];
  sigset_t blocked_by_us; ///< signals install() blocked that were not blocked before
  std::atomic<int> child_close_fds[4] = {{-1}, {-1}, {-1}, {-1}};
  std::atomic<bool> atfork_registered{false};
};

/// The process-wide state. Never destroyed: a signal may arrive during static destruction.
GRACEFULSTOP_VISIBLE inline global_state &state() noexcept {
  static global_state *const instance = new global_state();
  return *instance;
}

} // namespace gracefulstop::detail

#endif // GRACEFULSTOP_DETAIL_GLOBAL_STATE_HPP
