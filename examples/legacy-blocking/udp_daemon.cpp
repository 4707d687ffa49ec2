// A request/response UDP daemon written the way old daemons (ISC dhcpd, classic syslogd) are: one
// socket, one blocking recvfrom() at a time, no event loop, and nothing watching the controller's
// fd. It still stops in order on SIGTERM, because the signal interrupts the blocking call.
//
//   gs_example_legacy_blocking [PORT [STATE_FILE]]
//
// Every datagram to 127.0.0.1:PORT is answered with "ok N" (N = requests served so far). On SIGTERM
// (or SIGINT) it stops answering, writes "served=N" to STATE_FILE (like dhcpd rewriting its lease
// file), and exits: 0 for SIGTERM, by dying of SIGINT for ^C.
//
// What makes it work is the EINTR mode: policies installed without SA_RESTART, and the self-pipe
// backend (with signalfd the signal is blocked and interrupts nothing). recvfrom() then fails with
// EINTR when a signal arrives, the loop calls ctl.dispatch(), and the stop runs its stages.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace gs = gracefulstop;

static int sock = -1;
static unsigned long served = 0;
static const char *state_file = nullptr;

// Written to a temporary name and renamed over the old file, so a crash mid-write leaves the old
// state intact rather than half a file. A failure throws: the flush stage is then reported as
// failed and, being a must-run stage, turns the exit status into 1.
static void write_state() {
  if (state_file == nullptr) return;
  const std::string temporary = std::string(state_file) + ".new";
  FILE *f = std::fopen(temporary.c_str(), "w");
  if (f == nullptr) throw std::runtime_error(temporary + ": " + std::strerror(errno));
  const bool written =
      std::fprintf(f, "served=%lu\n", served) > 0 && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const int saved = errno;
  std::fclose(f);
  if (!written) throw std::runtime_error(temporary + ": " + std::strerror(saved));
  if (std::rename(temporary.c_str(), state_file) != 0)
    throw std::runtime_error(std::string(state_file) + ": " + std::strerror(errno));
}

int main(int argc, char **argv) {
  const example::command_line args(argc, argv, "gs_example_legacy_blocking", "[PORT [STATE_FILE]]",
                                   2);
  const auto port = static_cast<in_port_t>(args.number(1, "PORT", 0, 65535, 0));
  state_file = args.text(2, nullptr);

  sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); // blocking, on purpose
  struct sockaddr_in address;
  std::memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (sock < 0 || ::bind(sock, (struct sockaddr *)&address, sizeof address) != 0) {
    std::fprintf(stderr, "event=error call=bind port=%u error=\"%s\"\n", port,
                 std::strerror(errno));
    return 1;
  }
  socklen_t length = sizeof address;
  ::getsockname(sock, (struct sockaddr *)&address, &length);

  gs::stop_controller::options options;
  options.which = gs::backend::self_pipe; // a handler must run for the call to be interrupted
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);
  // The default SIGTERM and SIGINT policies, but installed without SA_RESTART.
  for (auto &[signo, policy] : gs::default_policies())
    ctl.set_policy(signo, policy.without_restart());
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [](gs::stage_context &) {
                   ::close(sock);
                   sock = -1;
                 }});
  ctl.add_stage({"flush", gs::stage_kind::flush, [](gs::stage_context &) { write_state(); }});
  try {
    ctl.install();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "event=error call=install error=\"%s\"\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "event=ready example=legacy-blocking port=%u\n", ntohs(address.sin_port));

  for (;;) {
    // Look at the controller before blocking: a signal that came while the last request was being
    // answered interrupted nothing. One landing between this dispatch() and recvfrom() is the
    // window every EINTR design has: the call then blocks until the next datagram or signal (a
    // second SIGTERM gets through), exactly as in the daemons this imitates.
    ctl.dispatch();
    if (ctl.state() != gs::controller_state::running) break;

    char request[1500];
    struct sockaddr_in peer;
    socklen_t peer_length = sizeof peer;
    const ssize_t n =
        ::recvfrom(sock, request, sizeof request, 0, (struct sockaddr *)&peer, &peer_length);
    if (n < 0) {
      if (errno == EINTR) {
        std::fprintf(stderr, "event=interrupted call=recvfrom errno=EINTR\n");
        continue; // to dispatch()
      }
      std::fprintf(stderr, "event=error call=recvfrom error=\"%s\"\n", std::strerror(errno));
      return 1;
    }
    ++served;
    char reply[32];
    const int reply_length = std::snprintf(reply, sizeof reply, "ok %lu\n", served);
    ::sendto(sock, reply, static_cast<size_t>(reply_length), 0, (struct sockaddr *)&peer,
             peer_length);
    std::fprintf(stderr, "event=request n=%lu bytes=%zd\n", served, n);
  }

  // The stages are synchronous, so the dispatch() that began the stop has normally finished it;
  // this waits out any stage that is not.
  while (ctl.state() == gs::controller_state::stopping) {
    struct pollfd p = {ctl.fd(), POLLIN, 0};
    ::poll(&p, 1, ctl.next_timeout_ms());
    ctl.dispatch();
  }
  ctl.exit_process(); // 0 for SIGTERM (1 if the flush failed); for SIGINT, dies of SIGINT
}
