// DHCPv4 codec: wire layout, round trips, every parse error, and garbage that must not crash.
#include "packet.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace gsdhcpd;

namespace {

dhcp_packet sample_request() {
  dhcp_packet p;
  p.op = op_request;
  p.xid = 0x12345678;
  p.secs = 7;
  p.flags = flag_broadcast;
  p.ciaddr = *parse_ipv4("10.0.0.9");
  p.giaddr = *parse_ipv4("10.0.0.2");
  p.chaddr = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  p.options.type = message_type::request;
  p.options.requested_ip = *parse_ipv4("10.0.0.50");
  p.options.server_id = *parse_ipv4("10.0.0.1");
  p.options.client_id = {1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  p.options.parameter_request_list = {1, 3, 6, 51};
  p.options.hostname = "laptop";
  return p;
}

std::vector<std::uint8_t> header_only(std::uint8_t type) {
  dhcp_packet p;
  p.options.type = static_cast<message_type>(type);
  std::vector<std::uint8_t> bytes = serialize(p);
  bytes.resize(min_message_size); // cut every option, including 53
  return bytes;
}

// A message whose option area is exactly `options` (no end option added).
std::vector<std::uint8_t> with_options(std::vector<std::uint8_t> options) {
  std::vector<std::uint8_t> bytes = header_only(1);
  bytes.insert(bytes.end(), options.begin(), options.end());
  return bytes;
}

} // namespace

TEST_CASE("ipv4 text forms are parsed strictly") {
  CHECK(parse_ipv4("10.0.0.1")->value == 0x0A000001u);
  CHECK(parse_ipv4("255.255.255.255")->value == 0xFFFFFFFFu);
  CHECK(to_string(ipv4{0xC0A80101u}) == "192.168.1.1");
  for (const char *bad : {"", "10.0.0", "10.0.0.1.2", "10.0.0.256", "10.0.0.01", "a.b.c.d",
                          "10..0.1", "10.0.0.1 ", "-1.0.0.0", "10.0.0."})
    CHECK_FALSE(parse_ipv4(bad));
  std::string why;
  CHECK_FALSE(parse_subnet("10.0.0.5/24", &why));
  CHECK(why.find("host bits") != std::string::npos);
  auto net = parse_subnet("10.0.0.0/24");
  REQUIRE(net);
  CHECK(net->contains(*parse_ipv4("10.0.0.255")));
  CHECK_FALSE(net->contains(*parse_ipv4("10.0.1.0")));
  CHECK(to_string(net->broadcast()) == "10.0.0.255");
  CHECK(to_string(parse_subnet("0.0.0.0/0")->mask()) == "0.0.0.0");
  CHECK(parse_endpoint("127.0.0.1:6767")->port == 6767);
  CHECK_FALSE(parse_endpoint("127.0.0.1:0"));
  CHECK_FALSE(parse_endpoint("127.0.0.1:65536"));
  CHECK_FALSE(parse_endpoint("127.0.0.1"));
}

TEST_CASE("serialize puts fields where RFC 2131 says") {
  std::vector<std::uint8_t> bytes = serialize(sample_request());
  REQUIRE(bytes.size() >= min_reply_size);
  CHECK(bytes[0] == 1);                                              // op
  CHECK(bytes[1] == 1);                                              // htype
  CHECK(bytes[2] == 6);                                              // hlen
  CHECK((bytes[4] == 0x12 && bytes[5] == 0x34 && bytes[7] == 0x78)); // xid, network order
  CHECK((bytes[10] == 0x80 && bytes[11] == 0x00));                   // broadcast flag
  CHECK((bytes[12] == 10 && bytes[15] == 9));                        // ciaddr
  CHECK((bytes[24] == 10 && bytes[27] == 2));                        // giaddr
  CHECK((bytes[28] == 0xaa && bytes[33] == 0xff));                   // chaddr
  CHECK((bytes[236] == 99 && bytes[237] == 130 && bytes[238] == 83 && bytes[239] == 99));
  CHECK((bytes[240] == 53 && bytes[241] == 1 && bytes[242] == 3)); // message type comes first
}

TEST_CASE("a serialized packet parses back to the same fields") {
  dhcp_packet original = sample_request();
  original.options.routers = {*parse_ipv4("10.0.0.1"), *parse_ipv4("10.0.0.254")};
  original.options.dns_servers = {*parse_ipv4("9.9.9.9")};
  original.options.lease_time = 3600;
  original.options.renewal_time = 1800;
  original.options.rebinding_time = 3150;
  original.options.subnet_mask = *parse_ipv4("255.255.255.0");
  original.options.message = "no";
  original.options.relay_agent_info = std::vector<std::uint8_t>{1, 2, 0x41, 0x42};

  parse_result parsed = parse_packet(serialize(original));
  REQUIRE(parsed.ok());
  const dhcp_packet &p = parsed.packet;
  CHECK(p.xid == original.xid);
  CHECK(p.secs == 7);
  CHECK(p.broadcast_flag());
  CHECK(p.ciaddr == original.ciaddr);
  CHECK(p.giaddr == original.giaddr);
  CHECK(p.chaddr == original.chaddr);
  CHECK(p.options.type == message_type::request);
  CHECK(p.options.requested_ip == original.options.requested_ip);
  CHECK(p.options.server_id == original.options.server_id);
  CHECK(p.options.client_id == original.options.client_id);
  CHECK(p.options.parameter_request_list == original.options.parameter_request_list);
  CHECK(p.options.hostname == std::optional<std::string>("laptop"));
  CHECK(p.options.routers.size() == 2);
  CHECK(p.options.routers[1] == *parse_ipv4("10.0.0.254"));
  CHECK(p.options.dns_servers.size() == 1);
  CHECK(p.options.lease_time == std::optional<std::uint32_t>(3600));
  CHECK(p.options.renewal_time == std::optional<std::uint32_t>(1800));
  CHECK(p.options.rebinding_time == std::optional<std::uint32_t>(3150));
  CHECK(p.options.subnet_mask == original.options.subnet_mask);
  CHECK(p.options.message == std::optional<std::string>("no"));
  CHECK(p.options.relay_agent_info == original.options.relay_agent_info);
  CHECK_FALSE(p.overload_ignored);
}

TEST_CASE("values over 255 bytes are split and joined again (RFC 3396)") {
  dhcp_packet p = sample_request();
  p.options.hostname = std::string(600, 'h');
  std::vector<std::uint8_t> bytes = serialize(p);
  parse_result parsed = parse_packet(bytes);
  REQUIRE(parsed.ok());
  CHECK(parsed.packet.options.hostname == p.options.hostname);

  // Two instances of option 61 written by hand are concatenated in order.
  auto split = with_options({53, 1, 1, 61, 3, 1, 0xaa, 0xbb, 61, 2, 0xcc, 0xdd, 255});
  parsed = parse_packet(split);
  REQUIRE(parsed.ok());
  CHECK(parsed.packet.options.client_id == std::vector<std::uint8_t>{1, 0xaa, 0xbb, 0xcc, 0xdd});
}

TEST_CASE("pad options are skipped, a missing end option is tolerated, bytes after end ignored") {
  auto parsed = parse_packet(with_options({0, 0, 53, 1, 1, 0, 50, 4, 10, 0, 0, 7}));
  REQUIRE(parsed.ok());
  CHECK(parsed.packet.options.requested_ip == parse_ipv4("10.0.0.7"));
  parsed = parse_packet(with_options({53, 1, 3, 255, 50, 99, 1}));
  REQUIRE(parsed.ok());
  CHECK(parsed.packet.options.type == message_type::request);
  CHECK_FALSE(parsed.packet.options.requested_ip);
}

TEST_CASE("option overload is ignored and reported") {
  auto parsed = parse_packet(with_options({53, 1, 1, 52, 1, 3, 255}));
  REQUIRE(parsed.ok());
  CHECK(parsed.packet.overload_ignored);
}

TEST_CASE("each kind of malformed message gets its own reason") {
  std::vector<std::uint8_t> valid = serialize(sample_request());
  auto error_of = [](const std::vector<std::uint8_t> &bytes) { return parse_packet(bytes).error; };

  CHECK(error_of({}) == parse_error::truncated_header);
  CHECK(error_of(std::vector<std::uint8_t>(valid.begin(), valid.begin() + 239)) ==
        parse_error::truncated_header);

  std::vector<std::uint8_t> big = valid;
  big.resize(max_message_size + 1, 0);
  CHECK(error_of(big) == parse_error::oversized);
  big.resize(max_message_size);
  CHECK(error_of(big) == parse_error::none);

  std::vector<std::uint8_t> bad = valid;
  bad[0] = 3;
  CHECK(error_of(bad) == parse_error::bad_op);
  bad = valid;
  bad[2] = 17;
  CHECK(error_of(bad) == parse_error::bad_hlen);
  bad = valid;
  bad[236] = 0;
  CHECK(error_of(bad) == parse_error::bad_magic_cookie);

  CHECK(error_of(with_options({53, 1, 1, 50})) == parse_error::option_overrun);
  CHECK(error_of(with_options({53, 1, 1, 12, 10, 'a', 'b'})) == parse_error::option_overrun);
  CHECK(error_of(with_options({53, 1, 1, 50, 3, 10, 0, 0, 255})) == parse_error::bad_option_length);
  CHECK(error_of(with_options({53, 2, 1, 1, 255})) == parse_error::bad_option_length);
  CHECK(error_of(with_options({53, 1, 1, 3, 6, 1, 2, 3, 4, 5, 6, 255})) ==
        parse_error::bad_option_length);
  CHECK(error_of(with_options({53, 1, 1, 61, 1, 1, 255})) == parse_error::bad_option_length);
  CHECK(error_of(with_options({53, 1, 1, 12, 0, 255})) == parse_error::bad_option_length);
  CHECK(error_of(with_options({50, 4, 10, 0, 0, 1, 255})) == parse_error::missing_message_type);
  CHECK(error_of(header_only(1)) == parse_error::missing_message_type);
  CHECK(error_of(with_options({53, 1, 9, 255})) == parse_error::bad_message_type);
  CHECK(error_of(with_options({53, 1, 0, 255})) == parse_error::bad_message_type);
}

TEST_CASE("parse errors carry a specific detail") {
  auto parsed = parse_packet(with_options({53, 1, 1, 12, 10, 'a'}));
  CHECK(parsed.error == parse_error::option_overrun);
  CHECK(parsed.detail == "option 12 at offset 243 claims 10 bytes but only 1 remain");
  parsed = parse_packet(with_options({53, 1, 1, 54, 2, 1, 2, 255}));
  CHECK(parsed.detail == "option 54 must be 4 bytes long, not 2");
  CHECK(std::string(to_string(parse_error::bad_magic_cookie)) == "bad_magic_cookie");
}

TEST_CASE("garbage, truncations and bit flips never crash the parser") {
  std::mt19937 random(20261124); // fixed seed: a failure reproduces
  std::uniform_int_distribution<int> byte(0, 255);
  const std::vector<std::uint8_t> valid = serialize(sample_request());
  std::size_t accepted = 0, rejected = 0;

  auto check = [&](const std::vector<std::uint8_t> &bytes) {
    parse_result parsed = parse_packet(bytes);
    if (!parsed.ok()) {
      ++rejected;
      REQUIRE_FALSE(parsed.detail.empty());
      return;
    }
    ++accepted;
    // Whatever was accepted must survive a serialize/parse round trip.
    parse_result again = parse_packet(serialize(parsed.packet));
    REQUIRE(again.ok());
    REQUIRE(again.packet.xid == parsed.packet.xid);
    REQUIRE(again.packet.options.type == parsed.packet.options.type);
    REQUIRE(again.packet.options.client_id == parsed.packet.options.client_id);
  };

  for (std::size_t length = 0; length <= valid.size(); ++length)
    check(std::vector<std::uint8_t>(valid.begin(), valid.begin() + length));

  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> garbage(std::uniform_int_distribution<std::size_t>(0, 5000)(random));
    for (auto &b : garbage)
      b = static_cast<std::uint8_t>(byte(random));
    check(garbage);
  }

  for (int i = 0; i < 3000; ++i) {
    std::vector<std::uint8_t> mutated = valid;
    // Keep the header valid most of the time so that the option parser gets exercised.
    int flips = std::uniform_int_distribution<int>(1, 8)(random);
    for (int f = 0; f < flips; ++f) {
      std::size_t at =
          std::uniform_int_distribution<std::size_t>(min_message_size, mutated.size() - 1)(random);
      mutated[at] = static_cast<std::uint8_t>(byte(random));
    }
    mutated.resize(
        std::uniform_int_distribution<std::size_t>(min_message_size, mutated.size())(random));
    check(mutated);
  }
  CHECK(accepted > 100);
  CHECK(rejected > 3000);
}
