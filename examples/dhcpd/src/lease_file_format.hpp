// The two on-disk formats of the lease database, as pure functions on bytes. lease_db.cpp does the
// file handling and durability around them.
//
// Journal (leases.journal): a sequence of records, each
//
//     u32 length | u32 crc | body[length]          (little-endian)
//
// where crc is CRC-32C over the four length bytes and the body, and the body is
//
//     u64 seq | u8 kind (1 = lease image) | u32 address | u8 state | i64 starts | i64 ends |
//     u8 hardware type | hex(hardware address) | hex(client id) | hex(hostname)
//
// with each hex(...) a u16 length followed by lowercase hex digits. A record is the whole new
// state of one address, so replaying records in order (last one wins) rebuilds the table.
// Sequence numbers rise by one per record across the life of the database; the snapshot says
// which one it includes, which is what makes a crash between writing a snapshot and emptying the
// journal harmless (see lease_db.hpp).
//
// Why hex: a torn tail is told apart from damage in the middle by whether any valid record follows
// the damaged bytes. Every byte a client controls (hardware address, client id, hostname) is
// therefore stored as hex digits, so no client can plant bytes that parse as a valid record
// inside a record torn by a crash.
//
// Snapshot (leases.snapshot): ISC dhcpd's dhcpd.leases syntax, so ISC's own tools and people who
// know them can read it, preceded by one comment line
//
//     # gracefulstop-dhcpd snapshot v1 seq=SEQ leases=N crc32c=XXXXXXXX
//
// where crc32c covers every byte after that line. A hardware type with no address (InfiniBand
// clients send none) is not written: ISC syntax cannot say it, and such clients are known by
// their client id anyway.
#ifndef GSDHCPD_LEASE_FILE_FORMAT_HPP
#define GSDHCPD_LEASE_FILE_FORMAT_HPP

#include "lease.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gsdhcpd {

inline constexpr std::size_t journal_header_size = 8;
inline constexpr std::size_t journal_max_body_size = 16384;

std::string encode_journal_record(std::uint64_t seq, const lease &l);

struct journal_record {
  std::uint64_t seq = 0;
  lease value;
  std::size_t offset = 0; // where the record starts in the file
};

// A byte range [begin, end) that holds no valid record, and why the first record there failed.
struct journal_damage {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string reason;
};

struct journal_scan {
  std::vector<journal_record> records;
  // Damage followed by valid records: not something a crash while appending can cause.
  std::vector<journal_damage> damage;
  // Bytes after the last valid record with nothing valid after them: a crash while appending.
  std::optional<journal_damage> torn_tail;
};

// Reads every valid record, stepping over damage by searching for the next valid record.
journal_scan scan_journal(std::string_view bytes);

std::string format_snapshot(const lease_table &table, std::uint64_t seq);

struct snapshot_contents {
  bool has_header = false; // false: not a snapshot this program wrote
  bool checksum_ok = false;
  std::uint64_t seq = 0;
  std::vector<lease> leases;
  std::vector<std::string> problems; // "line N: reason" for each lease block that was skipped
};

snapshot_contents parse_snapshot(std::string_view text);

// ISC's date form, "W YYYY/MM/DD HH:MM:SS" in UTC with W the weekday (0 = Sunday).
std::string format_isc_time(std::int64_t unix_seconds);
std::optional<std::int64_t> parse_isc_time(std::string_view text);

} // namespace gsdhcpd

#endif // GSDHCPD_LEASE_FILE_FORMAT_HPP
