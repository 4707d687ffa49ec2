// DHCPv4 messages (RFC 2131) and the options this server reads or writes (RFC 2132).
//
// parse_packet() never trusts its input: every length is checked against the buffer, and a
// message it cannot use comes back as a specific parse_error instead of a partial packet.
#ifndef GSDHCPD_PACKET_HPP
#define GSDHCPD_PACKET_HPP

#include "ipv4.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gsdhcpd {

enum class message_type : std::uint8_t {
  discover = 1,
  offer = 2,
  request = 3,
  decline = 4,
  ack = 5,
  nak = 6,
  release = 7,
  inform = 8,
};
const char *to_string(message_type type);

namespace option {
inline constexpr std::uint8_t pad = 0;
inline constexpr std::uint8_t subnet_mask = 1;
inline constexpr std::uint8_t router = 3;
inline constexpr std::uint8_t dns_servers = 6;
inline constexpr std::uint8_t hostname = 12;
inline constexpr std::uint8_t requested_ip = 50;
inline constexpr std::uint8_t lease_time = 51;
inline constexpr std::uint8_t overload = 52;
inline constexpr std::uint8_t message_type = 53;
inline constexpr std::uint8_t server_id = 54;
inline constexpr std::uint8_t parameter_request_list = 55;
inline constexpr std::uint8_t message = 56;
inline constexpr std::uint8_t renewal_time = 58;   // T1
inline constexpr std::uint8_t rebinding_time = 59; // T2
inline constexpr std::uint8_t client_id = 61;
inline constexpr std::uint8_t relay_agent_info = 82;
inline constexpr std::uint8_t end = 255;
} // namespace option

inline constexpr std::uint8_t op_request = 1; // BOOTREQUEST
inline constexpr std::uint8_t op_reply = 2;   // BOOTREPLY
inline constexpr std::uint16_t flag_broadcast = 0x8000;

// Fixed header (236 bytes) + magic cookie. Anything shorter is not a DHCP message.
inline constexpr std::size_t min_message_size = 240;
// Larger than any DHCP message sent over an unfragmented Ethernet frame, with room to spare; a
// bigger datagram is garbage or an attack, and the receive buffer is sized from this.
inline constexpr std::size_t max_message_size = 4096;
// RFC 2131 §2: BOOTP relays and old clients drop messages shorter than a BOOTP message.
inline constexpr std::size_t min_reply_size = 300;

struct dhcp_options {
  std::optional<gsdhcpd::message_type> type;                 // 53
  std::optional<ipv4> requested_ip;                          // 50
  std::optional<ipv4> server_id;                             // 54
  std::optional<std::uint32_t> lease_time;                   // 51, seconds
  std::optional<std::uint32_t> renewal_time;                 // 58, T1
  std::optional<std::uint32_t> rebinding_time;               // 59, T2
  std::optional<ipv4> subnet_mask;                           // 1
  std::vector<ipv4> routers;                                 // 3
  std::vector<ipv4> dns_servers;                             // 6
  std::vector<std::uint8_t> client_id;                       // 61, empty when absent
  std::vector<std::uint8_t> parameter_request_list;          // 55
  std::optional<std::string> hostname;                       // 12
  std::optional<std::string> message;                        // 56, the reason given in a NAK
  std::optional<std::vector<std::uint8_t>> relay_agent_info; // 82, echoed back verbatim
};

struct dhcp_packet {
  std::uint8_t op = op_request;
  std::uint8_t htype = 1; // 1 = Ethernet
  std::uint8_t hlen = 6;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  std::uint16_t flags = 0;
  ipv4 ciaddr, yiaddr, siaddr, giaddr;
  std::array<std::uint8_t, 16> chaddr{};
  dhcp_options options;

  // Set by parse_packet when option 52 asked us to look for more options in sname/file. This
  // server does not (no client it serves needs it); the packet is used with the options found in
  // the options field, and the server counts how often that happened.
  bool overload_ignored = false;

  bool broadcast_flag() const { return (flags & flag_broadcast) != 0; }
};

enum class parse_error {
  none,
  truncated_header,     // shorter than the 240-byte fixed header + cookie
  oversized,            // longer than max_message_size
  bad_op,               // op is neither BOOTREQUEST nor BOOTREPLY
  bad_hlen,             // hardware address longer than the 16-byte chaddr field
  bad_magic_cookie,     // not 99.130.83.99: BOOTP or garbage
  option_overrun,       // an option's length runs past the end of the buffer
  bad_option_length,    // e.g. a 3-byte IP address
  missing_message_type, // no option 53: a BOOTP request, which this server does not serve
  bad_message_type,     // option 53 outside 1-8
};
inline constexpr std::size_t parse_error_count = 10;
// A stable snake_case name, used as the counter's name in statistics.
const char *to_string(parse_error error);

struct parse_result {
  parse_error error = parse_error::none;
  std::string detail; // human-readable specifics, e.g. which option and how long it was
  dhcp_packet packet; // meaningful only when ok()

  bool ok() const { return error == parse_error::none; }
};

parse_result parse_packet(const std::uint8_t *data, std::size_t size);
inline parse_result parse_packet(const std::vector<std::uint8_t> &bytes) {
  return parse_packet(bytes.data(), bytes.size());
}

// Options are written in a fixed order with 53 first (RFC 2131 §4.1 asks servers to, and some
// clients only look there), then padded to min_reply_size. Strings and byte lists longer than
// 255 bytes are split into consecutive instances of the same option (RFC 3396).
std::vector<std::uint8_t> serialize(const dhcp_packet &packet);

// "aa:bb:cc:dd:ee:ff" for the first `size` bytes.
std::string hex_colon(const std::uint8_t *bytes, std::size_t size);

} // namespace gsdhcpd

#endif // GSDHCPD_PACKET_HPP
