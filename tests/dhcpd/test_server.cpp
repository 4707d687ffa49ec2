// Server logic: each client state of RFC 2131 §4.3, address allocation, reply addressing (§4.1)
// and the drop counters, driven with packets and a clock, no sockets.
#include "server.hpp"
#include "server_fixture.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <set>

using namespace gsdhcpd;
using dhcpd_test::ip;
using dhcpd_test::t0;
using dhcpd_test::temp_dir;

namespace {

server_settings test_settings() {
  server_settings s;
  s.server_id = ip("10.0.0.1");
  s.subnet = *parse_subnet("10.0.0.0/24");
  s.pool_first = ip("10.0.0.10");
  s.pool_last = ip("10.0.0.14");
  s.router = ip("10.0.0.1");
  s.dns = {ip("10.0.0.1"), ip("9.9.9.9")};
  s.lease_time = 3600;
  return s;
}

// A client and the messages it sends, by RFC 2131 §4.4's rules for each state.
struct client {
  std::uint8_t id;
  std::vector<std::uint8_t> client_id; // empty: identified by MAC

  dhcp_packet base(message_type type) const {
    dhcp_packet p;
    p.xid = 0x1000u + id;
    p.chaddr = {0x02, 0, 0, 0, 0, id};
    p.options.type = type;
    p.options.client_id = client_id;
    return p;
  }
  dhcp_packet discover() const { return base(message_type::discover); }
  dhcp_packet select(ipv4 address, ipv4 server = ip("10.0.0.1")) const {
    dhcp_packet p = base(message_type::request);
    p.options.requested_ip = address;
    p.options.server_id = server;
    return p;
  }
  dhcp_packet init_reboot(ipv4 address) const {
    dhcp_packet p = base(message_type::request);
    p.options.requested_ip = address;
    return p;
  }
  dhcp_packet renew(ipv4 address) const {
    dhcp_packet p = base(message_type::request);
    p.ciaddr = address;
    return p;
  }
  dhcp_packet release(ipv4 address) const {
    dhcp_packet p = base(message_type::release);
    p.ciaddr = address;
    p.options.server_id = ip("10.0.0.1");
    return p;
  }
  dhcp_packet decline(ipv4 address) const {
    dhcp_packet p = base(message_type::decline);
    p.options.requested_ip = address;
    p.options.server_id = ip("10.0.0.1");
    return p;
  }
};

struct fixture {
  temp_dir dir{"server"};
  std::unique_ptr<lease_db> db = std::make_unique<lease_db>(dir.path());
  std::unique_ptr<dhcp_server> server = std::make_unique<dhcp_server>(test_settings(), *db);
  arrival from{ip("0.0.0.0"), 68, ipv4_broadcast};

  decision send(const dhcp_packet &p, std::int64_t now = t0) {
    decision d = server->handle(p, from, now);
    db->commit();
    return d;
  }
  // DISCOVER + REQUEST; returns the address acknowledged.
  ipv4 bind(const client &c, std::int64_t now = t0) {
    decision offer = send(c.discover(), now);
    REQUIRE(offer.reply);
    REQUIRE(offer.reply->packet.options.type == message_type::offer);
    decision ack = send(c.select(offer.reply->packet.yiaddr), now);
    REQUIRE(ack.reply);
    REQUIRE(ack.reply->packet.options.type == message_type::ack);
    return ack.reply->packet.yiaddr;
  }
  void restart() {
    server.reset();
    db.reset();
    db = std::make_unique<lease_db>(dir.path());
    server = std::make_unique<dhcp_server>(test_settings(), *db);
  }
};

message_type type_of(const decision &d) {
  REQUIRE(d.reply);
  return *d.reply->packet.options.type;
}

} // namespace

