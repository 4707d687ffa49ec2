// gracefulstop/process.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~
// Threads and child processes that behave with a controller installed.
//
// Threads: a process-directed signal goes to any thread that does not block it. With the
// signalfd backend every thread must block the handled signals, or one of them takes the signal
// instead of the signalfd; spawn_thread() starts a thread with them blocked (a new thread
// inherits its creator's mask, hence block, create, restore).
//
// Children: a blocked mask and ignored dispositions survive execve. fork() is covered by the
// controller's atfork hook, but posix_spawn (and so system() and popen() in current glibc) runs
// no atfork hooks: pass spawn_attributes to posix_spawn so the program starts with the mask the
// process had before install() and default dispositions for the handled signals.
#ifndef GRACEFULSTOP_PROCESS_HPP
#define GRACEFULSTOP_PROCESS_HPP

#include <gracefulstop/stop_controller.hpp>

#include <csignal>
#include <spawn.h>
#include <system_error>
#include <thread>
#include <utility>

namespace gracefulstop {

/// Blocks `signals` in the calling thread for the guard's lifetime.
class signal_block_guard {
public:
  explicit signal_block_guard(const sigset_t &signals) {
    if (int rc = ::pthread_sigmask(SIG_BLOCK, &signals, &previous_); rc != 0)
      throw std::system_error(rc, std::system_category(), "gracefulstop: pthread_sigmask");
  }
  ~signal_block_guard() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  signal_block_guard(const signal_block_guard &) = delete;
  signal_block_guard &operator=(const signal_block_guard &) = delete;

private:
  sigset_t previous_;
};

/// Starts a std::thread with the controller's signals blocked.
template <class F, class... Args>
std::thread spawn_thread(const stop_controller &ctl, F &&fn, Args &&...args) {
  signal_block_guard guard(ctl.handled_signals());
  return std::thread(std::forward<F>(fn), std::forward<Args>(args)...);
}

#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
/// Starts a std::jthread with the controller's signals blocked and attaches its stop source, so
/// the thread's std::stop_token is requested when the stop begins.
template <class F, class... Args>
std::jthread spawn_jthread(stop_controller &ctl, F &&fn, Args &&...args) {
  std::jthread t;
  {
    signal_block_guard guard(ctl.handled_signals());
    t = std::jthread(std::forward<F>(fn), std::forward<Args>(args)...);
  }
  ctl.attach(t.get_stop_source());
  return t;
}
#endif

/// posix_spawnattr_t for starting a program from a process with a controller installed:
/// POSIX_SPAWN_SETSIGMASK (the mask from before install) and POSIX_SPAWN_SETSIGDEF (the handled
/// signals back to SIG_DFL).
class spawn_attributes {
public:
  explicit spawn_attributes(const stop_controller &ctl) {
    if (int rc = ::posix_spawnattr_init(&attr_); rc != 0)
      throw std::system_error(rc, std::system_category(), "gracefulstop: posix_spawnattr_init");
    int rc = ::posix_spawnattr_setsigmask(&attr_, &ctl.mask_before_install());
    if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr_, &ctl.handled_signals());
    if (rc == 0)
      rc = ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc != 0) {
      ::posix_spawnattr_destroy(&attr_);
      throw std::system_error(rc, std::system_category(), "gracefulstop: posix_spawnattr");
    }
  }
  ~spawn_attributes() { ::posix_spawnattr_destroy(&attr_); }
  spawn_attributes(const spawn_attributes &) = delete;
  spawn_attributes &operator=(const spawn_attributes &) = delete;

  const posix_spawnattr_t *get() const noexcept { return &attr_; }

private:
  posix_spawnattr_t attr_;
};

} // namespace gracefulstop

#endif // GRACEFULSTOP_PROCESS_HPP
