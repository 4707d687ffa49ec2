// The socket layer and the batch loop over loopback, with a fake relay agent standing in for
// the clients, as perfdhcp does. Readiness is awaited with poll(), never with sleeps.
#include "server_fixture.hpp"
#include "service.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace gsdhcpd;
using dhcpd_test::ip;
using dhcpd_test::t0;
using dhcpd_test::temp_dir;

namespace {

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

// A relay agent on 127.0.0.2, on the server's port like a real one.
class fake_relay {
public:
  explicit fake_relay(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(ip("127.0.0.2").value);
    sa.sin_port = htons(port);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
    server_ = sa;
    server_.sin_addr.s_addr = htonl(ip("127.0.0.1").value);
  }
  ~fake_relay() { ::close(fd_); }

  void send_bytes(const std::vector<std::uint8_t> &bytes) {
    REQUIRE(::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&server_),
                     sizeof server_) == static_cast<ssize_t>(bytes.size()));
  }
  void send(dhcp_packet p) {
    p.giaddr = ip("127.0.0.2");
    p.hops = 1;
    send_bytes(serialize(p));
  }
  dhcp_packet receive() {
    REQUIRE(wait_readable(fd_));
    std::vector<std::uint8_t> buffer(max_message_size);
    ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    REQUIRE(n > 0);
    parse_result parsed = parse_packet(buffer.data(), static_cast<std::size_t>(n));
    REQUIRE(parsed.ok());
    return parsed.packet;
  }

private:
  int fd_ = -1;
  sockaddr_in server_{};
};

dhcp_packet client_message(message_type type, std::uint8_t id) {
  dhcp_packet p;
  p.xid = 0x5000u + id;
  p.chaddr = {0x02, 0, 0, 0, 0, id};
  p.options.type = type;
  return p;
}

struct loopback_server {
  temp_dir dir{"socket"};
  dhcp_socket socket = dhcp_socket::bind_address(endpoint{ip("127.0.0.1"), 0});
  std::uint16_t port = socket.local_endpoint().port;
  lease_db db{dir.path()};
  dhcp_server server{settings(port), db};
  dhcp_service service{socket, server, db, nullptr, t0};

  static server_settings settings(std::uint16_t port) {
    server_settings s;
    s.server_id = ip("127.0.0.1");
    s.subnet = *parse_subnet("127.0.0.0/24");
    s.pool_first = ip("127.0.0.100");
    s.pool_last = ip("127.0.0.199");
    s.server_port = port;
    s.client_port = static_cast<std::uint16_t>(port + 1);
    return s;
  }
  // Handles datagrams until `count` have been handled.
  void serve(std::size_t count) {
    std::size_t handled = 0;
    while (handled < count) {
      REQUIRE(wait_readable(socket.fd()));
      handled += service.on_readable(t0);
    }
  }
};

} // namespace

TEST_CASE("a socket bound to ADDR:0 reports its port and reads nothing while idle") {
  dhcp_socket s = dhcp_socket::bind_address(endpoint{ip("127.0.0.1"), 0});
  CHECK(s.local_endpoint().address == ip("127.0.0.1"));
  CHECK(s.local_endpoint().port != 0);
  std::size_t calls = 0;
  CHECK(s.on_readable([&](const std::uint8_t *, std::size_t, const arrival &) { ++calls; }) == 0);
  CHECK(calls == 0);
}

TEST_CASE("binding an address in use fails with a clear message") {
  dhcp_socket first = dhcp_socket::bind_address(endpoint{ip("127.0.0.1"), 0});
  endpoint taken = first.local_endpoint();
  CHECK_THROWS_WITH(dhcp_socket::bind_address(taken),
                    "listen " + to_string(taken) + ": bind: Address already in use");
}

TEST_CASE("a relayed DORA over loopback: replies go to the relay, the lease is on disk") {
  loopback_server s;
  fake_relay relay(s.port);

  relay.send(client_message(message_type::discover, 1));
  s.serve(1);
  dhcp_packet offer = relay.receive();
  CHECK(offer.options.type == message_type::offer);
  CHECK(offer.xid == 0x5001u);
  CHECK(offer.giaddr == ip("127.0.0.2"));
  CHECK(offer.yiaddr == ip("127.0.0.100"));

  dhcp_packet request = client_message(message_type::request, 1);
  request.options.requested_ip = offer.yiaddr;
  request.options.server_id = ip("127.0.0.1");
  relay.send(request);
  s.serve(1);
  dhcp_packet ack = relay.receive();
  CHECK(ack.options.type == message_type::ack);
  CHECK(ack.yiaddr == offer.yiaddr);

  // By the time the ACK was sent, the lease was durable: another reader sees it.
  lease_check check = check_leases(s.dir.path(), t0);
  CHECK(check.ok);
  CHECK(check.summary == "leases=1 active=1 journal_records=1 snapshot_seq=0");
  CHECK(s.socket.stats().received == 2);
  CHECK(s.socket.stats().sent == 2);
}