TEST_CASE("DISCOVER, OFFER, REQUEST, ACK with the configured options") {
  fixture f;
  client c{1, {}};
  decision offer = f.server->handle(c.discover(), f.from, t0);
  REQUIRE(offer.reply);
  const dhcp_packet &o = offer.reply->packet;
  CHECK(o.op == op_reply);
  CHECK(o.xid == 0x1001u);
  CHECK(o.chaddr == c.discover().chaddr);
  CHECK(o.yiaddr == ip("10.0.0.10"));
  CHECK(o.options.type == message_type::offer);
  CHECK(o.options.server_id == ip("10.0.0.1"));
  CHECK(o.options.lease_time == std::optional<std::uint32_t>(3600));
  CHECK(o.options.renewal_time == std::optional<std::uint32_t>(1800));
  CHECK(o.options.rebinding_time == std::optional<std::uint32_t>(3150));
  CHECK(o.options.subnet_mask == ip("255.255.255.0"));
  CHECK(o.options.routers == std::vector<ipv4>{ip("10.0.0.1")});
  CHECK(o.options.dns_servers == std::vector<ipv4>{ip("10.0.0.1"), ip("9.9.9.9")});
  CHECK_FALSE(offer.persisted); // offers are not written to disk
  CHECK(offer.reply->wait_for_seq == 0);

  decision ack = f.server->handle(c.select(o.yiaddr), f.from, t0 + 2);
  REQUIRE(ack.reply);
  CHECK(ack.reply->packet.options.type == message_type::ack);
  CHECK(ack.reply->packet.yiaddr == ip("10.0.0.10"));
  CHECK(ack.reply->packet.options.lease_time == std::optional<std::uint32_t>(3600));
  REQUIRE(ack.persisted);
  CHECK(ack.persisted->address == ip("10.0.0.10"));
  CHECK(ack.persisted->state == lease_state::active);
  CHECK(ack.persisted->starts == t0 + 2);
  CHECK(ack.persisted->ends == t0 + 2 + 3600);
  CHECK(ack.persisted->hardware.bytes[5] == 1);
  // The ACK must wait for the lease to be durable.
  CHECK(ack.reply->wait_for_seq > f.db->committed_seq());
  f.db->commit();
  CHECK(ack.reply->wait_for_seq <= f.db->committed_seq());
}

TEST_CASE("an offered address is held, so two clients discovering at once get different ones") {
  fixture f;
  client a{1, {}}, b{2, {}};
  decision offer_a = f.send(a.discover());
  decision offer_b = f.send(b.discover());
  REQUIRE((offer_a.reply && offer_b.reply));
  CHECK(offer_a.reply->packet.yiaddr != offer_b.reply->packet.yiaddr);
  // A repeated DISCOVER gets the same offer again.
  CHECK(f.send(a.discover(), t0 + 5).reply->packet.yiaddr == offer_a.reply->packet.yiaddr);
  // B cannot take A's offered address by asking for it.
  CHECK(type_of(f.send(b.init_reboot(offer_a.reply->packet.yiaddr), t0 + 6)) == message_type::nak);
  // Once the hold runs out, the address is free for others.
  client c{3, {}};
  dhcp_packet wants = c.discover();
  wants.options.requested_ip = offer_a.reply->packet.yiaddr;
  CHECK(f.send(wants, t0 + 5 + 61).reply->packet.yiaddr == offer_a.reply->packet.yiaddr);
}

TEST_CASE("SELECTING: a REQUEST for another server is dropped and frees our offer") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 offered = f.send(a.discover()).reply->packet.yiaddr;
  decision d = f.send(a.select(offered, ip("10.0.0.99")));
  CHECK_FALSE(d.reply);
  CHECK(d.dropped == drop_reason::other_server);
  CHECK(f.server->stats().dropped[static_cast<std::size_t>(drop_reason::other_server)] == 1);
  CHECK(f.send(b.discover()).reply->packet.yiaddr == offered);
}

