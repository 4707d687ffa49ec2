// Lease database: durability round trips, crash and damage handling, the file formats, the
// checker and dump, and acceptance of the snapshot by ISC dhcpd itself.
#include "lease_db.hpp"
#include "lease_file_format.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace gsdhcpd;
namespace fs = std::filesystem;

namespace {

class temp_dir {
public:
  temp_dir() {
    char pattern[] = "/tmp/gsdhcpd-leases-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() { fs::remove_all(path_); }
  const std::string &path() const { return path_; }
  std::string file(const char *name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

std::string read_bytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

constexpr std::int64_t now = 1795550400; // 2026-11-24 (a Tuesday) 20:00:00 UTC

lease make_lease(int i) {
  lease l;
  l.address = ipv4{0x0A000000u + 10 + static_cast<std::uint32_t>(i)};
  l.state = lease_state::active;
  l.starts = now;
  l.ends = now + 3600;
  l.hardware.type = 1;
  l.hardware.length = 6;
  l.hardware.bytes = {0x02,
                      0,
                      0,
                      static_cast<std::uint8_t>(i >> 16),
                      static_cast<std::uint8_t>(i >> 8),
                      static_cast<std::uint8_t>(i)};
  return l;
}

// Leases that exercise every field and state the formats must carry.
std::vector<lease> varied_leases() {
  std::vector<lease> leases;
  lease a = make_lease(1);
  a.client_id = {1, 0x02, 0, 0, 0, 0, 1};
  a.hostname = "quote\" back\\slash\nnewline \x01\xff";
  leases.push_back(a);
  lease b = make_lease(2);
  b.state = lease_state::released;
  b.ends = now - 10;
  leases.push_back(b);
  lease c = make_lease(3);
  c.state = lease_state::declined;
  c.hardware.length = 0;
  c.ends = now + 86400;
  leases.push_back(c);
  lease d = make_lease(4);
  d.hardware.type = 6; // token ring
  d.ends = now - 5000; // expired
  leases.push_back(d);
  lease e = make_lease(5);
  e.hardware.type = 32; // InfiniBand: identified by client id
  e.hardware.length = 0;
  e.client_id = std::vector<std::uint8_t>(20, 0xab);
  leases.push_back(e);
  return leases;
}

struct log_capture {
  std::vector<std::string> lines;
  log_function function() {
    return [this](const std::string &line) { lines.push_back(line); };
  }
  bool contains(const std::string &text) const {
    for (const auto &l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

std::string open_error(const std::string &dir, bool repair = false) {
  try {
    lease_db db(dir, lease_db_options{repair, nullptr});
  } catch (const lease_db_error &e) {
    return e.what();
  }
  return "";
}

// Offsets of the records in a journal file.
std::vector<std::size_t> record_offsets(const std::string &bytes) {
  std::vector<std::size_t> offsets;
  for (const journal_record &r : scan_journal(bytes).records)
    offsets.push_back(r.offset);
  return offsets;
}

void fill(lease_db &db, int count, int first = 0) {
  for (int i = first; i < first + count; ++i)
    db.stage(make_lease(i));
  db.commit();
}

} // namespace

TEST_CASE("ISC dates are UTC with the weekday first") {
  CHECK(format_isc_time(0) == "4 1970/01/01 00:00:00");
  CHECK(format_isc_time(now) == "2 2026/11/24 20:00:00");
  CHECK(format_isc_time(951782400) == "2 2000/02/29 00:00:00");
  CHECK(parse_isc_time("2 2026/11/24 20:00:00") == now);
  CHECK_FALSE(parse_isc_time("2 2026/13/24 16:00:00"));
  CHECK_FALSE(parse_isc_time("2 2026/11/24 16:00"));
  CHECK_FALSE(parse_isc_time("2 2026/11/24 16:00:00 extra"));
  std::mt19937_64 random(7);
  for (int i = 0; i < 1000; ++i) {
    std::int64_t t = static_cast<std::int64_t>(random() % 8000000000ull);
    REQUIRE(parse_isc_time(format_isc_time(t)) == t);
  }
}

TEST_CASE("a journal record decodes to the lease that was encoded") {
  std::string bytes;
  std::vector<lease> leases = varied_leases();
  for (std::size_t i = 0; i < leases.size(); ++i)
    bytes += encode_journal_record(i + 1, leases[i]);
  journal_scan scan = scan_journal(bytes);
  CHECK(scan.damage.empty());
  CHECK_FALSE(scan.torn_tail);
  REQUIRE(scan.records.size() == leases.size());
  for (std::size_t i = 0; i < leases.size(); ++i) {
    CHECK(scan.records[i].seq == i + 1);
    CHECK(scan.records[i].value == leases[i]);
  }
}

TEST_CASE("a fresh directory gets its files, all mode 0640 whatever the umask") {
  temp_dir dir;
  mode_t old_umask = umask(077); // would make files 0600 if the mode were left to it
  {
    lease_db db(dir.path());
    fill(db, 3);
    db.snapshot();
  }
  umask(old_umask);
  for (const char *name : {lease_db::journal_file, lease_db::snapshot_file, lease_db::lock_file}) {
    struct stat st {};
    REQUIRE(stat(dir.file(name).c_str(), &st) == 0);
    INFO(name);
    CHECK((st.st_mode & 07777) == 0640);
  }
}

TEST_CASE("committed leases survive a restart and uncommitted ones do not reach the disk") {
  temp_dir dir;
  std::vector<lease> leases = varied_leases();
  {
    lease_db db(dir.path());
    CHECK(db.table().size() == 0);
    std::uint64_t last = 0;
    for (const lease &l : leases)
      last = db.stage(l);
    CHECK(db.committed_seq() < last);
    CHECK(db.pending_records() == leases.size());
    CHECK(read_bytes(dir.file(lease_db::journal_file)).empty()); // staged is not yet written
    db.commit();
    CHECK(db.committed_seq() == last); // one commit covers every staged record
    CHECK(db.pending_records() == 0);
    db.stage(make_lease(50)); // never committed: never acknowledged, so losing it is correct
  }
  lease_db db(dir.path());
  REQUIRE(db.table().size() == leases.size());
  for (const lease &l : leases)
    CHECK(*db.table().find(l.address) == l);
  CHECK_FALSE(db.table().find(make_lease(50).address));
  CHECK(db.loaded().journal_records == leases.size());
}

TEST_CASE("the latest record for an address wins on reload") {
  temp_dir dir;
  lease changed = make_lease(1);
  {
    lease_db db(dir.path());
    db.stage(make_lease(1));
    changed.state = lease_state::released;
    changed.ends = now + 1;
    db.stage(changed);
    db.commit();
  }
  lease_db db(dir.path());
  CHECK(db.table().size() == 1);
  CHECK(*db.table().find(changed.address) == changed);
}

TEST_CASE("a snapshot holds every lease, empties the journal, and later records add to it") {
  temp_dir dir;
  std::vector<lease> leases = varied_leases();
  {
    lease_db db(dir.path());
    for (const lease &l : leases)
      db.stage(l);
    db.snapshot(); // commits the staged records first
    CHECK(db.committed_seq() == leases.size());
    CHECK(db.journal_records() == 0);
    CHECK(read_bytes(dir.file(lease_db::journal_file)).empty());
    db.stage(make_lease(40));
    db.commit();
  }
  std::string text = read_bytes(dir.file(lease_db::snapshot_file));
  CHECK(text.rfind("# gracefulstop-dhcpd snapshot v1 seq=5 leases=5 crc32c=", 0) == 0);
  CHECK(text.find("lease 10.0.0.11 {\n  starts 2 2026/11/24 20:00:00;\n  ends 2 2026/11/24 "
                  "21:00:00;\n  binding state active;\n  hardware ethernet 02:00:00:00:00:01;\n"
                  "  uid 01:02:00:00:00:00:01;\n") != std::string::npos);
  CHECK(text.find("binding state abandoned;") != std::string::npos);
  CHECK(text.find("hardware token-ring") != std::string::npos);

  lease_db db(dir.path());
  CHECK(db.loaded().snapshot_seq == 5);
  CHECK(db.loaded().snapshot_leases == 5);
  CHECK(db.loaded().journal_applied == 1);
  REQUIRE(db.table().size() == 6);
  for (lease expected : leases) {
    // ISC syntax has no way to name a hardware type without an address; such clients are
    // known by their client id, so nothing depends on it.
    if (expected.hardware.length == 0) expected.hardware.type = 1;
    CHECK(*db.table().find(expected.address) == expected);
  }
  CHECK(*db.table().find(make_lease(40).address) == make_lease(40));
}

TEST_CASE("a torn last record is cut off at every byte offset, and appending goes on") {
  temp_dir original;
  {
    lease_db db(original.path());
    fill(db, 4);
    lease last = make_lease(9);
    last.hostname = "the-last-one";
    db.stage(last);
    db.commit();
  }
  const std::string journal = read_bytes(original.file(lease_db::journal_file));
  const std::size_t last_offset = record_offsets(journal).back();

  for (std::size_t cut = last_offset; cut < journal.size(); ++cut) {
    INFO("journal cut at byte " << cut << " of " << journal.size());
    temp_dir dir;
    write_bytes(dir.file(lease_db::journal_file), journal.substr(0, cut));
    log_capture log;
    {
      lease_db db(dir.path(), lease_db_options{false, log.function()});
      CHECK(db.table().size() == 4);
      CHECK_FALSE(db.table().find(make_lease(9).address));
      if (cut > last_offset) {
        CHECK(log.contains("cutting off a torn record at offset " + std::to_string(last_offset)));
        CHECK(db.loaded().torn_tail_bytes == cut - last_offset);
      }
      CHECK(fs::file_size(dir.file(lease_db::journal_file)) == last_offset);
      db.stage(make_lease(20));
      db.commit();
    }
    lease_db db(dir.path());
    CHECK(db.table().size() == 5);
    CHECK(db.loaded().torn_tail_bytes == 0);
  }
}

TEST_CASE("zeros or garbage after the last record count as a torn tail") {
  for (std::string tail : {std::string(4096, '\0'), std::string("\x50\x00\x00\x00garbage", 11)}) {
    temp_dir dir;
    {
      lease_db db(dir.path());
      fill(db, 3);
    }
    std::string journal = read_bytes(dir.file(lease_db::journal_file));
    write_bytes(dir.file(lease_db::journal_file), journal + tail);
    lease_db db(dir.path());
    CHECK(db.table().size() == 3);
    CHECK(db.loaded().torn_tail_bytes == tail.size());
  }
}

TEST_CASE("client-chosen bytes cannot pose as a record behind a torn write") {
  // A hostname holding the exact bytes of a valid record: if they were stored raw, cutting the
  // journal inside this lease would leave a "valid record" after damage, and the server would
  // refuse to start (or, repairing, accept a lease nobody was given).
  lease planted = make_lease(77);
  planted.address = *parse_ipv4("10.0.0.250");
  std::string fake = encode_journal_record(6, planted);
  temp_dir original;
  {
    lease_db db(original.path());
    fill(db, 4);
    lease attacker = make_lease(5);
    attacker.hostname = fake + fake;
    attacker.client_id.assign(fake.begin(), fake.end());
    db.stage(attacker);
    db.commit();
  }
  const std::string journal = read_bytes(original.file(lease_db::journal_file));
  const std::size_t last_offset = record_offsets(journal).back();
  for (std::size_t cut = last_offset + 1; cut < journal.size(); ++cut) {
    INFO("cut at " << cut);
    journal_scan scan = scan_journal(journal.substr(0, cut));
    REQUIRE(scan.damage.empty());
    REQUIRE(scan.torn_tail);
    REQUIRE(scan.records.size() == 4);
  }
}

TEST_CASE("damage in the middle of the journal refuses to start, naming file and offset") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 5);
  }
  std::string journal = read_bytes(dir.file(lease_db::journal_file));
  std::vector<std::size_t> offsets = record_offsets(journal);
  journal[offsets[2] + 20] ^= 0x01; // one bit in the third record's body
  write_bytes(dir.file(lease_db::journal_file), journal);

  std::string error = open_error(dir.path());
  CHECK(error.find(dir.file(lease_db::journal_file) + ": damaged record at offset " +
                   std::to_string(offsets[2]) + " (checksum mismatch (stored ") == 0);
  CHECK(error.find("with valid records after it from offset " + std::to_string(offsets[3])) !=
        std::string::npos);
  CHECK(error.find("refusing to start") != std::string::npos);
  CHECK(read_bytes(dir.file(lease_db::journal_file)) == journal); // nothing was changed

  lease_check check = check_leases(dir.path(), now);
  CHECK_FALSE(check.ok);
  CHECK(check.error == error);
}

TEST_CASE("repair keeps the valid records, logs what it dropped and writes clean files") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 5);
  }
  std::string journal = read_bytes(dir.file(lease_db::journal_file));
  std::vector<std::size_t> offsets = record_offsets(journal);
  journal[offsets[1] + 3] ^= 0x40; // the second record's length field
  write_bytes(dir.file(lease_db::journal_file), journal);

