// gracefulstop/signal_event.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// What the application learns about a signal: which, from whom, how many, when. Both backends fill
// the same fields (self-pipe from siginfo_t, signalfd from signalfd_siginfo).
#ifndef GRACEFULSTOP_SIGNAL_EVENT_HPP
#define GRACEFULSTOP_SIGNAL_EVENT_HPP

#include <gracefulstop/detail/config.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>
#include <sys/types.h>

namespace gracefulstop {

struct signal_event {
  int signo = 0;
  /// Sender's pid and real uid. Meaningful only when from_process() is true; a signal the kernel
  /// raised itself (SIGPIPE, a terminal's ^C) carries 0 or the sender of its choice.
  pid_t sender_pid = 0;
  uid_t sender_uid = 0;
  int code = 0; ///< si_code: SI_USER for kill(), SI_QUEUE for sigqueue(), SI_KERNEL, ...
  /// Deliveries the kernel made that this one notification stands for. More than 1 means they
  /// arrived faster than the loop dispatched; the sender fields describe the latest of them.
  std::uint64_t count = 1;
  std::chrono::steady_clock::time_point received{}; ///< when the loop read it (monotonic)

  /// kill(), sigqueue(), and tgkill()/raise()/pthread_kill() (SI_TKILL) carry a real sender.
  bool from_process() const noexcept {
    // Signal 0 is a stop the application requested itself; SI_USER is 0, so check signo first.
    if (signo <= 0) return false;
#if defined(SI_TKILL)
    if (code == SI_TKILL) return true;
#endif
    return code == SI_USER || code == SI_QUEUE;
  }
};

/// "SIGTERM" for 15, "SIGRTMIN+3" for a real-time signal, "SIG?" for nonsense.
/// Returns a string literal or a thread-local buffer; never allocates.
inline const char *signal_name(int signo) noexcept {
  switch (signo) {
  case SIGHUP:
    return "SIGHUP";
  case SIGINT:
    return "SIGINT";
  case SIGQUIT:
    return "SIGQUIT";
  case SIGILL:
    return "SIGILL";
  case SIGTRAP:
    return "SIGTRAP";
  case SIGABRT:
    return "SIGABRT";
  case SIGBUS:
    return "SIGBUS";
  case SIGFPE:
    return "SIGFPE";
  case SIGKILL:
    return "SIGKILL";
  case SIGUSR1:
    return "SIGUSR1";
  case SIGSEGV:
    return "SIGSEGV";
  case SIGUSR2:
    return "SIGUSR2";
  case SIGPIPE:
    return "SIGPIPE";
  case SIGALRM:
    return "SIGALRM";
  case SIGTERM:
    return "SIGTERM";
  case SIGCHLD:
    return "SIGCHLD";
  case SIGCONT:
    return "SIGCONT";
  case SIGSTOP:
    return "SIGSTOP";
  case SIGTSTP:
    return "SIGTSTP";
  case SIGTTIN:
    return "SIGTTIN";
  case SIGTTOU:
    return "SIGTTOU";
  case SIGURG:
    return "SIGURG";
  case SIGXCPU:
    return "SIGXCPU";
  case SIGXFSZ:
    return "SIGXFSZ";
  case SIGVTALRM:
    return "SIGVTALRM";
  case SIGPROF:
    return "SIGPROF";
  case SIGWINCH:
    return "SIGWINCH";
  case SIGSYS:
    return "SIGSYS";
  default:
    break;
  }
#if defined(SIGRTMIN)
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
    thread_local char buffer[16] = "SIGRTMIN+";
    const int offset = signo - SIGRTMIN;
    int pos = 9;
    if (offset >= 10) buffer[pos++] = static_cast<char>('0' + offset / 10);
    buffer[pos++] = static_cast<char>('0' + offset % 10);
    buffer[pos] = '\0';
    return buffer;
  }
#endif
  return "SIG?";
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_SIGNAL_EVENT_HPP
