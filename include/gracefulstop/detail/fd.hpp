// gracefulstop/detail/fd.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// An owning file descriptor. A closed descriptor is -1.
#ifndef GRACEFULSTOP_DETAIL_FD_HPP
#define GRACEFULSTOP_DETAIL_FD_HPP

#include <unistd.h>
#include <utility>

namespace gracefulstop::detail {

class unique_fd {
public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd &operator=(unique_fd &&other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd &) = delete;
  unique_fd &operator=(const unique_fd &) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }

  // close() is never retried: on Linux the descriptor is gone even when close reports EINTR, and a
  // retry could close a descriptor another thread has just been given.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

} // namespace gracefulstop::detail

#endif // GRACEFULSTOP_DETAIL_FD_HPP