  log_capture log;
  {
    lease_db db(dir.path(), lease_db_options{true, log.function()});
    CHECK(db.table().size() == 4);
    CHECK_FALSE(db.table().find(make_lease(1).address));
    CHECK(db.loaded().repaired_problems >= 1);
  }
  CHECK(log.contains("repair: " + dir.file(lease_db::journal_file) + ": damaged record at offset " +
                     std::to_string(offsets[1])));
  CHECK(log.contains("repair: writing a clean snapshot and journal"));
  lease_db db(dir.path()); // no repair needed any more
  CHECK(db.table().size() == 4);
  CHECK(db.loaded().repaired_problems == 0);
}

TEST_CASE("a crash between the snapshot rename and the journal reset loses and repeats nothing") {
  temp_dir dir;
  std::string old_journal;
  {
    lease_db db(dir.path());
    fill(db, 6);
    old_journal = read_bytes(dir.file(lease_db::journal_file));
    db.snapshot();
  }
  // As if the process died right after step 2 of snapshot(): new snapshot, old journal.
  write_bytes(dir.file(lease_db::journal_file), old_journal);
  {
    lease_db db(dir.path());
    CHECK(db.table().size() == 6);
    CHECK(db.loaded().snapshot_seq == 6);
    CHECK(db.loaded().journal_records == 6);
    CHECK(db.loaded().journal_applied == 0); // all already in the snapshot
    lease changed = make_lease(2);
    changed.state = lease_state::released;
    db.stage(changed); // sequence 7, appended behind the stale records
    db.commit();
  }
  lease_db db(dir.path());
  CHECK(db.table().size() == 6);
  CHECK(db.table().find(make_lease(2).address)->state == lease_state::released);
  CHECK(db.loaded().journal_applied == 1);
}

