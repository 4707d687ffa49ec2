// One turn of the daemon's loop, independent of the loop itself: receive a batch of requests,
// answer them, make their leases durable with one flush, and only then send the ACKs.
#ifndef GSDHCPD_SERVICE_HPP
#define GSDHCPD_SERVICE_HPP

#include "lease_db.hpp"
#include "server.hpp"
#include "socket.hpp"

#include <cstdint>
#include <vector>

namespace gsdhcpd {

struct service_options {
  std::size_t max_batch = 64; // datagrams per on_readable(), so timers and stop requests get a turn
  // on_timer() writes a snapshot when the journal has this many records...
  std::size_t snapshot_after_records = 100000;
  // ...or when it has any and the last snapshot is this old (seconds).
  std::int64_t snapshot_interval = 3600;
};

struct service_stats {
  std::uint64_t batches = 0;
  std::uint64_t commits = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t snapshot_failures = 0;
};

class dhcp_service {
public:
  // All three must outlive the service. `now` for the snapshot clock starts at `started`.
  dhcp_service(dhcp_socket &socket, dhcp_server &server, lease_db &db, log_function log,
               std::int64_t started, service_options options = {});

  // Call when socket.fd() is readable. Returns how many datagrams were handled; 0 means the
  // socket was drained. Throws lease_db_error when the commit fails: the ACKs that needed it are
  // discarded unsent, and the daemon must stop (lease_db refuses all further writes).
  std::size_t on_readable(std::int64_t now);

  // Call now and then (a minute apart is plenty): compacts the journal into a snapshot when it
  // has grown or aged. A failed snapshot is logged and retried next time; the journal still
  // holds everything.
  void on_timer(std::int64_t now);

  // For a graceful stop, after the socket is no longer read: writes a snapshot so that the next
  // start reads one file. Throws lease_db_error on failure (the journal remains valid).
  void flush();

  const service_stats &stats() const { return stats_; }

private:
  dhcp_socket &socket_;
  dhcp_server &server_;
  lease_db &db_;
  log_function log_;
  service_options options_;
  service_stats stats_;
  std::int64_t last_snapshot_;
  std::vector<reply> waiting_; // replies held until their lease is durable
};

} // namespace gsdhcpd

#endif // GSDHCPD_SERVICE_HPP
