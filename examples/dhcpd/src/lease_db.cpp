#include "lease_db.hpp"

#include "lease_file_format.hpp"
#include "packet.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gsdhcpd {

namespace {

constexpr mode_t file_mode = 0640; // the group may read leases (monitoring), nobody else
constexpr const char *snapshot_temp_file = "leases.snapshot.tmp";
constexpr const char *journal_temp_file = "leases.journal.new";

std::string describe_errno(int error) {
  return std::strerror(error);
}

class fd_guard {
public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard &) = delete;
  fd_guard &operator=(const fd_guard &) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

private:
  int fd_;
};

std::string path_of(const std::string &dir, const char *name) {
  return dir + "/" + name;
}

int open_directory(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw lease_db_error("lease directory " + dir + ": cannot open: " + describe_errno(errno));
  return fd;
}

// O_NOFOLLOW: a symbolic link planted in the lease directory must not redirect our writes (or
// reads) to some other file. Linux reports that case as ELOOP.
[[noreturn]] void throw_open_error(const std::string &path, int error) {
  if (error == ELOOP) throw lease_db_error(path + ": is a symbolic link; refusing to follow it");
  throw lease_db_error(path + ": cannot open: " + describe_errno(error));
}

// Returns nullopt if the file does not exist.
std::optional<std::string> read_file(int dir_fd, const std::string &dir, const char *name) {
  int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_open_error(path_of(dir, name), errno);
  }
  fd_guard guard(fd);
  std::string content;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw lease_db_error(path_of(dir, name) + ": cannot read: " + describe_errno(errno));
    if (n == 0) return content;
    content.append(buffer, static_cast<std::size_t>(n));
  }
}

bool write_all(int fd, const char *data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Creates (or empties) a file with our mode whatever the umask, opened for appending.
int create_file(int dir_fd, const std::string &dir, const char *name) {
  int fd = ::openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                    file_mode);
  if (fd < 0) throw_open_error(path_of(dir, name), errno);
  if (::fchmod(fd, file_mode) != 0) {
    int error = errno;
    ::close(fd);
    throw lease_db_error(path_of(dir, name) + ": cannot set mode: " + describe_errno(error));
  }
  return fd;
}

struct loaded_db {
  lease_table table;
  load_stats stats;
  std::uint64_t last_seq = 0;
  std::optional<journal_damage> torn_tail;
  std::size_t journal_size = 0;
};

// Reads snapshot + journal. `repair` turns damage into log lines; without it damage throws.
// The journal is opened before the snapshot: a concurrent snapshot() replaces the snapshot before
// the journal, so whichever journal we get, the snapshot we open afterwards is at least as new,
// and the sequence numbers sort out the overlap.
loaded_db load(int dir_fd, const std::string &dir, bool repair, const log_function &log) {
  loaded_db db;
  const std::string journal_path = path_of(dir, lease_db::journal_file);
  const std::string snapshot_path = path_of(dir, lease_db::snapshot_file);
  auto journal = read_file(dir_fd, dir, lease_db::journal_file);
  auto snapshot = read_file(dir_fd, dir, lease_db::snapshot_file);

  auto damaged = [&](const std::string &problem, const std::string &advice) {
    if (!repair) throw lease_db_error(problem + "; " + advice);
    ++db.stats.repaired_problems;
    if (log) log("repair: " + problem + "; dropped");
  };
  const std::string repair_advice =
      "refusing to start; start with repair enabled to keep what is valid";

  if (snapshot) {
    snapshot_contents s = parse_snapshot(*snapshot);
    if (!s.has_header)
      throw lease_db_error(snapshot_path +
                           ": not a gracefulstop-dhcpd snapshot (the first line is not "
                           "'# gracefulstop-dhcpd snapshot v1 seq=... leases=... crc32c=...')");
    if (!s.checksum_ok) {
      if (!repair)
        throw lease_db_error(snapshot_path +
                             ": checksum mismatch: the file changed after it was written; " +
                             repair_advice);
      ++db.stats.repaired_problems;
      if (log)
        log("repair: " + snapshot_path + ": checksum mismatch; keeping every lease that parses");
    }
    for (const std::string &problem : s.problems)
      damaged(snapshot_path + ": " + problem, repair_advice);
    for (const lease &l : s.leases)
      db.table.put(l);
    db.stats.snapshot_seq = db.last_seq = s.seq;
    db.stats.snapshot_leases = s.leases.size();
  }

  if (journal) {
    db.journal_size = journal->size();
    journal_scan scan = scan_journal(*journal);
    for (const journal_damage &d : scan.damage)
      damaged(journal_path + ": damaged record at offset " + std::to_string(d.begin) + " (" +
                  d.reason + "), with valid records after it from offset " + std::to_string(d.end) +
                  ", so this is not a write torn by a crash; bytes " + std::to_string(d.begin) +
                  "-" + std::to_string(d.end),
              repair_advice);
    db.torn_tail = scan.torn_tail;
    if (scan.torn_tail) db.stats.torn_tail_bytes = scan.torn_tail->end - scan.torn_tail->begin;
    db.stats.journal_records = scan.records.size();
    for (const journal_record &r : scan.records) {
      if (r.seq <= db.stats.snapshot_seq) continue; // already in the snapshot
      if (r.seq != db.last_seq + 1)
        damaged(journal_path + ": record at offset " + std::to_string(r.offset) +
                    " has sequence number " + std::to_string(r.seq) + " where " +
                    std::to_string(db.last_seq + 1) +
                    " was expected, so records are missing (was a file replaced or lost?)",
                repair_advice);
      db.table.put(r.value);
      db.last_seq = std::max(db.last_seq, r.seq);
      ++db.stats.journal_applied;
    }
  }
  return db;
}

} // namespace