TEST_CASE("SELECTING: a REQUEST for an address held by someone else gets a NAK") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 bound = f.bind(a);
  decision nak = f.send(b.select(bound));
  CHECK(type_of(nak) == message_type::nak);
  CHECK(nak.reply->packet.yiaddr.is_zero());
  CHECK(nak.reply->packet.options.message == "10.0.0.10 is not available");
  CHECK(nak.reply->delivery == delivery::broadcast);
  CHECK_FALSE(nak.persisted);
}

TEST_CASE("INIT-REBOOT: ACK for its own address, NAK for a wrong network or someone else's") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 bound = f.bind(a);
  decision ack = f.send(a.init_reboot(bound), t0 + 100);
  CHECK(type_of(ack) == message_type::ack);
  CHECK(ack.persisted->ends == t0 + 100 + 3600);

  decision wrong_net = f.send(a.init_reboot(ip("192.168.1.7")));
  CHECK(type_of(wrong_net) == message_type::nak);
  CHECK(wrong_net.reply->packet.options.message == "192.168.1.7 is not on network 10.0.0.0/24");

  CHECK(type_of(f.send(b.init_reboot(bound))) == message_type::nak);
  // In our subnet but outside the pool: not ours to give.
  CHECK(type_of(f.send(b.init_reboot(ip("10.0.0.200")))) == message_type::nak);
  // Authoritative: a free pool address is granted to a client we have no record of.
  CHECK(type_of(f.send(b.init_reboot(ip("10.0.0.13")))) == message_type::ack);
}

TEST_CASE("RENEWING and REBINDING extend the lease and reply to ciaddr") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 bound = f.bind(a);
  decision renewed = f.send(a.renew(bound), t0 + 1800);
  CHECK(type_of(renewed) == message_type::ack);
  CHECK(renewed.reply->packet.ciaddr == bound);
  CHECK(renewed.reply->packet.yiaddr == bound);
  CHECK(renewed.reply->delivery == delivery::unicast_ciaddr);
  CHECK(renewed.reply->address == bound);
  CHECK(renewed.reply->port == 68);
  CHECK(f.db->table().find(bound)->ends == t0 + 1800 + 3600);

  dhcp_packet rebinding = a.renew(bound);
  rebinding.flags = flag_broadcast; // what some clients do in REBINDING; ciaddr still wins
  decision rebound = f.send(rebinding, t0 + 3200);
  CHECK(type_of(rebound) == message_type::ack);
  CHECK(rebound.reply->delivery == delivery::unicast_ciaddr);

  decision stolen = f.send(b.renew(bound), t0 + 3300);
  CHECK(type_of(stolen) == message_type::nak);
  CHECK(stolen.reply->delivery == delivery::broadcast); // a NAK never goes to ciaddr
}

TEST_CASE("REQUEST without any address is dropped") {
  fixture f;
  decision d = f.send(client{1, {}}.base(message_type::request));
  CHECK(d.dropped == drop_reason::missing_address);
}

TEST_CASE("RELEASE frees the address, and the client gets it back when it returns") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 bound = f.bind(a);
  CHECK(f.send(b.release(bound)).dropped == drop_reason::not_clients_lease);
  decision released = f.send(a.release(bound), t0 + 60);
  CHECK_FALSE(released.reply);
  REQUIRE(released.persisted);
  CHECK(released.persisted->state == lease_state::released);
  CHECK(f.db->table().find(bound)->state == lease_state::released);
  CHECK(f.send(a.discover(), t0 + 120).reply->packet.yiaddr == bound);
}

TEST_CASE("a returning client gets its old address even after expiry, unless it was reused") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 first = f.bind(a);
  std::int64_t later = t0 + 10 * 3600;
  CHECK(f.send(a.discover(), later).reply->packet.yiaddr == first);

  // Fill the pool so that the expired address is the only one left, and let B take it.
  fixture g;
  ipv4 old = g.bind(a);
  for (std::uint8_t i = 10; i < 14; ++i)
    g.bind(client{i, {}}, t0 + 4000);
  CHECK(g.bind(b, t0 + 4000) == old); // the pool is full, so A's expired lease is reused
  CHECK(g.send(a.discover(), t0 + 4001).dropped == drop_reason::pool_exhausted);
}

