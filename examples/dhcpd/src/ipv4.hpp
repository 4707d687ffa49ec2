// IPv4 addresses, subnets and address:port pairs, with the text forms the config file uses.
#ifndef GSDHCPD_IPV4_HPP
#define GSDHCPD_IPV4_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gsdhcpd {

// Host byte order, so that ordering and "+ 1" mean what they do for addresses in a pool.
struct ipv4 {
  std::uint32_t value = 0;

  constexpr bool is_zero() const { return value == 0; }
  friend constexpr bool operator==(ipv4 a, ipv4 b) { return a.value == b.value; }
  friend constexpr bool operator!=(ipv4 a, ipv4 b) { return a.value != b.value; }
  friend constexpr bool operator<(ipv4 a, ipv4 b) { return a.value < b.value; }
  friend constexpr bool operator<=(ipv4 a, ipv4 b) { return a.value <= b.value; }
};

inline constexpr ipv4 ipv4_broadcast{0xFFFFFFFFu};

// Strict dotted quad: four decimal parts 0-255, no leading zeros beyond "0", nothing else.
std::optional<ipv4> parse_ipv4(std::string_view text);
std::string to_string(ipv4 address);

struct subnet {
  ipv4 network;
  unsigned prefix_length = 0; // 0-32

  ipv4 mask() const {
    return ipv4{prefix_length == 0 ? 0u : ~std::uint32_t{0} << (32 - prefix_length)};
  }
  ipv4 broadcast() const { return ipv4{network.value | ~mask().value}; }
  bool contains(ipv4 address) const { return (address.value & mask().value) == network.value; }
};

// "10.0.0.0/24". The address must be the network address itself (no host bits set), because a
// config saying 10.0.0.5/24 is more likely a typo than a wish for 10.0.0.0/24.
std::optional<subnet> parse_subnet(std::string_view text, std::string *why = nullptr);
std::string to_string(const subnet &s);

struct endpoint {
  ipv4 address;
  std::uint16_t port = 0;
};

// "ADDR:PORT" with a port 1-65535.
std::optional<endpoint> parse_endpoint(std::string_view text);
std::string to_string(const endpoint &e);

} // namespace gsdhcpd

#endif // GSDHCPD_IPV4_HPP
