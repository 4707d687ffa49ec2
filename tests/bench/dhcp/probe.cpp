// A DHCP probe for measuring how long a server is unavailable across a restart.
//
//   gsdhcp_bench_probe --server IP --relay IP [--clients N] [--retransmit-ms MS] [--gap-ms MS]
//                      [--ready-after N] [--max-wait-s S]
//
// It acts as a relay agent (giaddr = --relay, bound to RELAY:67, where servers send relayed
// replies) for N simulated clients and runs one full DORA exchange after another, cycling
// through the clients, --gap-ms apart. A message with no answer is sent again every
// --retransmit-ms, with the same transaction id, so an outage is seen to within that resolution
// and the first ACK of a restarted server is caught as soon as it can answer.
//
// stdout (a file, so that writing never delays the probe): one line per ACK,
//     ack t_us=UNIX_MICROSECONDS client=I yiaddr=A exchange_us=DURATION
// with the wall-clock time the ACK was received (the driver compares it with its own
// $EPOCHREALTIME readings) and how long the whole DORA took, retransmissions included.
// stderr: logfmt events; `event=steady` once --ready-after ACKs have been received.
//
// Signals, through gracefulstop: SIGTERM/SIGINT stop the probe; SIGUSR1 means "the server was
// restarted": the probe exits (status 0) at the next ACK, or with status 1 if none comes within
// --max-wait-s.
#include <gracefulstop/stop.hpp>

#include "command_line.hpp"
#include "packet.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace gs = gracefulstop;
using gsdhcpd::dhcp_packet;
using gsdhcpd::ipv4;
using gsdhcpd::message_type;
using steady = std::chrono::steady_clock;

namespace {

struct arguments {
  ipv4 server;
  ipv4 relay;
  unsigned clients = 4;
  int retransmit_ms = 2;
  int gap_ms = 1;
  unsigned ready_after = 20;
  int max_wait_s = 30;
};

const gsdhcp_bench::command_line command_line("gsdhcp_bench_probe --server IP --relay IP "
                                              "[--clients N] [--retransmit-ms MS] [--gap-ms MS] "
                                              "[--ready-after N] [--max-wait-s S]");

arguments parse_arguments(int argc, char **argv) {
  arguments a;
  bool have_server = false, have_relay = false;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) command_line.error(name + ": missing value");
    const std::string value = argv[++i];
    if (name == "--server" || name == "--relay") {
      auto address = gsdhcpd::parse_ipv4(value);
      if (!address) command_line.error(name + ": not an IPv4 address: '" + value + "'");
      (name == "--server" ? a.server : a.relay) = *address;
      (name == "--server" ? have_server : have_relay) = true;
    } else if (name == "--clients") {
      a.clients = static_cast<unsigned>(command_line.number(name, value, 1, 65535));
    } else if (name == "--retransmit-ms") {
      a.retransmit_ms = static_cast<int>(command_line.number(name, value, 1, 10000));
    } else if (name == "--gap-ms") {
      a.gap_ms = static_cast<int>(command_line.number(name, value, 0, 10000));
    } else if (name == "--ready-after") {
      a.ready_after = static_cast<unsigned>(command_line.number(name, value, 1, 1000000));
    } else if (name == "--max-wait-s") {
      a.max_wait_s = static_cast<int>(command_line.number(name, value, 1, 3600));
    } else {
      command_line.error("unknown option '" + name + "'");
    }
  }
  if (!have_server || !have_relay) command_line.error("--server and --relay are required");
  return a;
}

std::int64_t unix_microseconds() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

sockaddr_in socket_address(ipv4 address, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(address.value);
  sa.sin_port = htons(port);
  return sa;
}

// One DORA exchange in progress.
struct exchange {
  unsigned client = 0;
  std::uint32_t xid = 0;
  message_type waiting_for = message_type::offer;
  ipv4 offered;
  ipv4 server_id;
  steady::time_point started;
  steady::time_point last_sent;
  std::vector<std::uint8_t> message; // what is resent on timeout
};

