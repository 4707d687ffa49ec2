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
  std::uint64_t drained = 0;          // datagrams answered by drain()
  std::uint64_t left_for_restart = 0; // read by drain() but received after the stop began
};

// What one drain() call did.
struct drain_step {
  std::size_t answered = 0;
  bool finished = false; // the socket is empty, or what is left arrived after the cut-off
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

  // For a graceful stop: one batch of the requests the kernel received at or before `cutoff_ns`
  // (CLOCK_REALTIME nanoseconds, see arrival::received_ns), answered and committed exactly like
  // on_readable(). A datagram received later ends the drain: it and the rest of the batch are
  // read and dropped, as closing the socket would drop them; those clients retransmit to the
  // next instance. Call until finished. Throws lease_db_error like on_readable().
  drain_step drain(std::int64_t now, std::int64_t cutoff_ns);

  // For a graceful stop, after the socket is no longer read: writes a snapshot so that the next
  // start reads one file. Throws lease_db_error on failure (the journal remains valid).
  void flush();

  // SIGUSR1: compacts the journal into the snapshot now, so that an operator can check the
  // snapshot (dhcpd -T) or copy it. Throws lease_db_error on failure.
  void checkpoint(std::int64_t now);

  const service_stats &stats() const { return stats_; }

private:
  // One batch: handle what passes `accept`, commit, then send the replies that waited on it.
  template <typename Accept>
  std::size_t serve_batch(std::int64_t now, Accept &&accept);

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