lease_db::lease_db(const std::string &dir, lease_db_options options)
    : dir_(dir), options_(std::move(options)) {
  dir_fd_ = open_directory(dir);
  try {
    lock_fd_ = ::openat(dir_fd_, lock_file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, file_mode);
    if (lock_fd_ < 0) throw_open_error(path_of(dir_, lock_file), errno);
    if (::fchmod(lock_fd_, file_mode) != 0)
      throw lease_db_error(path_of(dir_, lock_file) +
                           ": cannot set mode: " + describe_errno(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
      throw lease_db_locked(path_of(dir_, lock_file) +
                            ": locked: another gracefulstop-dhcpd is using " + dir_);

    loaded_db db = load(dir_fd_, dir_, options_.repair, options_.log);
    table_ = std::move(db.table);
    loaded_ = db.stats;
    last_seq_ = committed_seq_ = db.last_seq;
    journal_records_ = db.stats.journal_records;

    std::size_t valid_size = db.journal_size;
    if (db.torn_tail) {
      valid_size = db.torn_tail->begin;
      log(path_of(dir_, journal_file) + ": cutting off a torn record at offset " +
          std::to_string(db.torn_tail->begin) + " (" +
          std::to_string(db.torn_tail->end - db.torn_tail->begin) + " bytes, " +
          db.torn_tail->reason + "); it was never acknowledged");
    }
    open_journal_for_append(valid_size);
    if (loaded_.repaired_problems > 0) {
      log("repair: writing a clean snapshot and journal");
      snapshot();
    }
  } catch (...) {
    if (journal_fd_ >= 0) ::close(journal_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    ::close(dir_fd_);
    throw;
  }
}

lease_db::~lease_db() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_); // releases the flock
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

void lease_db::log(const std::string &line) const {
  if (options_.log) options_.log(line);
}

void lease_db::fail(const std::string &what, int error) {
  failed_ = true;
  throw lease_db_error(what + ": " + describe_errno(error) +
                       "; the lease files may now be incomplete, so no more writes are made");
}

void lease_db::open_journal_for_append(std::size_t valid_size) {
  const std::string path = path_of(dir_, journal_file);
  journal_fd_ = ::openat(dir_fd_, journal_file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (journal_fd_ < 0 && errno == ENOENT) {
    start_new_journal();
    return;
  }
  if (journal_fd_ < 0) throw_open_error(path, errno);
  struct stat st {};
  if (::fstat(journal_fd_, &st) != 0) fail(path + ": fstat", errno);
  if (static_cast<std::size_t>(st.st_size) != valid_size) {
    // The flush matters: appending after a cut that is not yet on disk could, after a power
    // loss, leave new records behind the old torn bytes, which would then read as damage.
    if (::ftruncate(journal_fd_, static_cast<off_t>(valid_size)) != 0)
      fail(path + ": cannot cut off the torn tail", errno);
    if (::fsync(journal_fd_) != 0) fail(path + ": fsync", errno);
  }
}

// Steps 3 of the snapshot procedure (see lease_db.hpp); also how a fresh database starts.
void lease_db::start_new_journal() {
  int fd = create_file(dir_fd_, dir_, journal_temp_file);
  fd_guard guard(fd);
  if (::fsync(fd) != 0) fail(path_of(dir_, journal_temp_file) + ": fsync", errno);
  if (::renameat(dir_fd_, journal_temp_file, dir_fd_, journal_file) != 0)
    fail(path_of(dir_, journal_file) + ": rename", errno);
  // Without this the rename may not survive a power loss, and records appended to the new
  // journal, though flushed, would be lost with its name.
  if (::fsync(dir_fd_) != 0) fail(dir_ + ": fsync of the directory", errno);
  if (journal_fd_ >= 0) ::close(journal_fd_);
  journal_fd_ = guard.release();
  journal_records_ = 0;
}

std::uint64_t lease_db::stage(const lease &l) {
  table_.put(l);
  pending_ += encode_journal_record(++last_seq_, l);
  ++pending_count_;
  return last_seq_;
}

void lease_db::commit() {
  const std::string path = path_of(dir_, journal_file);
  if (failed_) throw lease_db_error(path + ": an earlier write failed; refusing to write more");
  if (pending_.empty()) return;
  if (!write_all(journal_fd_, pending_.data(), pending_.size())) fail(path + ": write", errno);
  // fdatasync, not fsync: it flushes the data and the file size, which is all a reader needs;
  // timestamps can be lost.
  if (::fdatasync(journal_fd_) != 0) fail(path + ": fdatasync", errno);
  committed_seq_ = last_seq_;
  journal_records_ += pending_count_;
  pending_.clear();
  pending_count_ = 0;
}

void lease_db::snapshot() {
  commit();
  const std::string temp_path = path_of(dir_, snapshot_temp_file);
  std::string text = format_snapshot(table_, last_seq_);
  {
    // Until the rename nothing refers to the new file, so a failure here leaves the database as
    // it was and only this snapshot is lost.
    int fd = create_file(dir_fd_, dir_, snapshot_temp_file);
    fd_guard guard(fd);
    if (!write_all(fd, text.data(), text.size()))
      throw lease_db_error(temp_path + ": write: " + describe_errno(errno));
    if (::fsync(fd) != 0) throw lease_db_error(temp_path + ": fsync: " + describe_errno(errno));
  }
  if (::renameat(dir_fd_, snapshot_temp_file, dir_fd_, snapshot_file) != 0)
    throw lease_db_error(path_of(dir_, snapshot_file) + ": rename: " + describe_errno(errno));
  if (::fsync(dir_fd_) != 0) fail(dir_ + ": fsync of the directory", errno);
  start_new_journal();
}

lease_check check_leases(const std::string &dir, std::int64_t now) {
  lease_check result;
  try {
    fd_guard dir_fd(open_directory(dir));
    loaded_db db = load(dir_fd.get(), dir, false, nullptr);
    result.ok = true;
    result.summary = "leases=" + std::to_string(db.table.size()) +
                     " active=" + std::to_string(db.table.count_bound(now)) +
                     " journal_records=" + std::to_string(db.stats.journal_records) +
                     " snapshot_seq=" + std::to_string(db.stats.snapshot_seq);
    if (db.torn_tail)
      result.summary += " torn_tail_bytes=" + std::to_string(db.stats.torn_tail_bytes);
  } catch (const lease_db_error &e) {
    result.error = e.what();
  }
  return result;
}

void dump_leases(const std::string &dir, std::ostream &out, std::int64_t now) {
  fd_guard dir_fd(open_directory(dir));
  loaded_db db = load(dir_fd.get(), dir, false, nullptr);
  for (const auto &[address, l] : db.table.all()) {
    if (!l.is_bound(now)) continue;
    out << to_string(address) << ' '
        << (l.hardware.length ? hex_colon(l.hardware.bytes.data(), l.hardware.length) : "-") << ' '
        << l.ends << '\n';
  }
}

} // namespace gsdhcpd
