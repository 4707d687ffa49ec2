#include "ipv4.hpp"

namespace gsdhcpd {

namespace {

// Parses a decimal number with no sign, no leading zeros and at most `max`.
std::optional<std::uint32_t> parse_decimal(std::string_view text, std::uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (value > max) return std::nullopt;
  return static_cast<std::uint32_t>(value);
}

} // namespace

std::optional<ipv4> parse_ipv4(std::string_view text) {
  std::uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    std::size_t dot = text.find('.');
    if ((part < 3) != (dot != std::string_view::npos)) return std::nullopt;
    auto octet = parse_decimal(text.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    value = (value << 8) | *octet;
    text = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  }
  return ipv4{value};
}

std::string to_string(ipv4 address) {
  std::string text;
  for (int shift = 24; shift >= 0; shift -= 8) {
    text += std::to_string((address.value >> shift) & 0xFF);
    if (shift != 0) text += '.';
  }
  return text;
}

std::optional<subnet> parse_subnet(std::string_view text, std::string *why) {
  auto fail = [&](const char *reason) -> std::optional<subnet> {
    if (why) *why = reason;
    return std::nullopt;
  };
  std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return fail("expected ADDRESS/PREFIX");
  auto network = parse_ipv4(text.substr(0, slash));
  if (!network) return fail("the address is not a dotted-quad IPv4 address");
  auto prefix = parse_decimal(text.substr(slash + 1), 32);
  if (!prefix) return fail("the prefix length must be a number from 0 to 32");
  subnet result{*network, *prefix};
  if ((network->value & result.mask().value) != network->value)
    return fail("the address has host bits set; use the network address");
  return result;
}

std::string to_string(const subnet &s) {
  return to_string(s.network) + "/" + std::to_string(s.prefix_length);
}

std::optional<endpoint> parse_endpoint(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto address = parse_ipv4(text.substr(0, colon));
  auto port = parse_decimal(text.substr(colon + 1), 65535);
  if (!address || !port || *port == 0) return std::nullopt;
  return endpoint{*address, static_cast<std::uint16_t>(*port)};
}

std::string to_string(const endpoint &e) {
  return to_string(e.address) + ":" + std::to_string(e.port);
}

} // namespace gsdhcpd
