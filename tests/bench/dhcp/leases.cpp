// Writes the same N bound leases in each server's own lease format, for the restart benchmark.
//
//   gsdhcp_bench_leases --count N --first IP --lease-time S
//                       [--ours DIR] [--isc FILE] [--kea FILE]
//
// Lease i is address FIRST+i for hardware address 02:00:HH:HH:HH:HH (HH = i), client id
// 01:02:00:HH:HH:HH:HH (how perfdhcp and dhclient form it), starting now and ending S seconds
// from now.
//
//   --ours DIR  gracefulstop-dhcpd's lease directory, written through its own lease_db: every
//              lease staged as a journal record and committed, then compacted into a snapshot,
//              exactly what a server that had handed out these leases would leave behind.
//   --isc FILE  ISC dhcpd's dhcpd.leases, with the statements ISC dhcpd itself writes.
//   --kea FILE  Kea's memfile CSV (lease4 schema 2.0, Kea 1.6 and later), subnet id 1.
#include "command_line.hpp"
#include "lease_db.hpp"
#include "lease_file_format.hpp"
#include "packet.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

using namespace gsdhcpd;

namespace {

struct arguments {
  long count = -1;
  std::optional<ipv4> first;
  long lease_time = -1;
  std::optional<std::string> ours, isc, kea;
};

const gsdhcp_bench::command_line
    command_line("gsdhcp_bench_leases --count N --first IP "
                 "--lease-time S [--ours DIR] [--isc FILE] [--kea FILE]");

arguments parse_arguments(int argc, char **argv) {
  arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) command_line.error(name + ": missing value");
    const std::string value = argv[++i];
    if (name == "--count") {
      a.count = command_line.number(name, value, 0, 10000000);
    } else if (name == "--first") {
      a.first = parse_ipv4(value);
      if (!a.first) command_line.error("--first: not an IPv4 address: '" + value + "'");
    } else if (name == "--lease-time") {
      a.lease_time = command_line.number(name, value, 60, 100000000);
    } else if (name == "--ours") {
      a.ours = value;
    } else if (name == "--isc") {
      a.isc = value;
    } else if (name == "--kea") {
      a.kea = value;
    } else {
      command_line.error("unknown option '" + name + "'");
    }
  }
  if (a.count < 0 || !a.first || a.lease_time < 0)
    command_line.error("--count, --first and --lease-time are required");
  if (std::uint64_t{a.first->value} + static_cast<std::uint64_t>(a.count) > 0xffffffffu)
    command_line.error("--count: the addresses run past 255.255.255.255");
  return a;
}

lease make_lease(const arguments &a, long i, std::int64_t now) {
  lease l;
  l.address = ipv4{a.first->value + static_cast<std::uint32_t>(i)};
  l.state = lease_state::active;
  l.starts = now;
  l.ends = now + a.lease_time;
  l.hardware.type = 1;
  l.hardware.length = 6;
  l.hardware.bytes[0] = 0x02;
  for (int b = 0; b < 4; ++b)
    l.hardware.bytes[static_cast<std::size_t>(5 - b)] =
        static_cast<std::uint8_t>(static_cast<unsigned long>(i) >> (8 * b));
  l.client_id.push_back(1);
  l.client_id.insert(l.client_id.end(), l.hardware.bytes.begin(), l.hardware.bytes.begin() + 6);
  return l;
}

void write_file(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(path + ": cannot write");
}

} // namespace

int main(int argc, char **argv) try {
  const arguments a = parse_arguments(argc, argv);
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();

  if (a.ours) {
    lease_db db(*a.ours);
    for (long i = 0; i < a.count; ++i)
      db.stage(make_lease(a, i, now));
    db.commit();
    db.snapshot();
  }

  if (a.isc) {
    std::string text = "# dhcpd.leases written by gsdhcp_bench_leases\n";
    for (long i = 0; i < a.count; ++i) {
      const lease l = make_lease(a, i, now);
      text += "lease " + to_string(l.address) + " {\n";
      text += "  starts " + format_isc_time(l.starts) + ";\n";
      text += "  ends " + format_isc_time(l.ends) + ";\n";
      text += "  cltt " + format_isc_time(l.starts) + ";\n";
      text += "  binding state active;\n  next binding state free;\n  rewind binding state free;\n";
      text += "  hardware ethernet " + hex_colon(l.hardware.bytes.data(), 6) + ";\n";
      text += "  uid " + hex_colon(l.client_id.data(), l.client_id.size()) + ";\n";
      text += "}\n";
    }
    write_file(*a.isc, text);
  }

  if (a.kea) {
    std::string text = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,"
                       "fqdn_rev,hostname,state,user_context\n";
    for (long i = 0; i < a.count; ++i) {
      const lease l = make_lease(a, i, now);
      text += to_string(l.address) + "," + hex_colon(l.hardware.bytes.data(), 6) + "," +
              hex_colon(l.client_id.data(), l.client_id.size()) + "," +
              std::to_string(a.lease_time) + "," + std::to_string(l.ends) + ",1,0,0,,0,\n";
    }
    write_file(*a.kea, text);
  }
  return 0;
} catch (const std::exception &e) {
  std::fprintf(stderr, "gsdhcp_bench_leases: %s\n", e.what());
  return 2;
}
