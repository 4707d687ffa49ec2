// A lease and the in-memory table of all leases, indexed the ways the server looks them up.
#ifndef GSDHCPD_LEASE_HPP
#define GSDHCPD_LEASE_HPP

#include "ipv4.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gsdhcpd {

enum class lease_state : std::uint8_t {
  active = 1,   // bound to its client until `ends`; after that, expired but still remembered
  released = 2, // the client gave it back; free, but its client gets it again if it returns
  declined = 3, // a client reported the address in use; not offered to anyone until `ends`
};
const char *to_string(lease_state state);

struct hardware_address {
  std::uint8_t type = 1; // ARP hardware type; 1 = Ethernet
  std::uint8_t length = 0;
  std::array<std::uint8_t, 16> bytes{};

  friend bool operator==(const hardware_address &a, const hardware_address &b) {
    // Bytes past `length` are not part of the address.
    return a.type == b.type && a.length == b.length &&
           std::equal(a.bytes.begin(), a.bytes.begin() + a.length, b.bytes.begin());
  }
};

struct lease {
  ipv4 address;
  lease_state state = lease_state::active;
  std::int64_t starts = 0; // Unix seconds
  std::int64_t ends = 0;   // Unix seconds; for a released lease, when it was released
  hardware_address hardware;
  std::vector<std::uint8_t> client_id; // DHCP option 61; empty when the client sent none
  std::string hostname;                // DHCP option 12, informational only

  bool is_bound(std::int64_t now) const { return state == lease_state::active && ends > now; }

  friend bool operator==(const lease &a, const lease &b) {
    return a.address == b.address && a.state == b.state && a.starts == b.starts &&
           a.ends == b.ends && a.hardware == b.hardware && a.client_id == b.client_id &&
           a.hostname == b.hostname;
  }
  friend bool operator!=(const lease &a, const lease &b) { return !(a == b); }
};

// Who a lease belongs to. RFC 2131 §4.2: the client identifier (option 61) when the client sent
// one, else the hardware address. The two kinds get different prefixes so that a client id that
// happens to equal someone's MAC address cannot claim that client's lease.
std::string client_key(const std::vector<std::uint8_t> &client_id, const hardware_address &hw);
inline std::string client_key(const lease &l) {
  return client_key(l.client_id, l.hardware);
}

// Every lease record, one per address (the latest state wins), plus the indexes the allocator
// needs. It does no I/O; lease_db keeps it in step with the files.
class lease_table {
public:
  const lease *find(ipv4 address) const;
  // The lease most recently recorded for this client, if that address still belongs to it.
  const lease *find_client(const std::string &key) const;
  void put(const lease &l);

  // Calls f(const lease &) -> bool, until it returns false, for the leases whose `ends` is at or
  // before `now`, oldest first: the addresses that may go to a new client, least recently used
  // first, so that a returning client finds its old address still free for as long as possible.
  template <typename F>
  void for_each_reusable(std::int64_t now, F &&f) const {
    for (const auto &[ends, address] : by_ends_) {
      if (ends > now) break;
      if (!f(by_address_.at(ipv4{address}))) break;
    }
  }

  const std::map<ipv4, lease> &all() const { return by_address_; }
  std::size_t size() const { return by_address_.size(); }
  std::size_t count_bound(std::int64_t now) const;

private:
  std::map<ipv4, lease> by_address_;
  std::unordered_map<std::string, ipv4> by_client_;
  std::set<std::pair<std::int64_t, std::uint32_t>> by_ends_;
};

} // namespace gsdhcpd

#endif // GSDHCPD_LEASE_HPP