TEST_CASE("a burst of requests costs one commit per batch") {
  loopback_server s;
  fake_relay relay(s.port);
  const int clients = 40;
  for (int i = 1; i <= clients; ++i)
    relay.send(client_message(message_type::discover, static_cast<std::uint8_t>(i)));
  s.serve(clients);
  std::vector<ipv4> offered(clients + 1);
  for (int i = 1; i <= clients; ++i) {
    dhcp_packet offer = relay.receive();
    offered[offer.chaddr[5]] = offer.yiaddr;
  }
  std::uint64_t batches_before = s.service.stats().batches;
  CHECK(s.service.stats().commits == 0); // offers need no flush

  for (int i = 1; i <= clients; ++i) {
    dhcp_packet request = client_message(message_type::request, static_cast<std::uint8_t>(i));
    request.options.requested_ip = offered[i];
    request.options.server_id = ip("127.0.0.1");
    relay.send(request);
  }
  s.serve(clients);
  for (int i = 1; i <= clients; ++i)
    CHECK(relay.receive().options.type == message_type::ack);
  std::uint64_t batches = s.service.stats().batches - batches_before;
  CHECK(s.service.stats().commits == batches);
  CHECK(batches <= clients / 2); // 64 per batch at most, so normally 1; never one per request
  CHECK(check_leases(s.dir.path(), t0).summary ==
        "leases=40 active=40 journal_records=40 snapshot_seq=0");

  // A graceful stop's last step folds the journal into the snapshot.
  s.service.flush();
  CHECK(check_leases(s.dir.path(), t0).summary ==
        "leases=40 active=40 journal_records=0 snapshot_seq=40");
}

TEST_CASE("malformed and oversized datagrams are counted, not answered") {
  loopback_server s;
  fake_relay relay(s.port);
  relay.send_bytes(std::vector<std::uint8_t>(10, 1));
  relay.send_bytes(std::vector<std::uint8_t>(max_message_size + 500, 0));
  s.serve(2);
  const server_stats &stats = s.server.stats();
  CHECK(stats.malformed[static_cast<std::size_t>(parse_error::truncated_header)] == 1);
  CHECK(stats.malformed[static_cast<std::size_t>(parse_error::oversized)] == 1);
  CHECK(s.socket.stats().sent == 0);
}

TEST_CASE("the timer compacts the journal when it is long or old") {
  loopback_server s;
  service_options options;
  options.snapshot_after_records = 3;
  options.snapshot_interval = 600;
  dhcp_service service(s.socket, s.server, s.db, nullptr, t0, options);
  lease l;
  l.address = ip("127.0.0.150");
  l.ends = t0 + 100;
  s.db.stage(l);
  s.db.commit();
  service.on_timer(t0 + 10); // one record, young: nothing to do
  CHECK(service.stats().snapshots == 0);
  service.on_timer(t0 + 600);
  CHECK(service.stats().snapshots == 1);
  CHECK(s.db.journal_records() == 0);
  service.on_timer(t0 + 5000); // empty journal: nothing to do however old
  CHECK(service.stats().snapshots == 1);
  for (int i = 0; i < 3; ++i)
    s.db.stage(l);
  s.db.commit();
  service.on_timer(t0 + 5001);
  CHECK(service.stats().snapshots == 2);
}

TEST_CASE("interface mode binds to a device and finds its address") {
  CHECK(interface_address("lo") == ip("127.0.0.1"));
  CHECK_FALSE(interface_address("no-such-if0"));
  if (geteuid() != 0) {
    WARN("skipped binding to a device: needs root");
    return;
  }
  dhcp_socket s = dhcp_socket::bind_interface("lo", 0);
  CHECK(s.local_endpoint().address.is_zero());
  CHECK_THROWS_WITH(dhcp_socket::bind_interface("no-such-if0", 0),
                    "interface no-such-if0: setsockopt: No such device");
}

TEST_CASE("dropping privileges is permanent") {
  CHECK_THROWS_WITH(drop_privileges("no-such-user-gsdhcpd"),
                    "user no-such-user-gsdhcpd: no such user");
  passwd *nobody = getpwnam("nobody");
  if (geteuid() != 0 || !nobody) {
    WARN("skipped: needs root and a 'nobody' user");
    return;
  }
  uid_t expected = nobody->pw_uid;
  // In a child, so that this test process keeps its privileges.
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      drop_privileges("nobody");
    } catch (...) {
      _exit(2);
    }
    bool dropped = getuid() == expected && geteuid() == expected && setuid(0) != 0;
    _exit(dropped ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
