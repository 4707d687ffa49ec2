// The DHCP protocol logic of RFC 2131 §4.3, without sockets or clocks: a request and when and how
// it arrived go in; a reply to send (or none) and the lease record to persist come out.
//
// The server is authoritative for its one subnet, like ISC dhcpd with `authoritative;`: a client
// asking for an address that is not available to it gets a DHCPNAK at once, so that it falls
// back to DHCPDISCOVER without waiting out its retransmission timers.
#ifndef GSDHCPD_SERVER_HPP
#define GSDHCPD_SERVER_HPP

#include "config.hpp"
#include "lease_db.hpp"
#include "packet.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

namespace gsdhcpd {

struct server_settings {
  ipv4 server_id;
  gsdhcpd::subnet subnet;
  ipv4 pool_first, pool_last;
  std::optional<ipv4> router;
  std::vector<ipv4> dns;
  std::uint32_t lease_time = 3600;
  // An offered address is kept for its client this long, so that two clients discovering at the
  // same time are not offered the same address.
  std::uint32_t offer_hold = 60;
  // A declined address (a client found it in use) is not handed out for this long. Kea's
  // default probation period.
  std::uint32_t decline_hold = 86400;
  std::uint16_t server_port = 67; // where replies to relay agents go
  std::uint16_t client_port = 68; // where replies to clients go
};

// `server_id` is needed separately: in interface mode it comes from the interface.
server_settings make_server_settings(const config &c, ipv4 server_id);

// Who receives a reply (RFC 2131 §4.1).
enum class delivery {
  relay,          // to giaddr at the server port: the relay agent forwards it
  unicast_ciaddr, // to the client's own configured address
  broadcast,      // to 255.255.255.255 at the client port
  // To yiaddr at the client port, for a client without an address that did not ask for
  // broadcast. Reaching it needs an ARP entry the kernel does not have (the client cannot answer
  // ARP for an address it does not have yet), which a UDP socket cannot add; dhcp_socket sends
  // these as broadcasts instead, which every client must accept.
  unicast_yiaddr,
};
const char *to_string(delivery d);

// How a datagram reached us, from the socket layer.
struct arrival {
  ipv4 source; // the sender: the client, or the relay agent
  std::uint16_t source_port = 0;
  ipv4 destination; // our address, or 255.255.255.255 for a broadcast
  // When the kernel received it (CLOCK_REALTIME, nanoseconds; SO_TIMESTAMPNS), 0 if unknown. A
  // graceful stop answers what arrived before the stop and leaves later requests to the next
  // instance (see dhcp_service::drain).
  std::int64_t received_ns = 0;
};

struct reply {
  dhcp_packet packet;
  ipv4 address;
  std::uint16_t port = 0;
  gsdhcpd::delivery delivery = delivery::broadcast;
  // Send only once lease_db::committed_seq() has reached this; 0 when nothing needs persisting.
  std::uint64_t wait_for_seq = 0;
};

enum class drop_reason {
  malformed,            // parse_packet failed; server_stats::malformed has the reason
  not_a_request,        // op is BOOTREPLY
  server_message,       // DHCPOFFER, DHCPACK or DHCPNAK sent to a server
  unknown_network,      // relayed from a network (giaddr) outside our subnet
  unsupported_hardware, // no client id, and a hardware address the lease file cannot record
  other_server,         // the client chose, or addresses, another server
  missing_address,      // the message lacks the address it must carry
  pool_exhausted,       // no address to offer
  not_clients_lease,    // DHCPRELEASE or DHCPDECLINE for an address the client does not hold
};
inline constexpr std::size_t drop_reason_count = 9;
const char *to_string(drop_reason reason);

struct decision {
  std::optional<gsdhcpd::reply> reply;
  std::optional<lease> persisted; // the record staged in the lease_db, if any
  std::optional<drop_reason> dropped;
};

struct server_stats {
  std::uint64_t received = 0;
  std::array<std::uint64_t, 9> received_by_type{}; // indexed by message_type
  std::array<std::uint64_t, 9> sent_by_type{};
  std::array<std::uint64_t, drop_reason_count> dropped{};
  std::array<std::uint64_t, parse_error_count> malformed{};
  std::uint64_t overload_ignored = 0; // option 52 seen; used the options field alone

  // "received=.. DHCPDISCOVER=.. ... dropped.other_server=.. malformed.bad_magic_cookie=.."
  // listing only counters that are not zero.
  std::string to_string() const;
};

class dhcp_server {
public:
  // `db` must outlive the server. Records go to it with stage(); committing them is the
  // caller's job, before sending any reply whose wait_for_seq asks for it.
  dhcp_server(server_settings settings, lease_db &db);

  decision handle(const dhcp_packet &request, const arrival &from, std::int64_t now);
  // Parses first; a malformed datagram is counted by reason and dropped.
  decision handle_datagram(const std::uint8_t *data, std::size_t size, const arrival &from,
                           std::int64_t now);

  const server_stats &stats() const { return stats_; }
  const server_settings &settings() const { return settings_; }

  // A reload: new subnet, pool, router, DNS or lease time, in force for the next request.
  // Leases are untouched (a lease outside a new pool stays until it ends; its client is NAKed
  // when it renews). Offers outside the new pool are withdrawn, so no client is told to take an
  // address the server would then refuse. The server id and ports cannot change here.
  void reconfigure(const server_settings &next);

private:
  struct offer {
    std::string client;
    std::int64_t expires = 0;
  };

  decision discover(const dhcp_packet &request, const std::string &client, std::int64_t now);
  decision request(const dhcp_packet &request, const std::string &client, std::int64_t now);
  decision decline(const dhcp_packet &request, const std::string &client, std::int64_t now);
  decision release(const dhcp_packet &request, const std::string &client, std::int64_t now);
  decision inform(const dhcp_packet &request, const arrival &from);

  decision acknowledge(const dhcp_packet &request, const std::string &client, ipv4 address,
                       std::int64_t now);
  decision refuse(const dhcp_packet &request, const std::string &why);
  decision drop(drop_reason reason);
  dhcp_packet make_reply(const dhcp_packet &request, message_type type, ipv4 yiaddr) const;
  void add_configuration(dhcp_options &options, bool with_lease) const;
  gsdhcpd::reply address_reply(dhcp_packet packet, const dhcp_packet &request);

  bool in_pool(ipv4 a) const { return settings_.pool_first <= a && a <= settings_.pool_last; }
  bool offered_to_other(ipv4 address, const std::string &client, std::int64_t now) const;
  bool available_to(ipv4 address, const std::string &client, std::int64_t now) const;
  std::optional<ipv4> choose_address(const dhcp_packet &request, const std::string &client,
                                     std::int64_t now);
  void expire_offers(std::int64_t now);
  void withdraw_offer(const std::string &client);

  server_settings settings_;
  lease_db &db_;
  server_stats stats_;
  std::map<ipv4, offer> offers_;
  std::unordered_map<std::string, ipv4> offer_by_client_;
  std::set<std::pair<std::int64_t, std::uint32_t>> offer_expiry_;
  // Addresses below next_unused_ that were offered but never leased: free again.
  std::set<ipv4> returned_;
  // Every pool address from here on has never been leased or offered since start-up (leases
  // loaded from disk are skipped as it advances).
  ipv4 next_unused_;
};

} // namespace gsdhcpd

#endif // GSDHCPD_SERVER_HPP
