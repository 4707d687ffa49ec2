#include "server.hpp"

#include <algorithm>

namespace gsdhcpd {

namespace {

constexpr std::size_t max_hostname_size = 255; // a full DNS name

// ISC dhcpd can record these hardware types in a lease file (see lease_file_format.cpp).
bool lease_file_can_record(std::uint8_t htype) {
  return htype == 1 || htype == 6 || htype == 8 || htype == 32;
}

hardware_address hardware_of(const dhcp_packet &p) {
  hardware_address hw;
  hw.type = p.htype;
  hw.length = p.hlen;
  std::copy(p.chaddr.begin(), p.chaddr.begin() + p.hlen, hw.bytes.begin());
  return hw;
}

} // namespace

const char *to_string(delivery d) {
  switch (d) {
  case delivery::relay:
    return "relay";
  case delivery::unicast_ciaddr:
    return "unicast_ciaddr";
  case delivery::broadcast:
    return "broadcast";
  case delivery::unicast_yiaddr:
    return "unicast_yiaddr";
  }
  return "unknown";
}

const char *to_string(drop_reason reason) {
  switch (reason) {
  case drop_reason::malformed:
    return "malformed";
  case drop_reason::not_a_request:
    return "not_a_request";
  case drop_reason::server_message:
    return "server_message";
  case drop_reason::unknown_network:
    return "unknown_network";
  case drop_reason::unsupported_hardware:
    return "unsupported_hardware";
  case drop_reason::other_server:
    return "other_server";
  case drop_reason::missing_address:
    return "missing_address";
  case drop_reason::pool_exhausted:
    return "pool_exhausted";
  case drop_reason::not_clients_lease:
    return "not_clients_lease";
  }
  return "unknown";
}

std::string server_stats::to_string() const {
  std::string text = "received=" + std::to_string(received);
  for (std::size_t t = 1; t < received_by_type.size(); ++t)
    if (received_by_type[t])
      text += std::string(" in.") + gsdhcpd::to_string(static_cast<message_type>(t)) + "=" +
              std::to_string(received_by_type[t]);
  for (std::size_t t = 1; t < sent_by_type.size(); ++t)
    if (sent_by_type[t])
      text += std::string(" out.") + gsdhcpd::to_string(static_cast<message_type>(t)) + "=" +
              std::to_string(sent_by_type[t]);
  for (std::size_t r = 0; r < dropped.size(); ++r)
    if (dropped[r])
      text += std::string(" dropped.") + gsdhcpd::to_string(static_cast<drop_reason>(r)) + "=" +
              std::to_string(dropped[r]);
  for (std::size_t e = 1; e < malformed.size(); ++e)
    if (malformed[e])
      text += std::string(" malformed.") + gsdhcpd::to_string(static_cast<parse_error>(e)) + "=" +
              std::to_string(malformed[e]);
  if (overload_ignored) text += " overload_ignored=" + std::to_string(overload_ignored);
  return text;
}

server_settings make_server_settings(const config &c, ipv4 server_id) {
  server_settings s;
  s.server_id = server_id;
  s.subnet = c.subnet;
  s.pool_first = c.pool_first;
  s.pool_last = c.pool_last;
  s.router = c.router;
  s.dns = c.dns;
  s.lease_time = c.lease_time;
  if (c.listen) {
    s.server_port = c.listen->port;
    s.client_port = static_cast<std::uint16_t>(c.listen->port + 1);
  }
  return s;
}

dhcp_server::dhcp_server(server_settings settings, lease_db &db)
    : settings_(std::move(settings)), db_(db), next_unused_(settings_.pool_first) {}

void dhcp_server::reconfigure(const server_settings &next) {
  const ipv4 server_id = settings_.server_id;
  const std::uint16_t server_port = settings_.server_port, client_port = settings_.client_port;
  settings_ = next;
  settings_.server_id = server_id;
  settings_.server_port = server_port;
  settings_.client_port = client_port;
  std::vector<std::string> stale;
  for (const auto &[address, o] : offers_)
    if (!in_pool(address)) stale.push_back(o.client);
  for (const std::string &client : stale)
    withdraw_offer(client);
  for (auto it = returned_.begin(); it != returned_.end();)
    it = in_pool(*it) ? std::next(it) : returned_.erase(it);
  // The scan for never-used addresses starts over in the new pool; it skips what is leased or
  // offered, so starting from the beginning is always safe.
  next_unused_ = settings_.pool_first;
}

decision dhcp_server::handle_datagram(const std::uint8_t *data, std::size_t size,
                                      const arrival &from, std::int64_t now) {
  parse_result parsed = parse_packet(data, size);
  if (!parsed.ok()) {
    ++stats_.received;
    ++stats_.malformed[static_cast<std::size_t>(parsed.error)];
    return drop(drop_reason::malformed);
  }
  return handle(parsed.packet, from, now);
}

decision dhcp_server::handle(const dhcp_packet &request, const arrival &from, std::int64_t now) {
  ++stats_.received;
  if (request.overload_ignored) ++stats_.overload_ignored;
  // parse_packet guarantees these two; a packet built in code might not.
  if (!request.options.type || request.hlen > request.chaddr.size()) {
    auto error = request.options.type ? parse_error::bad_hlen : parse_error::missing_message_type;
    ++stats_.malformed[static_cast<std::size_t>(error)];
    return drop(drop_reason::malformed);
  }
  if (request.op != op_request) return drop(drop_reason::not_a_request);
  message_type type = *request.options.type;
  ++stats_.received_by_type[static_cast<std::size_t>(type)];
  if (!request.giaddr.is_zero() && !settings_.subnet.contains(request.giaddr))
    return drop(drop_reason::unknown_network);
  const bool has_client_id = !request.options.client_id.empty();
  if (!has_client_id && (request.hlen == 0 || !lease_file_can_record(request.htype)))
    return drop(drop_reason::unsupported_hardware);
  const std::string client = client_key(request.options.client_id, hardware_of(request));

  expire_offers(now);
  switch (type) {
  case message_type::discover:
    return discover(request, client, now);
  case message_type::request:
    return this->request(request, client, now);
  case message_type::decline:
    return decline(request, client, now);
  case message_type::release:
    return release(request, client, now);
  case message_type::inform:
    return inform(request, from);
  case message_type::offer:
  case message_type::ack:
  case message_type::nak:
    break;
  }
  return drop(drop_reason::server_message);
}

decision dhcp_server::drop(drop_reason reason) {
  ++stats_.dropped[static_cast<std::size_t>(reason)];
  decision d;
  d.dropped = reason;
  return d;
}

// ---- address allocation ----------------------------------------------------------------------

bool dhcp_server::offered_to_other(ipv4 address, const std::string &client,
                                   std::int64_t now) const {
  auto it = offers_.find(address);
  return it != offers_.end() && it->second.expires > now && it->second.client != client;
}

bool dhcp_server::available_to(ipv4 address, const std::string &client, std::int64_t now) const {
  if (!in_pool(address) || offered_to_other(address, client, now)) return false;
  const lease *l = db_.table().find(address);
  if (!l || l->ends <= now) return true; // never used, expired, released, or out of quarantine
  return l->state != lease_state::declined && client_key(*l) == client;
}

// RFC 2131 §4.3.1's order of preference: the client's current or previous address, then the
// address it asks for, then a free one.
std::optional<ipv4> dhcp_server::choose_address(const dhcp_packet &request,
                                                const std::string &client, std::int64_t now) {
  if (const lease *previous = db_.table().find_client(client);
      previous && available_to(previous->address, client, now))
    return previous->address;
  if (auto it = offer_by_client_.find(client); it != offer_by_client_.end()) return it->second;
  if (auto requested = request.options.requested_ip;
      requested && available_to(*requested, client, now))
    return *requested;

  while (!returned_.empty()) {
    ipv4 address = *returned_.begin();
    returned_.erase(returned_.begin());
    if (!db_.table().find(address) && available_to(address, client, now)) return address;
  }
  while (next_unused_ <= settings_.pool_last && next_unused_.value != 0) {
    ipv4 address = next_unused_;
    // Wraps to 0 after 255.255.255.255, which ends the loop.
    next_unused_ = ipv4{next_unused_.value + 1};
    if (!db_.table().find(address) && !offers_.count(address)) return address;
  }
  std::optional<ipv4> reusable;
  db_.table().for_each_reusable(now, [&](const lease &l) {
    if (!available_to(l.address, client, now)) return true;
    reusable = l.address;
    return false;
  });
  return reusable;
}

void dhcp_server::expire_offers(std::int64_t now) {
  while (!offer_expiry_.empty() && offer_expiry_.begin()->first <= now) {
    ipv4 address{offer_expiry_.begin()->second};
    offer_expiry_.erase(offer_expiry_.begin());
    auto it = offers_.find(address);
    if (it == offers_.end() || it->second.expires > now) continue; // renewed since
    offer_by_client_.erase(it->second.client);
    offers_.erase(it);
    if (!db_.table().find(address)) returned_.insert(address);
  }
}

void dhcp_server::withdraw_offer(const std::string &client) {
  auto it = offer_by_client_.find(client);
  if (it == offer_by_client_.end()) return;
  ipv4 address = it->second;
  offer_by_client_.erase(it);
  auto offer = offers_.find(address);
  if (offer != offers_.end()) {
    offer_expiry_.erase({offer->second.expires, address.value});
    offers_.erase(offer);
  }
  if (!db_.table().find(address)) returned_.insert(address);
}

// ---- messages --------------------------------------------------------------------------------

decision dhcp_server::discover(const dhcp_packet &request, const std::string &client,
                               std::int64_t now) {
  auto address = choose_address(request, client, now);
  if (!address) return drop(drop_reason::pool_exhausted);

  withdraw_offer(client);
  std::int64_t expires = now + settings_.offer_hold;
  offers_[*address] = offer{client, expires};
  offer_by_client_[client] = *address;
  offer_expiry_.emplace(expires, address->value);

  dhcp_packet packet = make_reply(request, message_type::offer, *address);
  add_configuration(packet.options, true);
  decision d;
  d.reply = address_reply(std::move(packet), request);
  return d;
}

decision dhcp_server::request(const dhcp_packet &request, const std::string &client,
                              std::int64_t now) {
  const dhcp_options &o = request.options;
  if (o.server_id) {
    // SELECTING: the client has chosen among the offers it received.
    if (*o.server_id != settings_.server_id) {
      withdraw_offer(client); // it chose another server, so our offer is free again
      return drop(drop_reason::other_server);
    }
    ipv4 address = o.requested_ip ? *o.requested_ip : request.ciaddr;
    if (address.is_zero()) return drop(drop_reason::missing_address);
    if (!available_to(address, client, now))
      return refuse(request, to_string(address) + " is not available");
    return acknowledge(request, client, address, now);
  }
  // INIT-REBOOT carries the address it remembers in option 50; RENEWING (unicast to us) and
  // REBINDING (broadcast) carry the address the client is using in ciaddr. The checks are the
  // same: is this address right for this client on this network?
  ipv4 address = o.requested_ip ? *o.requested_ip : request.ciaddr;
  if (address.is_zero()) return drop(drop_reason::missing_address);
  if (!settings_.subnet.contains(address))
    return refuse(request,
                  to_string(address) + " is not on network " + to_string(settings_.subnet));
  if (!available_to(address, client, now))
    return refuse(request, to_string(address) + " is not available to this client");
  return acknowledge(request, client, address, now);
}

decision dhcp_server::decline(const dhcp_packet &request, const std::string &client,
                              std::int64_t now) {
  const dhcp_options &o = request.options;
  if (o.server_id && *o.server_id != settings_.server_id) return drop(drop_reason::other_server);
  if (!o.requested_ip) return drop(drop_reason::missing_address);
  ipv4 address = *o.requested_ip;
  // Only the client holding the address may take it out of service; anyone else could use
  // DHCPDECLINE to empty the pool.
  const lease *l = db_.table().find(address);
  auto offer = offers_.find(address);
  bool holds_lease = l && l->is_bound(now) && client_key(*l) == client;
  bool holds_offer = offer != offers_.end() && offer->second.client == client;
  if (!holds_lease && !holds_offer) return drop(drop_reason::not_clients_lease);

  withdraw_offer(client);
  returned_.erase(address);
  lease quarantined;
  quarantined.address = address;
  quarantined.state = lease_state::declined;
  quarantined.starts = now;
  quarantined.ends = now + settings_.decline_hold;
  quarantined.hardware.length = 0; // belongs to nobody
  decision d;
  db_.stage(quarantined);
  d.persisted = quarantined;
  return d;
}

decision dhcp_server::release(const dhcp_packet &request, const std::string &client,
                              std::int64_t now) {
  const dhcp_options &o = request.options;
  if (o.server_id && *o.server_id != settings_.server_id) return drop(drop_reason::other_server);
  if (request.ciaddr.is_zero()) return drop(drop_reason::missing_address);
  const lease *l = db_.table().find(request.ciaddr);
  if (!l || !l->is_bound(now) || client_key(*l) != client)
    return drop(drop_reason::not_clients_lease);
  // Keeps the client's identity, so that it gets this address again if it comes back.
  lease released = *l;
  released.state = lease_state::released;
  released.ends = now;
  decision d;
  db_.stage(released);
  d.persisted = released;
  return d;
}

decision dhcp_server::inform(const dhcp_packet &request, const arrival &from) {
  dhcp_packet packet = make_reply(request, message_type::ack, ipv4{});
  packet.ciaddr = request.ciaddr;
  add_configuration(packet.options, false);
  decision d;
  if (!request.giaddr.is_zero() || !request.ciaddr.is_zero()) {
    d.reply = address_reply(std::move(packet), request);
  } else if (!from.source.is_zero()) {
    // Some clients leave ciaddr empty; their source address is where they are.
    ++stats_.sent_by_type[static_cast<std::size_t>(message_type::ack)];
    d.reply =
        reply{std::move(packet), from.source, settings_.client_port, delivery::unicast_ciaddr, 0};
  } else {
    return drop(drop_reason::missing_address);
  }
  return d;
}

decision dhcp_server::acknowledge(const dhcp_packet &request, const std::string &client,
                                  ipv4 address, std::int64_t now) {
  // A client holds one lease: if it moves to another address, its old one is freed.
  if (const lease *previous = db_.table().find_client(client);
      previous && previous->address != address && previous->is_bound(now)) {
    lease released = *previous;
    released.state = lease_state::released;
    released.ends = now;
    db_.stage(released);
  }
  withdraw_offer(client);
  returned_.erase(address);

  lease granted;
  granted.address = address;
  granted.state = lease_state::active;
  granted.starts = now;
  granted.ends = now + settings_.lease_time;
  granted.hardware = hardware_of(request);
  granted.client_id = request.options.client_id;
  // Informational only; the cap keeps the snapshot within what ISC's parser takes in a string.
  granted.hostname = request.options.hostname.value_or("").substr(0, max_hostname_size);

  dhcp_packet packet = make_reply(request, message_type::ack, address);
  packet.ciaddr = request.ciaddr;
  add_configuration(packet.options, true);
  decision d;
  d.reply = address_reply(std::move(packet), request);
  d.reply->wait_for_seq = db_.stage(granted);
  d.persisted = granted;
  return d;
}

decision dhcp_server::refuse(const dhcp_packet &request, const std::string &why) {
  dhcp_packet packet = make_reply(request, message_type::nak, ipv4{});
  packet.options.message = why;
  decision d;
  d.reply = address_reply(std::move(packet), request);
  return d;
}

dhcp_packet dhcp_server::make_reply(const dhcp_packet &request, message_type type,
                                    ipv4 yiaddr) const {
  dhcp_packet p;
  p.op = op_reply;
  p.htype = request.htype;
  p.hlen = request.hlen;
  p.xid = request.xid;
  p.flags = request.flags;
  p.yiaddr = yiaddr;
  p.giaddr = request.giaddr;
  p.chaddr = request.chaddr;
  p.options.type = type;
  p.options.server_id = settings_.server_id;
  // RFC 6842: the client identifier goes back unchanged; RFC 3046: so does the relay's option.
  p.options.client_id = request.options.client_id;
  p.options.relay_agent_info = request.options.relay_agent_info;
  return p;
}

void dhcp_server::add_configuration(dhcp_options &o, bool with_lease) const {
  if (with_lease) {
    o.lease_time = settings_.lease_time;
    o.renewal_time = settings_.lease_time / 2; // T1: 0.5
    o.rebinding_time =
        static_cast<std::uint32_t>(std::uint64_t{settings_.lease_time} * 7 / 8); // T2
  }
  o.subnet_mask = settings_.subnet.mask();
  if (settings_.router) o.routers = {*settings_.router};
  o.dns_servers = settings_.dns;
}

// RFC 2131 §4.1, "the server SHOULD send" paragraph, in its order.
reply dhcp_server::address_reply(dhcp_packet packet, const dhcp_packet &request) {
  ++stats_.sent_by_type[static_cast<std::size_t>(*packet.options.type)];
  bool nak = packet.options.type == message_type::nak;
  reply r;
  if (!request.giaddr.is_zero()) {
    // The relay may have to broadcast a NAK: the client's address is no longer valid.
    if (nak) packet.flags |= flag_broadcast;
    r = reply{{}, request.giaddr, settings_.server_port, delivery::relay, 0};
  } else if (nak) {
    r = reply{{}, ipv4_broadcast, settings_.client_port, delivery::broadcast, 0};
  } else if (!request.ciaddr.is_zero()) {
    r = reply{{}, request.ciaddr, settings_.client_port, delivery::unicast_ciaddr, 0};
  } else if (request.broadcast_flag()) {
    r = reply{{}, ipv4_broadcast, settings_.client_port, delivery::broadcast, 0};
  } else {
    r = reply{{}, packet.yiaddr, settings_.client_port, delivery::unicast_yiaddr, 0};
  }
  r.packet = std::move(packet);
  return r;
}

} // namespace gsdhcpd