TEST_CASE("expired leases are reused oldest first when the pool has no unused address") {
  fixture f;
  std::vector<ipv4> bound;
  for (std::uint8_t i = 1; i <= 5; ++i)
    bound.push_back(f.bind(client{i, {}}, t0 + i * 100)); // expire in this order
  CHECK(f.send(client{9, {}}.discover(), t0 + 1000).dropped == drop_reason::pool_exhausted);
  std::int64_t all_expired = t0 + 10000;
  CHECK(f.send(client{9, {}}.discover(), all_expired).reply->packet.yiaddr == bound[0]);
  CHECK(f.send(client{10, {}}.discover(), all_expired).reply->packet.yiaddr == bound[1]);
}

TEST_CASE("DECLINE quarantines the address, and only its holder may decline it") {
  fixture f;
  client a{1, {}}, b{2, {}};
  ipv4 bound = f.bind(a);
  CHECK(f.send(b.decline(bound)).dropped == drop_reason::not_clients_lease);
  decision declined = f.send(a.decline(bound), t0 + 10);
  CHECK_FALSE(declined.reply);
  REQUIRE(declined.persisted);
  CHECK(declined.persisted->state == lease_state::declined);
  CHECK(declined.persisted->ends == t0 + 10 + 86400);

  ipv4 next = f.send(a.discover(), t0 + 20).reply->packet.yiaddr;
  CHECK(next != bound);
  dhcp_packet wants = b.discover();
  wants.options.requested_ip = bound;
  CHECK(f.send(wants, t0 + 30).reply->packet.yiaddr != bound);
  CHECK(type_of(f.send(b.init_reboot(bound), t0 + 30)) == message_type::nak);

  f.restart(); // the quarantine is on disk
  CHECK(type_of(f.send(b.init_reboot(bound), t0 + 40)) == message_type::nak);
  CHECK(type_of(f.send(b.init_reboot(bound), t0 + 10 + 86400)) == message_type::ack);
}

TEST_CASE("a client may decline an address it was only offered") {
  fixture f;
  client a{1, {}};
  ipv4 offered = f.send(a.discover()).reply->packet.yiaddr;
  CHECK(f.send(a.decline(offered)).persisted);
  CHECK(f.send(a.discover()).reply->packet.yiaddr != offered);
}

TEST_CASE("INFORM gets configuration but no lease") {
  fixture f;
  client a{1, {}};
  dhcp_packet inform = a.base(message_type::inform);
  inform.ciaddr = ip("10.0.0.77");
  decision d = f.send(inform);
  CHECK(type_of(d) == message_type::ack);
  CHECK(d.reply->packet.yiaddr.is_zero());
  CHECK(d.reply->packet.ciaddr == ip("10.0.0.77"));
  CHECK_FALSE(d.reply->packet.options.lease_time);
  CHECK_FALSE(d.reply->packet.options.renewal_time);
  CHECK(d.reply->packet.options.routers == std::vector<ipv4>{ip("10.0.0.1")});
  CHECK(d.reply->delivery == delivery::unicast_ciaddr);
  CHECK(d.reply->address == ip("10.0.0.77"));
  CHECK_FALSE(d.persisted);
  CHECK(f.db->table().size() == 0);

  // Without ciaddr the reply goes where the request came from.
  f.from.source = ip("10.0.0.78");
  d = f.send(a.base(message_type::inform));
  CHECK(d.reply->address == ip("10.0.0.78"));
  f.from.source = ipv4{};
  CHECK(f.send(a.base(message_type::inform)).dropped == drop_reason::missing_address);
}