TEST_CASE("a leftover temporary snapshot from a crash before the rename is ignored") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 2);
  }
  write_bytes(dir.file("leases.snapshot.tmp"), "# half-written");
  {
    lease_db db(dir.path());
    CHECK(db.table().size() == 2);
    db.snapshot(); // overwrites the leftover
  }
  CHECK_FALSE(fs::exists(dir.file("leases.snapshot.tmp")));
  CHECK(lease_db(dir.path()).table().size() == 2);
}

TEST_CASE("missing records (a sequence gap) are refused unless repairing") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 4);
  }
  std::string journal = read_bytes(dir.file(lease_db::journal_file));
  std::vector<std::size_t> offsets = record_offsets(journal);
  journal.erase(offsets[1], offsets[2] - offsets[1]); // record 2 vanishes without a trace
  write_bytes(dir.file(lease_db::journal_file), journal);
  CHECK(open_error(dir.path()) ==
        dir.file(lease_db::journal_file) + ": record at offset " + std::to_string(offsets[1]) +
            " has sequence number 3 where 2 was expected, so records are missing (was a file "
            "replaced or lost?); refusing to start; start with repair enabled to keep what is "
            "valid");
  CHECK(open_error(dir.path(), true).empty());
  CHECK(lease_db(dir.path()).table().size() == 3);
}

