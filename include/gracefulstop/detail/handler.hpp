// gracefulstop/detail/handler.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every function that may run in signal context lives in this file, so it can be audited at once.
//
// A signal handler interrupts arbitrary code: maybe malloc holding its lock, maybe printf halfway
// through a buffer, maybe a function that just set errno. So code here may only:
//   - touch lock-free atomics (no mutex: the interrupted code might hold it);
//   - call functions POSIX lists as async-signal-safe (write, _exit, sigaction, pthread_sigmask,
//     raise, close, getpid); nothing that allocates, locks, formats or throws;
//   - leave errno as it found it (the interrupted code may be between a failing call and its
//     errno check).
// Each function below is marked "Async-signal-safe." and says why.
#ifndef GRACEFULSTOP_DETAIL_HANDLER_HPP
#define GRACEFULSTOP_DETAIL_HANDLER_HPP

#include <gracefulstop/detail/global_state.hpp>

#include <cerrno>
#include <csignal>
#include <pthread.h>
#include <unistd.h>

namespace gracefulstop::detail {

/// Ends the process as `status` says: >= 0 is an exit status, -1 means "die of the signal".
/// Async-signal-safe: _exit (not exit: exit runs atexit handlers and flushes stdio, neither safe
/// here), sigaction, pthread_sigmask and raise are all on POSIX's list.
[[noreturn]] inline void hard_exit(int signo, int status) noexcept {
  if (status >= 0) ::_exit(status);
  // Re-raise with the default disposition so the parent's waitpid sees WIFSIGNALED: a shell loop
  // stops on ^C only if its child died *of* SIGINT (Cracauer, "Proper handling of SIGINT").
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signo);
  // The signal is blocked while its own handler runs; unblock it so raise() takes effect now.
  ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  ::raise(signo);
  // Reached only for signals whose default action is to ignore (SIGCHLD, SIGWINCH, SIGURG).
  ::_exit(128 + signo);
}

/// Records one delivery and wakes the loop.
/// Async-signal-safe: atomics that are lock-free (checked by static_assert) and one write().
inline void record_delivery(int signo, const siginfo_t *info) noexcept {
  // The kernel never passes a number out of range, but an index in signal context is checked
  // anyway: a stray raise() from a bug elsewhere must not scribble over memory.
  if (signo <= 0 || signo >= max_signal) return;
  global_state &g = state();
  signal_slot &slot = g.slots[signo];
  if (info != nullptr) {
    // Relaxed: these are published by the release in the fetch_add below.
    slot.last_pid.store(info->si_pid, std::memory_order_relaxed);
    slot.last_uid.store(static_cast<std::uint32_t>(info->si_uid), std::memory_order_relaxed);
    slot.last_code.store(info->si_code, std::memory_order_relaxed);
  }
  // The counter is incremented before the wakeup byte is written, so a loop woken by the byte
  // always finds the count (release pairs with the loop's acquire load).
  const std::uint64_t n = slot.deliveries.fetch_add(1, std::memory_order_acq_rel) + 1;
  const std::uint64_t armed = slot.hard_exit_at.load(std::memory_order_acquire);
  if (armed != 0 && n >= armed)
    hard_exit(signo, slot.hard_exit_status.load(std::memory_order_relaxed));

  const int fd = g.wake_fd.load(std::memory_order_acquire);
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signo);
    // O_NONBLOCK: a full pipe must never block a handler. EAGAIN is harmless because a full pipe
    // is already readable, so the loop will wake, and the counter above holds the delivery.
    // The result is deliberately ignored: there is nothing safe to do about any other error here.
    [[maybe_unused]] const ssize_t ignored = ::write(fd, &byte, 1);
    g.wake_pending.store(true, std::memory_order_release);
  }
}

/// Restores, in a child created by fork(), the dispositions and mask the process had before
/// install(), and closes the child's copies of the controller's descriptors: a child must neither
/// feed the parent's pipe nor steal from the parent's signalfd, and a child that execs must be
/// stoppable with SIGTERM like any program.
/// Async-signal-safe: pthread_atfork child handlers run in the child of a possibly multi-threaded
/// parent, where only async-signal-safe calls are allowed; this uses sigaction, pthread_sigmask,
/// close and atomics only.
inline void after_fork_in_child() noexcept {
  global_state &g = state();
  if (g.owner.load(std::memory_order_acquire) == 0) return;
  g.wake_fd.store(-1, std::memory_order_release);
  for (int signo = 1; signo < max_signal; ++signo) {
    if (!g.handled[signo].load(std::memory_order_relaxed)) continue;
    g.slots[signo].hard_exit_at.store(0, std::memory_order_relaxed);
    ::sigaction(signo, &g.previous[signo], nullptr);
    g.handled[signo].store(false, std::memory_order_relaxed);
  }
  ::pthread_sigmask(SIG_UNBLOCK, &g.blocked_by_us, nullptr);
  for (auto &fd : g.child_close_fds) {
    const int value = fd.exchange(-1, std::memory_order_relaxed);
    if (value >= 0) ::close(value);
  }
  g.owner.store(0, std::memory_order_release);
}

} // namespace gracefulstop::detail

// C linkage: the kernel calls these through plain function pointers, so they get the C calling
// convention explicitly rather than relying on C++ functions happening to share it.
extern "C" {
/// The one handler gracefulstop installs. Async-signal-safe (see record_delivery).
inline void gracefulstop_signal_handler(int signo, siginfo_t *info, void * /*ucontext*/) {
  // Saved first and restored last: write() may set errno, and the interrupted code may be about
  // to read the errno of its own failed call.
  const int saved_errno = errno;
  gracefulstop::detail::record_delivery(signo, info);
  errno = saved_errno;
}

/// pthread_atfork child hook. Async-signal-safe (see after_fork_in_child).
inline void gracefulstop_atfork_child() {
  const int saved_errno = errno;
  gracefulstop::detail::after_fork_in_child();
  errno = saved_errno;
}
}

#endif // GRACEFULSTOP_DETAIL_HANDLER_HPP