TEST_CASE("the client id identifies a client when present, the MAC address otherwise") {
  fixture f;
  client with_id{1, {0xff, 'h', 'o', 's', 't'}};
  ipv4 bound = f.bind(with_id);
  client same_id_new_nic{2, {0xff, 'h', 'o', 's', 't'}};
  CHECK(f.send(same_id_new_nic.discover()).reply->packet.yiaddr == bound);
  client same_nic_no_id{1, {}};
  CHECK(f.send(same_nic_no_id.discover()).reply->packet.yiaddr != bound);
  // A client id equal to another client's MAC bytes is still a different client.
  ipv4 by_mac = f.bind(client{3, {}});
  client mimic{4, {1, 0x02, 0, 0, 0, 0, 3}};
  CHECK(f.send(mimic.discover()).reply->packet.yiaddr != by_mac);
}

TEST_CASE("a client moving to another address frees its old one") {
  fixture f;
  client a{1, {}};
  ipv4 old = f.bind(a);
  CHECK(type_of(f.send(a.init_reboot(ip("10.0.0.14")), t0 + 5)) == message_type::ack);
  CHECK(f.db->table().find(old)->state == lease_state::released);
  CHECK(f.db->table().find_client(client_key({}, f.db->table().find(old)->hardware))->address ==
        ip("10.0.0.14"));
}

TEST_CASE("replies are addressed as RFC 2131 section 4.1 says") {
  fixture f;
  client a{1, {}};

  SECTION("relayed: to the relay's server port, whatever else is set") {
    dhcp_packet p = a.discover();
    p.giaddr = ip("10.0.0.2");
    p.flags = flag_broadcast;
    decision d = f.send(p);
    CHECK(d.reply->delivery == delivery::relay);
    CHECK(d.reply->address == ip("10.0.0.2"));
    CHECK(d.reply->port == 67);
    CHECK(d.reply->packet.giaddr == ip("10.0.0.2"));
  }
  SECTION("relayed NAK: to the relay, with the broadcast bit set for it") {
    dhcp_packet p = a.init_reboot(ip("192.168.0.5"));
    p.giaddr = ip("10.0.0.2");
    decision d = f.send(p);
    CHECK(type_of(d) == message_type::nak);
    CHECK(d.reply->delivery == delivery::relay);
    CHECK(d.reply->packet.broadcast_flag());
  }
  SECTION("relayed from a network we do not serve: dropped") {
    dhcp_packet p = a.discover();
    p.giaddr = ip("172.16.0.1");
    CHECK(f.send(p).dropped == drop_reason::unknown_network);
  }
  SECTION("broadcast flag: broadcast to the client port") {
    dhcp_packet p = a.discover();
    p.flags = flag_broadcast;
    decision d = f.send(p);
    CHECK(d.reply->delivery == delivery::broadcast);
    CHECK(d.reply->address == ipv4_broadcast);
    CHECK(d.reply->port == 68);
    CHECK(d.reply->packet.broadcast_flag());
  }
  SECTION("no flag, no ciaddr: to yiaddr") {
    decision d = f.send(a.discover());
    CHECK(d.reply->delivery == delivery::unicast_yiaddr);
    CHECK(d.reply->address == d.reply->packet.yiaddr);
  }
}

TEST_CASE("the client id and relay agent information are echoed") {
  fixture f;
  client a{1, {0, 'x', 'y'}};
  dhcp_packet p = a.discover();
  p.giaddr = ip("10.0.0.2");
  p.options.relay_agent_info = std::vector<std::uint8_t>{1, 3, 'e', 't', 'h'};
  decision d = f.send(p);
  CHECK(d.reply->packet.options.client_id == a.client_id);
  CHECK(d.reply->packet.options.relay_agent_info == p.options.relay_agent_info);
}

TEST_CASE("clients the lease file could not identify are dropped") {
  fixture f;
  client a{1, {}};
  dhcp_packet p = a.discover();
  p.htype = 99;
  CHECK(f.send(p).dropped == drop_reason::unsupported_hardware);
  p.hlen = 0;
  p.htype = 1;
  CHECK(f.send(p).dropped == drop_reason::unsupported_hardware);
  p.options.client_id = {1, 2, 3};
  CHECK(f.send(p).reply);
}

