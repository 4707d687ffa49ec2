// gracefulstop/detail/signalfd.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The Linux signalfd backend. The handled signals are blocked, so the kernel queues them on the
// signalfd instead of running a handler, and the loop reads signalfd_siginfo records: no code runs
// in signal context at all.
//
// The rule that makes signalfd hard: a process-directed signal goes to *any* thread that does not
// block it. A thread started before install() (or by a library that resets its mask) gets the
// signal delivered to it instead of the signalfd, and with the default disposition that kills the
// process. So this backend also installs the ordinary handler as a safety net: such a delivery is
// counted and wakes the loop through the self-pipe, and is reported as a `safety_net` event that
// names the leak. The public fd is an epoll set holding both the signalfd and the self-pipe.
#ifndef GRACEFULSTOP_DETAIL_SIGNALFD_HPP
#define GRACEFULSTOP_DETAIL_SIGNALFD_HPP

#include <gracefulstop/detail/config.hpp>

#if GRACEFULSTOP_HAS_SIGNALFD

#include <gracefulstop/detail/fd.hpp>
#include <gracefulstop/detail/sys.hpp>

#include <cerrno>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <system_error>

namespace gracefulstop::detail {

class signalfd_source {
public:
  /// Creates the signalfd for `mask` and an epoll set watching it and `wake_read_fd`.
  std::error_code open(const sigset_t &mask, int wake_read_fd) noexcept {
    sfd_.reset(sys().signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!sfd_) return {errno, std::system_category()};
    epoll_.reset(sys().epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return {errno, std::system_category()};
    for (int fd : {sfd_.get(), wake_read_fd}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (sys().epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        return {errno, std::system_category()};
    }
    return {};
  }

  int poll_fd() const noexcept { return epoll_.get(); }
  int signal_fd() const noexcept { return sfd_.get(); }

  /// Reads queued records into `out` (at most `capacity`); returns how many, 0 when empty, -1 on
  /// an error other than EAGAIN. Reads several at once: one syscall for a burst.
  int read(signalfd_siginfo *out, int capacity) noexcept {
    const ssize_t n =
        read_retrying(sfd_.get(), out, sizeof(signalfd_siginfo) * static_cast<size_t>(capacity));
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    return static_cast<int>(static_cast<size_t>(n) / sizeof(signalfd_siginfo));
  }

  void abandon() noexcept {
    sfd_.release();
    epoll_.release();
  }

private:
  unique_fd sfd_;
  unique_fd epoll_;
};

} // namespace gracefulstop::detail

#endif // GRACEFULSTOP_HAS_SIGNALFD
#endif // GRACEFULSTOP_DETAIL_SIGNALFD_HPP