TEST_CASE("a damaged snapshot is refused unless repairing") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 3);
    db.snapshot();
  }
  std::string snapshot = read_bytes(dir.file(lease_db::snapshot_file));
  std::size_t at = snapshot.find("binding state active");
  snapshot.replace(at, 20, "binding state broken");
  write_bytes(dir.file(lease_db::snapshot_file), snapshot);
  CHECK(open_error(dir.path()) ==
        dir.file(lease_db::snapshot_file) +
            ": checksum mismatch: the file changed after it was written; refusing to start; start "
            "with repair enabled to keep what is valid");
  log_capture log;
  {
    lease_db db(dir.path(), lease_db_options{true, log.function()});
    CHECK(db.table().size() == 2); // the lease with the bad statement is dropped
  }
  CHECK(log.contains("line 5: unknown binding state 'broken'"));
  CHECK(lease_db(dir.path()).table().size() == 2);

  write_bytes(dir.file(lease_db::snapshot_file), "lease 10.0.0.1 {\n}\n");
  CHECK(open_error(dir.path(), true).find("not a gracefulstop-dhcpd snapshot") !=
        std::string::npos);
}

TEST_CASE("symbolic links in the lease directory are refused") {
  for (const char *name : {lease_db::journal_file, lease_db::snapshot_file, lease_db::lock_file}) {
    INFO(name);
    temp_dir dir, elsewhere;
    write_bytes(elsewhere.file("target"), "");
    REQUIRE(symlink(elsewhere.file("target").c_str(), dir.file(name).c_str()) == 0);
    CHECK(open_error(dir.path()) == dir.file(name) + ": is a symbolic link; refusing to follow it");
    CHECK(read_bytes(elsewhere.file("target")).empty());
  }
}

TEST_CASE("a second database on the same directory is refused") {
  temp_dir dir;
  lease_db first(dir.path());
  CHECK(open_error(dir.path()) == dir.file(lease_db::lock_file) +
                                      ": locked: another gracefulstop-dhcpd is using " +
                                      dir.path());
}

