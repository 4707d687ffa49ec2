// The lease database: an in-memory lease_table kept durable by an append-only journal and a
// periodic snapshot, in one directory:
//
//     leases.journal    records appended since the snapshot (format: lease_file_format.hpp)
//     leases.snapshot   the whole table in ISC dhcpd.leases syntax, with the journal sequence
//                       number it includes
//     leases.lock       held with flock() so two daemons never share a directory
//
// The rule the server relies on: a DHCPACK is sent only after the record of its lease is durable.
// stage() queues a record and returns its sequence number; commit() writes every queued record
// with one write() and makes them durable with one fdatasync(), so a batch of requests costs one
// disk flush however large it is (group commit). The caller sends the replies whose sequence
// number is at most committed_seq().
//
// Crash safety of snapshot(), step by step (README.md has the full argument):
//   1. write leases.snapshot.tmp and fsync it: the data is on disk before any name points to it;
//   2. rename it over leases.snapshot and fsync the directory: the new snapshot is the one a
//      restart will find, before anything it replaces is thrown away;
//   3. create an empty leases.journal.new, fsync it, rename it over leases.journal, fsync the
//      directory.
// A crash between 2 and 3 leaves the new snapshot with the old journal. Every record in that
// journal has a sequence number at or below the snapshot's, so loading skips them all: nothing
// is applied twice and nothing is lost. The journal is replaced by rename rather than truncated
// so that a reader (check_leases) that opened the old journal keeps reading a consistent file.
#ifndef GSDHCPD_LEASE_DB_HPP
#define GSDHCPD_LEASE_DB_HPP

#include "lease.hpp"

#include <cstdint>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>

namespace gsdhcpd {

class lease_db_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Another process holds the directory's lock: not damage, and worth retrying later.
class lease_db_locked : public lease_db_error {
public:
  using lease_db_error::lease_db_error;
};

using log_function = std::function<void(const std::string &line)>;

struct lease_db_options {
  // Load what is valid from damaged files instead of refusing to start, log what was dropped,
  // and write clean files at once.
  bool repair = false;
  log_function log; // one line per call; may be empty
};

struct load_stats {
  std::uint64_t snapshot_seq = 0;
  std::size_t snapshot_leases = 0;
  std::size_t journal_records = 0; // valid records in the journal file
  std::size_t journal_applied = 0; // of those, the ones newer than the snapshot
  std::size_t torn_tail_bytes = 0; // cut off (lease_db) or just seen (check_leases)
  std::size_t repaired_problems = 0;
};

class lease_db {
public:
  static constexpr const char *journal_file = "leases.journal";
  static constexpr const char *snapshot_file = "leases.snapshot";
  static constexpr const char *lock_file = "leases.lock";

  // Opens the database in an existing directory, creating the files if needed, and loads it.
  // A torn last journal record is cut off (and logged). Damage anywhere else throws
  // lease_db_error naming the file, the offset or line, and what is wrong, unless repairing.
  explicit lease_db(const std::string &dir, lease_db_options options = {});
  ~lease_db();
  lease_db(const lease_db &) = delete;
  lease_db &operator=(const lease_db &) = delete;

  const lease_table &table() const { return table_; }
  const load_stats &loaded() const { return loaded_; }

  // Puts the lease into the table at once, so that later requests see it, and queues its
  // record. Returns the record's sequence number.
  std::uint64_t stage(const lease &l);

  // Writes all queued records and makes them durable with a single fdatasync. After a failed
  // write or flush the journal's state on disk is unknown, so this and every later call throw.
  void commit();

  std::uint64_t committed_seq() const { return committed_seq_; }
  std::size_t pending_records() const { return pending_count_; }
  std::size_t journal_records() const { return journal_records_; }

  // Commits, then replaces the snapshot with the current table and starts an empty journal.
  void snapshot();

private:
  void log(const std::string &line) const;
  void open_journal_for_append(std::size_t valid_size);
  void start_new_journal();
  [[noreturn]] void fail(const std::string &what, int error);

  std::string dir_;
  lease_db_options options_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  int journal_fd_ = -1;
  lease_table table_;
  load_stats loaded_;
  std::string pending_; // encoded records not yet written
  std::size_t pending_count_ = 0;
  std::uint64_t last_seq_ = 0;
  std::uint64_t committed_seq_ = 0;
  std::size_t journal_records_ = 0;
  bool failed_ = false;
};

struct lease_check {
  bool ok = false;
  std::string summary; // "leases=12 active=10 journal_records=40 snapshot_seq=7" when ok
  std::string error;   // the reason when not ok
};

// Reads the database without changing or locking anything, so it is safe while the daemon runs:
// a journal record being appended at that moment looks like a torn tail and is reported, not
// treated as damage. `now` decides which leases count as active.
lease_check check_leases(const std::string &dir, std::int64_t now);

// One line per lease bound at `now`: "IP MAC EXPIRY_UNIX" ("-" for a lease without a hardware
// address). Read-only like check_leases; throws lease_db_error if the files are damaged.
void dump_leases(const std::string &dir, std::ostream &out, std::int64_t now);

} // namespace gsdhcpd

#endif // GSDHCPD_LEASE_DB_HPP
