// gracefulstop/detail/sys.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The system-call seam. Setup and dispatch reach the kernel through this table so tests can inject
// EINTR, EAGAIN and EMFILE where real failures are hard to provoke. The signal handler does NOT go
// through it: the handler's code must be auditable on its own (see detail/handler.hpp).
#ifndef GRACEFULSTOP_DETAIL_SYS_HPP
#define GRACEFULSTOP_DETAIL_SYS_HPP

#include <gracefulstop/detail/config.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#if GRACEFULSTOP_HAS_SIGNALFD
#include <sys/epoll.h>
#include <sys/signalfd.h>
#endif

namespace gracefulstop::detail {

/// Creates a pipe with both ends non-blocking and close-on-exec. pipe2 makes that atomic, so a
/// fork+exec in another thread cannot inherit the fds between pipe() and fcntl().
inline int default_make_pipe(int fds[2]) {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  return ::pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
  if (::pipe(fds) != 0) return -1;
  for (int i = 0; i < 2; ++i) {
    if (::fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0 ||
        ::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0) {
      const int saved = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      errno = saved;
      return -1;
    }
  }
  return 0;
#endif
}

struct syscall_table {
  int (*make_pipe)(int fds[2]) = &default_make_pipe;
  ssize_t (*read)(int, void *, size_t) = &::read;
  int (*sigaction)(int, const struct sigaction *, struct sigaction *) = &::sigaction;
  int (*pthread_sigmask)(int, const sigset_t *, sigset_t *) = &::pthread_sigmask;
#if GRACEFULSTOP_HAS_SIGNALFD
  int (*signalfd)(int, const sigset_t *, int) = &::signalfd;
  int (*epoll_create1)(int) = &::epoll_create1;
  int (*epoll_ctl)(int, int, int, struct epoll_event *) = &::epoll_ctl;
#endif
};

/// The table in use. Tests swap entries and must restore them (see tests/syscall_seam.hpp).
inline syscall_table &sys() noexcept {
  static syscall_table table;
  return table;
}

/// Reads, retrying on EINTR: an interrupted read moved no data, so retrying loses nothing.
inline ssize_t read_retrying(int fd, void *buf, size_t len) noexcept {
  ssize_t n;
  do {
    n = sys().read(fd, buf, len);
  } while (n < 0 && errno == EINTR);
  return n;
}

} // namespace gracefulstop::detail

#endif // GRACEFULSTOP_DETAIL_SYS_HPP