TEST_CASE("leases outlive a restart of server and database") {
  fixture f;
  client a{1, {}};
  ipv4 bound = f.bind(a);
  f.restart();
  CHECK(type_of(f.send(a.renew(bound), t0 + 100)) == message_type::ack);
  CHECK(f.send(client{2, {}}.discover(), t0 + 100).reply->packet.yiaddr != bound);
}

TEST_CASE("drops and malformed datagrams are counted by reason") {
  fixture f;
  std::vector<std::uint8_t> junk(100, 0);
  f.server->handle_datagram(junk.data(), junk.size(), f.from, t0);
  std::vector<std::uint8_t> bytes = serialize(client{1, {}}.discover());
  bytes[236] = 0;
  decision d = f.server->handle_datagram(bytes.data(), bytes.size(), f.from, t0);
  CHECK(d.dropped == drop_reason::malformed);

  dhcp_packet reply = client{1, {}}.discover();
  reply.op = op_reply;
  CHECK(f.send(reply).dropped == drop_reason::not_a_request);
  CHECK(f.send(client{1, {}}.base(message_type::offer)).dropped == drop_reason::server_message);
  dhcp_packet overloaded = client{1, {}}.discover();
  overloaded.overload_ignored = true;
  CHECK(f.send(overloaded).reply);

  const server_stats &s = f.server->stats();
  CHECK(s.received == 5);
  CHECK(s.malformed[static_cast<std::size_t>(parse_error::truncated_header)] == 1);
  CHECK(s.malformed[static_cast<std::size_t>(parse_error::bad_magic_cookie)] == 1);
  CHECK(s.dropped[static_cast<std::size_t>(drop_reason::malformed)] == 2);
  CHECK(s.to_string() ==
        "received=5 in.DHCPDISCOVER=1 in.DHCPOFFER=1 out.DHCPOFFER=1 dropped.malformed=2 "
        "dropped.not_a_request=1 dropped.server_message=1 malformed.truncated_header=1 "
        "malformed.bad_magic_cookie=1 overload_ignored=1");
}

TEST_CASE("the pool is handed out in full and no address twice") {
  fixture f;
  std::set<ipv4> seen;
  for (std::uint8_t i = 1; i <= 5; ++i)
    CHECK(seen.insert(f.bind(client{i, {}})).second);
  CHECK(seen.size() == 5);
  CHECK(*seen.begin() == ip("10.0.0.10"));
  CHECK(*seen.rbegin() == ip("10.0.0.14"));
  CHECK(f.send(client{6, {}}.discover()).dropped == drop_reason::pool_exhausted);
}

TEST_CASE("packets built in code without a message type or with a bad hlen are dropped") {
  fixture f;
  dhcp_packet p = client{1, {}}.discover();
  p.options.type.reset();
  CHECK(f.send(p).dropped == drop_reason::malformed);
  p = client{1, {}}.discover();
  p.hlen = 17;
  CHECK(f.send(p).dropped == drop_reason::malformed);
  CHECK(f.server->stats().malformed[static_cast<std::size_t>(parse_error::missing_message_type)] ==
        1);
  CHECK(f.server->stats().malformed[static_cast<std::size_t>(parse_error::bad_hlen)] == 1);
}

TEST_CASE("the stored hostname is capped at 255 bytes") {
  fixture f;
  client a{1, {}};
  ipv4 offered = f.send(a.discover()).reply->packet.yiaddr;
  dhcp_packet request = a.select(offered);
  request.options.hostname = std::string(1000, 'n');
  decision ack = f.send(request);
  REQUIRE(ack.persisted);
  CHECK(ack.persisted->hostname == std::string(255, 'n'));
}
