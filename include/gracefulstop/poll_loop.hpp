// gracefulstop/poll_loop.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A small poll(2) loop for daemons that have none: watch your fds, run until the controller has
// stopped. Daemons with a loop of their own add stop_controller::fd() to it instead.
//
// Thread safety: one thread runs the loop; watch() and unwatch() belong to that thread (they may
// be called from callbacks).
#ifndef GRACEFULSTOP_POLL_LOOP_HPP
#define GRACEFULSTOP_POLL_LOOP_HPP

#include <gracefulstop/stop_controller.hpp>

#include <cerrno>
#include <functional>
#include <poll.h>
#include <system_error>
#include <vector>

namespace gracefulstop {

class poll_loop {
public:
  using callback = std::function<void(short revents)>;

  /// Calls `cb` with the returned events whenever `fd` has any of `events`.
  void watch(int fd, short events, callback cb) {
    unwatch(fd);
    watches_.push_back({fd, events, std::move(cb)});
  }
  void unwatch(int fd) noexcept {
    for (auto &w : watches_)
      if (w.fd == fd) w.fd = -1; // erased between polls: a callback may unwatch itself
  }

  /// Runs until `ctl` has stopped; returns its exit code. Throws std::system_error if poll or
  /// dispatch fails. Exceptions from callbacks propagate.
  int run(stop_controller &ctl) {
    std::vector<pollfd> fds;
    while (ctl.state() != controller_state::stopped) {
      watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                    [](const watch_entry &w) { return w.fd < 0; }),
                     watches_.end());
      fds.clear();
      fds.push_back({ctl.fd(), POLLIN, 0});
      for (const auto &w : watches_)
        fds.push_back({w.fd, w.events, 0});
      const int n = ::poll(fds.data(), fds.size(), ctl.next_timeout_ms());
      if (n < 0) {
        // EINTR: a handler ran (self-pipe backend); its byte is in the pipe, so just poll again.
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::system_category(), "gracefulstop: poll");
      }
      // The controller first: a stop that begins now should be seen before more work is taken.
      // Only when it has something to say, though: its fd is readable, or a deadline is due
      // (next_timeout_ms() reads no clock unless a stop runs). A wakeup for a user fd alone costs
      // the controller no system call.
      if (fds[0].revents != 0 || ctl.next_timeout_ms() == 0) ctl.dispatch();
      const std::size_t count = fds.size() - 1;
      for (std::size_t i = 0; i < count && i < watches_.size(); ++i) {
        const pollfd &p = fds[i + 1];
        if (p.revents != 0 && watches_[i].fd == p.fd) watches_[i].cb(p.revents);
      }
    }
    return ctl.exit_code();
  }

private:
  struct watch_entry {
    int fd;
    short events;
    callback cb;
  };
  std::vector<watch_entry> watches_;
};

} // namespace gracefulstop

#endif // GRACEFULSTOP_POLL_LOOP_HPP