class probe {
public:
  explicit probe(const arguments &args) : args_(args) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
    // The relay port: every server sends replies for a relayed request to giaddr:67.
    const sockaddr_in local = socket_address(args.relay, 67);
    if (::bind(fd_, reinterpret_cast<const sockaddr *>(&local), sizeof local) != 0)
      throw std::system_error(errno, std::system_category(),
                              "bind " + gsdhcpd::to_string(args.relay) + ":67");
  }
  ~probe() { ::close(fd_); }
  probe(const probe &) = delete;
  probe &operator=(const probe &) = delete;

  int fd() const { return fd_; }

  // Milliseconds until on_timer() has something to do.
  int next_timeout_ms(steady::time_point now) const {
    const steady::time_point due = current_ ? current_->last_sent + retransmit() : next_start_;
    if (due <= now) return 0;
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count() + 1);
  }

  void on_timer(steady::time_point now) {
    if (!current_) {
      if (now >= next_start_) start(now);
      return;
    }
    if (now - current_->last_sent >= retransmit()) {
      ++retransmits_;
      send(now);
    }
  }

  // Reads every waiting datagram. Returns true if one of them was an ACK.
  bool on_readable(steady::time_point now) {
    bool acked = false;
    std::uint8_t buffer[gsdhcpd::max_message_size + 1];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return acked;
        // An ICMP error for an earlier send (server port closed while it restarts): expected.
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH) continue;
        throw std::system_error(errno, std::system_category(), "recv");
      }
      const auto parsed = gsdhcpd::parse_packet(buffer, static_cast<std::size_t>(n));
      if (!parsed.ok() || !current_ || parsed.packet.xid != current_->xid) continue;
      if (handle(parsed.packet, now)) acked = true;
    }
  }

  std::uint64_t acks() const { return acks_; }
  std::uint64_t naks() const { return naks_; }
  std::uint64_t retransmits() const { return retransmits_; }

private:
  std::chrono::milliseconds retransmit() const {
    return std::chrono::milliseconds(args_.retransmit_ms);
  }

  dhcp_packet base_message(message_type type) const {
    dhcp_packet p;
    p.op = gsdhcpd::op_request;
    p.xid = current_->xid;
    p.giaddr = args_.relay;
    p.hops = 1;
    // 02:... is a locally administered prefix that none of the other traffic uses.
    p.chaddr[0] = 0x02;
    p.chaddr[1] = 0x01;
    p.chaddr[4] = static_cast<std::uint8_t>(current_->client >> 8);
    p.chaddr[5] = static_cast<std::uint8_t>(current_->client);
    p.options.type = type;
    return p;
  }

  void start(steady::time_point now) {
    current_ = exchange{};
    current_->client = next_client_;
    next_client_ = (next_client_ + 1) % args_.clients;
    current_->xid = static_cast<std::uint32_t>(0x9b000000u + (++exchanges_ & 0xffffffu));
    current_->started = now;
    current_->waiting_for = message_type::offer;
    current_->message = gsdhcpd::serialize(base_message(message_type::discover));
    send(now);
  }

  void send(steady::time_point now) {
    const sockaddr_in to = socket_address(args_.server, 67);
    // A refused or dropped send is what a restart looks like; the retransmission covers it.
    (void)::sendto(fd_, current_->message.data(), current_->message.size(), 0,
                   reinterpret_cast<const sockaddr *>(&to), sizeof to);
    current_->last_sent = now;
  }

  bool handle(const dhcp_packet &reply, steady::time_point now) {
    if (reply.op != gsdhcpd::op_reply || !reply.options.type) return false;
    const message_type type = *reply.options.type;
    if (type == message_type::nak) {
      // Start over with a DISCOVER, as a client would.
      ++naks_;
      std::fprintf(stderr, "event=nak client=%u\n", current_->client);
      current_.reset();
      next_start_ = now;
      return false;
    }
    if (type != current_->waiting_for) return false; // a late duplicate of an earlier reply
    if (type == message_type::offer) {
      current_->offered = reply.yiaddr;
      current_->server_id = reply.options.server_id.value_or(args_.server);
      dhcp_packet request = base_message(message_type::request);
      request.options.requested_ip = current_->offered;
      request.options.server_id = current_->server_id;
      current_->message = gsdhcpd::serialize(request);
      current_->waiting_for = message_type::ack;
      send(now);
      return false;
    }
    ++acks_;
    const auto took =
        std::chrono::duration_cast<std::chrono::microseconds>(now - current_->started).count();
    std::printf("ack t_us=%" PRId64 " client=%u yiaddr=%s exchange_us=%lld\n", unix_microseconds(),
                current_->client, gsdhcpd::to_string(reply.yiaddr).c_str(),
                static_cast<long long>(took));
    std::fflush(stdout);
    if (acks_ == args_.ready_after) std::fprintf(stderr, "event=steady acks=%" PRIu64 "\n", acks_);
    current_.reset();
    next_start_ = now + std::chrono::milliseconds(args_.gap_ms);
    return true;
  }

  arguments args_;
  int fd_ = -1;
  std::optional<exchange> current_;
  steady::time_point next_start_{};
  unsigned next_client_ = 0;
  std::uint64_t exchanges_ = 0;
  std::uint64_t acks_ = 0, naks_ = 0, retransmits_ = 0;
};

} // namespace

