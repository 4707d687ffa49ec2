#include "service.hpp"

namespace gsdhcpd {

dhcp_service::dhcp_service(dhcp_socket &socket, dhcp_server &server, lease_db &db, log_function log,
                           std::int64_t started, service_options options)
    : socket_(socket), server_(server), db_(db), log_(std::move(log)), options_(options),
      last_snapshot_(started) {}

template <typename Accept>
std::size_t dhcp_service::serve_batch(std::int64_t now, Accept &&accept) {
  waiting_.clear();
  std::size_t handled = socket_.on_readable(
      [&](const std::uint8_t *data, std::size_t size, const arrival &from) {
        if (!accept(from)) return;
        decision d = server_.handle_datagram(data, size, from, now);
        if (!d.reply) return;
        // OFFER, NAK and INFORM replies promise nothing that must survive a crash.
        if (d.reply->wait_for_seq == 0)
          socket_.send(*d.reply);
        else
          waiting_.push_back(std::move(*d.reply));
      },
      options_.max_batch);
  if (handled == 0) return 0;
  ++stats_.batches;
  if (db_.pending_records() > 0) {
    try {
      db_.commit();
    } catch (...) {
      waiting_.clear();
      throw;
    }
    ++stats_.commits;
  }
  for (const reply &r : waiting_)
    socket_.send(r);
  waiting_.clear();
  return handled;
}

std::size_t dhcp_service::on_readable(std::int64_t now) {
  return serve_batch(now, [](const arrival &) { return true; });
}

drain_step dhcp_service::drain(std::int64_t now, std::int64_t cutoff_ns) {
  drain_step step;
  bool past_cutoff = false;
  std::size_t read = serve_batch(now, [&](const arrival &from) {
    // Datagrams come out of the socket in the order they arrived: once one is past the
    // cut-off, so is everything after it.
    if (past_cutoff || from.received_ns > cutoff_ns) {
      past_cutoff = true;
      ++stats_.left_for_restart;
      return false;
    }
    ++step.answered;
    return true;
  });
  stats_.drained += step.answered;
  // Fewer than a full batch: the socket ran dry (EAGAIN) before the batch was full.
  step.finished = read < options_.max_batch || past_cutoff;
  return step;
}

void dhcp_service::checkpoint(std::int64_t now) {
  db_.snapshot();
  ++stats_.snapshots;
  last_snapshot_ = now;
}

void dhcp_service::on_timer(std::int64_t now) {
  std::size_t records = db_.journal_records();
  bool long_journal = records >= options_.snapshot_after_records;
  bool old_journal = records > 0 && now - last_snapshot_ >= options_.snapshot_interval;
  if (!long_journal && !old_journal) return;
  try {
    db_.snapshot();
    ++stats_.snapshots;
    last_snapshot_ = now;
  } catch (const lease_db_error &e) {
    ++stats_.snapshot_failures;
    if (log_) log_(std::string("snapshot failed, will retry: ") + e.what());
  }
}

void dhcp_service::flush() {
  db_.snapshot();
  ++stats_.snapshots;
}

} // namespace gsdhcpd
