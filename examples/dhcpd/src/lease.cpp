#include "lease.hpp"

namespace gsdhcpd {

const char *to_string(lease_state state) {
  switch (state) {
  case lease_state::active:
    return "active";
  case lease_state::released:
    return "released";
  case lease_state::declined:
    return "declined";
  }
  return "unknown";
}

std::string client_key(const std::vector<std::uint8_t> &client_id, const hardware_address &hw) {
  std::string key;
  if (!client_id.empty()) {
    key = "id:";
    key.append(client_id.begin(), client_id.end());
  } else {
    key = "hw:";
    key += static_cast<char>(hw.type);
    key.append(hw.bytes.begin(), hw.bytes.begin() + hw.length);
  }
  return key;
}

const lease *lease_table::find(ipv4 address) const {
  auto it = by_address_.find(address);
  return it == by_address_.end() ? nullptr : &it->second;
}

const lease *lease_table::find_client(const std::string &key) const {
  auto it = by_client_.find(key);
  if (it == by_client_.end()) return nullptr;
  return find(it->second);
}

void lease_table::put(const lease &l) {
  auto it = by_address_.find(l.address);
  if (it != by_address_.end()) {
    const lease &old = it->second;
    by_ends_.erase({old.ends, old.address.value});
    auto owner = by_client_.find(client_key(old));
    if (owner != by_client_.end() && owner->second == old.address) by_client_.erase(owner);
    it->second = l;
  } else {
    by_address_.emplace(l.address, l);
  }
  by_ends_.emplace(l.ends, l.address.value);
  // A declined address belongs to nobody: the client that declined it must get another one.
  if (l.state != lease_state::declined) by_client_[client_key(l)] = l.address;
}

std::size_t lease_table::count_bound(std::int64_t now) const {
  std::size_t count = 0;
  for (const auto &entry : by_address_)
    if (entry.second.is_bound(now)) ++count;
  return count;
}

} // namespace gsdhcpd
