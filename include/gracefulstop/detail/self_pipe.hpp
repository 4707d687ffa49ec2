// gracefulstop/detail/self_pipe.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The self-pipe: the handler writes one byte (the signal number) to the write end, the loop polls
// the read end. Both ends are O_NONBLOCK: the handler must never block on a full pipe, and the
// loop drains until EAGAIN. Both are O_CLOEXEC so an exec'd program inherits neither.
//
// The bytes only wake the loop and hint at arrival order. The per-signal counters in
// global_state are the truth, so a byte lost to a full pipe loses nothing.
//
// The pipe is also the controller's wake channel in the signalfd backend (for the safety-net
// handler and for asynchronous stage completions), where byte 0 means "just wake up".
#ifndef GRACEFULSTOP_DETAIL_SELF_PIPE_HPP
#define GRACEFULSTOP_DETAIL_SELF_PIPE_HPP

#include <gracefulstop/detail/fd.hpp>
#include <gracefulstop/detail/global_state.hpp>
#include <gracefulstop/detail/sys.hpp>

#include <cerrno>
#include <system_error>
#include <vector>

namespace gracefulstop::detail {

class self_pipe {
public:
  std::error_code open() noexcept {
    int fds[2];
    if (sys().make_pipe(fds) != 0) return {errno, std::system_category()};
    read_.reset(fds[0]);
    write_.reset(fds[1]);
    return {};
  }

  int read_fd() const noexcept { return read_.get(); }
  int write_fd() const noexcept { return write_.get(); }

  /// Reads until the pipe is empty. Appends each signal number to `order` the first time it is
  /// seen, so the loop can act in arrival order. Drain first, act after: a signal that arrives
  /// while the loop acts then leaves a byte for the next wakeup instead of being drained unseen.
  /// Returns false on an error other than EAGAIN (the error is in errno).
  bool drain(std::vector<int> &order, bool (&seen)[max_signal]) noexcept {
    unsigned char buffer[256];
    for (;;) {
      const ssize_t n = read_retrying(read_.get(), buffer, sizeof buffer);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
      if (n == 0) return true; // write end closed: only happens during teardown
      for (ssize_t i = 0; i < n; ++i) {
        const int signo = buffer[i];
        if (signo > 0 && signo < max_signal && !seen[signo]) {
          seen[signo] = true;
          order.push_back(signo);
        }
      }
      if (static_cast<size_t>(n) < sizeof buffer) return true;
    }
  }

  /// Gives up ownership without closing: used in a forked child, where the fork hook has already
  /// closed these descriptor numbers, which may since have been reused.
  void abandon() noexcept {
    read_.release();
    write_.release();
  }

private:
  unique_fd read_;
  unique_fd write_;
};

} // namespace gracefulstop::detail

#endif // GRACEFULSTOP_DETAIL_SELF_PIPE_HPP