TEST_CASE("a missing lease directory is reported") {
  CHECK(open_error("/nonexistent/gsdhcpd") ==
        "lease directory /nonexistent/gsdhcpd: cannot open: No such file or directory");
}

TEST_CASE("many leases survive snapshots and reloads") {
  temp_dir dir;
  const int count = 20000;
  {
    lease_db db(dir.path());
    for (int batch = 0; batch < count / 1000; ++batch) {
      fill(db, 1000, batch * 1000);
      if (batch == 9) db.snapshot();
    }
    CHECK(db.journal_records() == 10000);
  }
  {
    lease_db db(dir.path());
    REQUIRE(db.table().size() == count);
    for (int i = 0; i < count; i += 997)
      REQUIRE(*db.table().find(make_lease(i).address) == make_lease(i));
    db.snapshot();
  }
  lease_db db(dir.path());
  CHECK(db.table().size() == count);
  CHECK(db.loaded().snapshot_leases == count);
  CHECK(db.loaded().snapshot_seq == count);
}

TEST_CASE("check_leases summarises, and tolerates a record being appended") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    fill(db, 4);
    db.snapshot();
    lease expired = make_lease(10);
    expired.ends = now - 1;
    db.stage(expired);
    db.stage(make_lease(11));
    db.commit();
  }
  lease_check check = check_leases(dir.path(), now);
  CHECK(check.ok);
  CHECK(check.summary == "leases=6 active=5 journal_records=2 snapshot_seq=4");

  // A reader racing the daemon's write() sees half a record at the end.
  std::string journal = read_bytes(dir.file(lease_db::journal_file));
  std::string half = encode_journal_record(7, make_lease(12)).substr(0, 30);
  write_bytes(dir.file(lease_db::journal_file), journal + half);
  check = check_leases(dir.path(), now);
  CHECK(check.ok);
  CHECK(check.summary == "leases=6 active=5 journal_records=2 snapshot_seq=4 torn_tail_bytes=30");
  CHECK(read_bytes(dir.file(lease_db::journal_file)).size() == journal.size() + 30); // untouched

  CHECK_FALSE(check_leases("/nonexistent/gsdhcpd", now).ok);
}

TEST_CASE("dump lists the leases bound now") {
  temp_dir dir;
  {
    lease_db db(dir.path());
    for (const lease &l : varied_leases())
      db.stage(l);
    db.commit();
  }
  std::ostringstream out;
  dump_leases(dir.path(), out, now);
  CHECK(out.str() == "10.0.0.11 02:00:00:00:00:01 1795554000\n"
                     "10.0.0.15 - 1795554000\n");
}

TEST_CASE("ISC dhcpd accepts the snapshot as a lease file") {
  const char *dhcpd = "/usr/sbin/dhcpd";
  if (access(dhcpd, X_OK) != 0) {
    WARN("skipped: " << dhcpd << " (Debian isc-dhcp-server) is not installed");
    return;
  }
  temp_dir dir;
  std::mt19937 random(99);
  std::size_t count = 0;
  {
    lease_db db(dir.path());
    for (const lease &l : varied_leases())
      db.stage(l);
    // Random identities and hostnames, to catch quoting or hex lists ISC would misread.
    for (int i = 20; i < 120; ++i) {
      lease l = make_lease(i);
      for (std::size_t b = 0; b < 6; ++b)
        l.hardware.bytes[b] = static_cast<std::uint8_t>(random());
      l.client_id.resize(2 + random() % 20);
      for (auto &b : l.client_id)
        b = static_cast<std::uint8_t>(random());
      l.hostname.resize(1 + random() % 30);
      for (auto &c : l.hostname)
        c = static_cast<char>(1 + random() % 255);
      db.stage(l);
    }
    db.snapshot();
    count = db.table().size();
  }
  write_bytes(dir.file("dhcpd.conf"), "authoritative;\nsubnet 10.0.0.0 netmask 255.255.255.0 {\n"
                                      "  range 10.0.0.10 10.0.0.200;\n}\n");
  std::string command = std::string(dhcpd) + " -4 -T -cf " + dir.file("dhcpd.conf") + " -lf " +
                        dir.file(lease_db::snapshot_file) + " 2>&1";
  FILE *pipe = popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe))
    output.append(buffer, n);
  int status = pclose(pipe);
  INFO(output);
  CHECK(status == 0);
  // dhcpd -T exits 0 even for a corrupt file, so the verdict is in what it says.
  CHECK(output.find("Wrote " + std::to_string(count) + " leases to leases file.") !=
        std::string::npos);
  CHECK(output.find("orrupt") == std::string::npos);
  CHECK(output.find(" line ") == std::string::npos);
  CHECK(output.find("no subnet") == std::string::npos);
}