int main(int argc, char **argv) try {
  const arguments args = parse_arguments(argc, argv);
  probe p(args);

  gs::stop_controller::options options;
  options.on_event = [](const gs::event &e) {
    std::fprintf(stderr, "%s\n", gs::to_logfmt(e).c_str());
  };
  gs::stop_controller ctl(options);
  // SIGUSR1: the server under test was restarted; finish at the next ACK.
  std::optional<steady::time_point> restarted;
  ctl.set_policy(SIGUSR1, gs::signal_policy::callback([&](const gs::signal_event &) {
                   // Whatever the old server sent before it died is already queued: read it
                   // first, so that only an ACK of the new one counts.
                   p.on_readable(steady::now());
                   restarted = steady::now();
                 }));
  ctl.install();
  std::fprintf(stderr, "event=ready relay=%s server=%s clients=%u\n",
               gsdhcpd::to_string(args.relay).c_str(), gsdhcpd::to_string(args.server).c_str(),
               args.clients);

  int status = 0;
  while (ctl.state() != gs::controller_state::stopped) {
    const steady::time_point now = steady::now();
    int timeout = p.next_timeout_ms(now);
    const int ctl_timeout = ctl.next_timeout_ms();
    if (ctl_timeout >= 0 && ctl_timeout < timeout) timeout = ctl_timeout;
    pollfd fds[2] = {{ctl.fd(), POLLIN, 0}, {p.fd(), POLLIN, 0}};
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR)
      throw std::system_error(errno, std::system_category(), "poll");
    ctl.dispatch();
    if (ctl.stop_requested()) continue;
    const bool was_restarted = restarted.has_value();
    if ((fds[1].revents & POLLIN) && p.on_readable(steady::now()) && was_restarted) break;
    if (was_restarted && steady::now() - *restarted > std::chrono::seconds(args.max_wait_s)) {
      std::fprintf(stderr, "event=no-ack-after-restart waited_s=%d\n", args.max_wait_s);
      status = 1;
      break;
    }
    p.on_timer(steady::now());
  }
  std::fprintf(stderr, "event=stopped acks=%" PRIu64 " naks=%" PRIu64 " retransmits=%" PRIu64 "\n",
               p.acks(), p.naks(), p.retransmits());
  if (ctl.state() == gs::controller_state::stopped) ctl.exit_process();
  return status;
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 2;
}
