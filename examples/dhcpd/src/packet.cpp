#include "packet.hpp"

#include <map>

namespace gsdhcpd {

namespace {

constexpr std::uint32_t magic_cookie = 0x63825363;
constexpr std::size_t chaddr_offset = 28;
constexpr std::size_t cookie_offset = 236;

std::uint32_t read_u32(const std::uint8_t *p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

void write_u32(std::vector<std::uint8_t> &out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(value >> shift));
}

void write_u16(std::vector<std::uint8_t> &out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}

parse_result failure(parse_error error, std::string detail) {
  parse_result result;
  result.error = error;
  result.detail = std::move(detail);
  return result;
}

std::string option_name(std::uint8_t code) {
  return "option " + std::to_string(code);
}

// Each decoder checks the length and either stores the value or returns a reason.
using bytes = std::vector<std::uint8_t>;

std::optional<std::string> decode_ip(const bytes &data, std::uint8_t code,
                                     std::optional<ipv4> &out) {
  if (data.size() != 4)
    return option_name(code) + " must be 4 bytes long, not " + std::to_string(data.size());
  out = ipv4{read_u32(data.data())};
  return std::nullopt;
}

std::optional<std::string> decode_u32(const bytes &data, std::uint8_t code,
                                      std::optional<std::uint32_t> &out) {
  if (data.size() != 4)
    return option_name(code) + " must be 4 bytes long, not " + std::to_string(data.size());
  out = read_u32(data.data());
  return std::nullopt;
}

std::optional<std::string> decode_ip_list(const bytes &data, std::uint8_t code,
                                          std::vector<ipv4> &out) {
  if (data.empty() || data.size() % 4 != 0)
    return option_name(code) + " must be a non-empty multiple of 4 bytes long, not " +
           std::to_string(data.size());
  for (std::size_t i = 0; i < data.size(); i += 4)
    out.push_back(ipv4{read_u32(data.data() + i)});
  return std::nullopt;
}

std::optional<std::string> decode_bytes(const bytes &data, std::uint8_t code, std::size_t min_size,
                                        bytes &out) {
  if (data.size() < min_size)
    return option_name(code) + " must be at least " + std::to_string(min_size) +
           " bytes long, not " + std::to_string(data.size());
  out = data;
  return std::nullopt;
}

std::optional<std::string> decode_text(const bytes &data, std::uint8_t code,
                                       std::optional<std::string> &out) {
  if (data.empty()) return option_name(code) + " must not be empty";
  out = std::string(data.begin(), data.end());
  return std::nullopt;
}

} // namespace

const char *to_string(message_type type) {
  switch (type) {
  case message_type::discover:
    return "DHCPDISCOVER";
  case message_type::offer:
    return "DHCPOFFER";
  case message_type::request:
    return "DHCPREQUEST";
  case message_type::decline:
    return "DHCPDECLINE";
  case message_type::ack:
    return "DHCPACK";
  case message_type::nak:
    return "DHCPNAK";
  case message_type::release:
    return "DHCPRELEASE";
  case message_type::inform:
    return "DHCPINFORM";
  }
  return "DHCP(unknown)";
}

const char *to_string(parse_error error) {
  switch (error) {
  case parse_error::none:
    return "none";
  case parse_error::truncated_header:
    return "truncated_header";
  case parse_error::oversized:
    return "oversized";
  case parse_error::bad_op:
    return "bad_op";
  case parse_error::bad_hlen:
    return "bad_hlen";
  case parse_error::bad_magic_cookie:
    return "bad_magic_cookie";
  case parse_error::option_overrun:
    return "option_overrun";
  case parse_error::bad_option_length:
    return "bad_option_length";
  case parse_error::missing_message_type:
    return "missing_message_type";
  case parse_error::bad_message_type:
    return "bad_message_type";
  }
  return "unknown";
}

parse_result parse_packet(const std::uint8_t *data, std::size_t size) {
  if (size > max_message_size)
    return failure(parse_error::oversized, std::to_string(size) + " bytes, more than the " +
                                               std::to_string(max_message_size) + " accepted");
  if (size < min_message_size)
    return failure(parse_error::truncated_header,
                   std::to_string(size) + " bytes, shorter than the " +
                       std::to_string(min_message_size) + "-byte header and magic cookie");

  parse_result result;
  dhcp_packet &p = result.packet;
  p.op = data[0];
  p.htype = data[1];
  p.hlen = data[2];
  p.hops = data[3];
  p.xid = read_u32(data + 4);
  p.secs = static_cast<std::uint16_t>(data[8] << 8 | data[9]);
  p.flags = static_cast<std::uint16_t>(data[10] << 8 | data[11]);
  p.ciaddr = ipv4{read_u32(data + 12)};
  p.yiaddr = ipv4{read_u32(data + 16)};
  p.siaddr = ipv4{read_u32(data + 20)};
  p.giaddr = ipv4{read_u32(data + 24)};
  for (std::size_t i = 0; i < p.chaddr.size(); ++i)
    p.chaddr[i] = data[chaddr_offset + i];

  if (p.op != op_request && p.op != op_reply)
    return failure(parse_error::bad_op, "op is " + std::to_string(p.op) + ", expected 1 or 2");
  if (p.hlen > p.chaddr.size())
    return failure(parse_error::bad_hlen,
                   "hlen is " + std::to_string(p.hlen) + ", more than the 16-byte chaddr field");
  if (read_u32(data + cookie_offset) != magic_cookie)
    return failure(parse_error::bad_magic_cookie, "the magic cookie is not 99.130.83.99");

  // RFC 3396: an option may appear several times, and the pieces are concatenated in order.
  std::map<std::uint8_t, bytes> raw;
  std::size_t i = min_message_size;
  while (i < size) {
    std::uint8_t code = data[i];
    if (code == option::end) break;
    if (code == option::pad) {
      ++i;
      continue;
    }
    if (i + 1 >= size)
      return failure(parse_error::option_overrun,
                     option_name(code) + " at offset " + std::to_string(i) + " has no length byte");
    std::size_t length = data[i + 1];
    if (i + 2 + length > size)
      return failure(parse_error::option_overrun, option_name(code) + " at offset " +
                                                      std::to_string(i) + " claims " +
                                                      std::to_string(length) + " bytes but only " +
                                                      std::to_string(size - i - 2) + " remain");
    raw[code].insert(raw[code].end(), data + i + 2, data + i + 2 + length);
    i += 2 + length;
  }

  dhcp_options &o = p.options;
  std::optional<std::string> bad;
  for (const auto &[code, value] : raw) {
    switch (code) {
    case option::message_type:
      if (value.size() != 1) {
        bad = "option 53 must be 1 byte long, not " + std::to_string(value.size());
      } else if (value[0] < 1 || value[0] > 8) {
        return failure(parse_error::bad_message_type,
                       "message type " + std::to_string(value[0]) + " is not 1-8");
      } else {
        o.type = static_cast<message_type>(value[0]);
      }
      break;
    case option::requested_ip:
      bad = decode_ip(value, code, o.requested_ip);
      break;
    case option::server_id:
      bad = decode_ip(value, code, o.server_id);
      break;
    case option::subnet_mask:
      bad = decode_ip(value, code, o.subnet_mask);
      break;
    case option::lease_time:
      bad = decode_u32(value, code, o.lease_time);
      break;
    case option::renewal_time:
      bad = decode_u32(value, code, o.renewal_time);
      break;
    case option::rebinding_time:
      bad = decode_u32(value, code, o.rebinding_time);
      break;
    case option::router:
      bad = decode_ip_list(value, code, o.routers);
      break;
    case option::dns_servers:
      bad = decode_ip_list(value, code, o.dns_servers);
      break;
    case option::client_id:
      bad = decode_bytes(value, code, 2, o.client_id);
      break;
    case option::parameter_request_list:
      bad = decode_bytes(value, code, 1, o.parameter_request_list);
      break;
    case option::hostname:
      bad = decode_text(value, code, o.hostname);
      break;
    case option::message:
      bad = decode_text(value, code, o.message);
      break;
    case option::relay_agent_info:
      o.relay_agent_info = value;
      break;
    case option::overload:
      p.overload_ignored = true;
      break;
    default:
      break; // options this server has no use for
    }
    if (bad) return failure(parse_error::bad_option_length, *bad);
  }
  if (!o.type)
    return failure(parse_error::missing_message_type,
                   "no option 53 (a BOOTP message, which this server does not serve)");
  return result;
}

namespace {

void put_option(std::vector<std::uint8_t> &out, std::uint8_t code, const std::uint8_t *data,
                std::size_t size) {
  // Split long values into 255-byte pieces (RFC 3396); a zero-length value is still written.
  do {
    std::size_t piece = size < 255 ? size : 255;
    out.push_back(code);
    out.push_back(static_cast<std::uint8_t>(piece));
    out.insert(out.end(), data, data + piece);
    data += piece;
    size -= piece;
  } while (size > 0);
}

void put_option(std::vector<std::uint8_t> &out, std::uint8_t code, const bytes &value) {
  put_option(out, code, value.data(), value.size());
}

void put_u32_option(std::vector<std::uint8_t> &out, std::uint8_t code, std::uint32_t value) {
  bytes encoded;
  write_u32(encoded, value);
  put_option(out, code, encoded);
}

void put_ip_list_option(std::vector<std::uint8_t> &out, std::uint8_t code,
                        const std::vector<ipv4> &addresses) {
  if (addresses.empty()) return;
  bytes encoded;
  for (ipv4 a : addresses)
    write_u32(encoded, a.value);
  put_option(out, code, encoded);
}

void put_text_option(std::vector<std::uint8_t> &out, std::uint8_t code,
                     const std::optional<std::string> &text) {
  if (!text) return;
  put_option(out, code, reinterpret_cast<const std::uint8_t *>(text->data()), text->size());
}

} // namespace

std::vector<std::uint8_t> serialize(const dhcp_packet &p) {
  std::vector<std::uint8_t> out;
  out.reserve(min_reply_size + 64);
  out.push_back(p.op);
  out.push_back(p.htype);
  out.push_back(p.hlen);
  out.push_back(p.hops);
  write_u32(out, p.xid);
  write_u16(out, p.secs);
  write_u16(out, p.flags);
  for (ipv4 a : {p.ciaddr, p.yiaddr, p.siaddr, p.giaddr})
    write_u32(out, a.value);
  out.insert(out.end(), p.chaddr.begin(), p.chaddr.end());
  out.resize(cookie_offset, 0); // sname and file stay empty
  write_u32(out, magic_cookie);

  const dhcp_options &o = p.options;
  if (o.type) out.insert(out.end(), {option::message_type, 1, static_cast<std::uint8_t>(*o.type)});
  if (o.server_id) put_u32_option(out, option::server_id, o.server_id->value);
  if (o.lease_time) put_u32_option(out, option::lease_time, *o.lease_time);
  if (o.renewal_time) put_u32_option(out, option::renewal_time, *o.renewal_time);
  if (o.rebinding_time) put_u32_option(out, option::rebinding_time, *o.rebinding_time);
  if (o.subnet_mask) put_u32_option(out, option::subnet_mask, o.subnet_mask->value);
  put_ip_list_option(out, option::router, o.routers);
  put_ip_list_option(out, option::dns_servers, o.dns_servers);
  if (o.requested_ip) put_u32_option(out, option::requested_ip, o.requested_ip->value);
  put_text_option(out, option::hostname, o.hostname);
  if (!o.client_id.empty()) put_option(out, option::client_id, o.client_id);
  if (!o.parameter_request_list.empty())
    put_option(out, option::parameter_request_list, o.parameter_request_list);
  put_text_option(out, option::message, o.message);
  // RFC 3046 §2.2: the relay agent information option goes last, just before the end option.
  if (o.relay_agent_info) put_option(out, option::relay_agent_info, *o.relay_agent_info);
  out.push_back(option::end);
  if (out.size() < min_reply_size) out.resize(min_reply_size, option::pad);
  return out;
}

std::string hex_colon(const std::uint8_t *bytes, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    if (i != 0) text += ':';
    text += digits[bytes[i] >> 4];
    text += digits[bytes[i] & 0xF];
  }
  return text;
}

} // namespace gsdhcpd
