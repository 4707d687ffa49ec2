// A TCP echo server on a bare epoll loop, stopped gracefully by gracefulstop.
//
//   gs_example_epoll [PORT [DRAIN_BUDGET_MS]]
//
// It listens on 127.0.0.1:PORT (0, the default, lets the kernel choose; the ready line says which)
// and echoes whatever each client sends. On SIGTERM it
//   1. stops accepting (closes the listener, so new clients are refused at once),
//   2. drains: keeps echoing for the connections it has until their clients close, for at most
//      DRAIN_BUDGET_MS (default 5000),
//   3. closes whatever is still open, and exits 0.
// SIGINT does the same under gracefulstop's default ^C policy: a second ^C skips the drain, and
// the process dies of SIGINT so that a calling shell sees the interrupt.
//
// The whole integration is: ctl.fd() is one more descriptor in the epoll set, ctl.next_timeout_ms()
// bounds epoll_wait, and ctl.dispatch() runs after every wakeup.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <unordered_map>

namespace gs = gracefulstop;

namespace {

[[noreturn]] void fail(const char *what) {
  throw std::system_error(errno, std::system_category(), what);
}

// Connections buffer what they have read until the socket takes it back: a slow reader must not
// block the loop, and what a client sent before it closed is still echoed in full.
struct connection {
  unsigned id;
  std::string pending;
  bool peer_closed = false;
};
constexpr std::size_t max_pending = 1 << 20; // stop reading from a client that does not read

} // namespace

int main(int argc, char **argv) try {
  const example::echo_server_arguments args(argc, argv, "gs_example_epoll");

  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  const int yes = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(args.port);
  if (::bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) fail("bind");
  if (::listen(listener, SOMAXCONN) != 0) fail("listen");
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr *>(&address), &length);

  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) fail("epoll_create1");
  const auto watch = [&](int op, int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll, op, fd, &ev) != 0) fail("epoll_ctl");
  };

  gs::stop_controller::options options;
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);

  std::unordered_map<int, connection> connections; // by descriptor
  unsigned last_id = 0;
  // Set while the drain stage waits for the last client to go.
  std::optional<gs::stage_completion> drained;

  const auto close_connection = [&](int fd, const char *reason) {
    std::fprintf(stderr, "event=closed conn=%u reason=%s\n", connections.at(fd).id, reason);
    ::close(fd); // also takes it out of the epoll set
    connections.erase(fd);
    if (connections.empty() && drained) {
      drained->done(); // wakes the loop through ctl.fd(); the stop moves on in dispatch()
      drained.reset();
    }
  };

  // Reads what the client sent, echoes as much as the socket takes, and watches for what is left.
  const auto serve = [&](int fd, connection &c) {
    char buffer[16384];
    while (!c.peer_closed && c.pending.size() < max_pending) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        c.pending.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0) {
        c.peer_closed = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        return close_connection(fd, "error");
      }
    }
    std::size_t echoed = 0;
    while (echoed < c.pending.size()) {
      // MSG_NOSIGNAL: a client that vanished is an EPIPE here, not a SIGPIPE for the process.
      const ssize_t n =
          ::send(fd, c.pending.data() + echoed, c.pending.size() - echoed, MSG_NOSIGNAL);
      if (n > 0) {
        echoed += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return close_connection(fd, "error");
      }
    }
    c.pending.erase(0, echoed);
    if (echoed > 0) std::fprintf(stderr, "event=echoed conn=%u bytes=%zu\n", c.id, echoed);
    if (c.peer_closed && c.pending.empty()) return close_connection(fd, "peer");
    // Level-triggered: ask only for what can make progress, or a closed or full connection spins.
    std::uint32_t want = 0;
    if (!c.peer_closed && c.pending.size() < max_pending) want |= EPOLLIN;
    if (!c.pending.empty()) want |= EPOLLOUT;
    watch(EPOLL_CTL_MOD, fd, want);
  };

  const auto accept_all = [&] {
    for (;;) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          std::fprintf(stderr, "event=accept-failed error=\"%s\"\n", std::strerror(errno));
        return;
      }
      connections.emplace(fd, connection{++last_id, {}, false});
      watch(EPOLL_CTL_ADD, fd, EPOLLIN);
      std::fprintf(stderr, "event=accepted conn=%u\n", last_id);
    }
  };

  // The stop, in order. The drain is asynchronous: it returns pending and is completed from the
  // loop when the last client closes; its budget bounds the wait.
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [&](gs::stage_context &) {
                   ::close(listener);
                   listener = -1;
                 }});
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &stage) {
                   if (connections.empty()) return gs::stage_status::done;
                   drained = stage.defer();
                   return gs::stage_status::pending;
                 },
                 args.drain_budget});
  ctl.add_stage({"close", gs::stage_kind::close, [&](gs::stage_context &) {
                   drained.reset(); // timed out or cancelled: nobody waits for it any more
                   while (!connections.empty())
                     close_connection(connections.begin()->first, "stop");
                 }});
  ctl.install();

  watch(EPOLL_CTL_ADD, ctl.fd(), EPOLLIN);
  watch(EPOLL_CTL_ADD, listener, EPOLLIN);
  std::fprintf(stderr, "event=ready example=epoll port=%u\n", ntohs(address.sin_port));

  epoll_event events[64];
  while (ctl.state() != gs::controller_state::stopped) {
    const int n = ::epoll_wait(epoll, events, 64, ctl.next_timeout_ms());
    if (n < 0 && errno != EINTR) fail("epoll_wait");
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        accept_all();
      } else if (auto it = connections.find(fd); it != connections.end()) {
        serve(fd, it->second);
      }
      // ctl.fd() needs nothing here: dispatch() below reads it.
    }
    // After this round's I/O, so a stage that closes connections never pulls them out from under
    // the events still being handled.
    ctl.dispatch();
  }
  ::close(epoll);
  ctl.exit_process(); // 0 for SIGTERM; for SIGINT, dies of SIGINT
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 1;
}
