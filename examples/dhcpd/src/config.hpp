// Configuration from the command line (--key value or --key=value) and from an optional file of
// "key = value" lines with the same names ('#' starts a comment). A command-line value overrides
// the file's. Every error names where the bad value came from: "dhcpd.conf:3: reason" for the
// file, "command line: reason" for an argument.
//
// Keys (file and command line):
//   interface IF         serve on this interface: 0.0.0.0:67 bound to IF (needs root)
//   listen ADDR:PORT     serve on this UDP address instead; replies to clients go to PORT+1,
//                        like ISC dhcpd's -p (for tests and unprivileged runs)
//   subnet CIDR          the one subnet served, e.g. 10.0.0.0/24
//   pool FIRST-LAST      the addresses handed out; inside the subnet
//   router IP            option 3; inside the subnet
//   dns IP[,IP...]       option 6
//   lease-time SECONDS   default 3600
//   lease-dir DIR        where the lease database lives (must exist)
//   user NAME            drop root privileges to this user after binding the socket
//   server-id IP         option 54; defaults to the listen address or the interface's address
// Command line only:
//   --config FILE        read keys from FILE (command-line values override it)
//   --check-config FILE  validate FILE as the server would, print "FILE: ok", exit
//   --check-leases DIR   check the lease database in DIR (same as --check-leases --lease-dir DIR)
//   --dump-leases DIR    print the bound leases in DIR
//   --repair-leases      (or --repair) start even if the lease files are damaged, keeping what
//                        is valid
//   --help
#ifndef GSDHCPD_CONFIG_HPP
#define GSDHCPD_CONFIG_HPP

#include "ipv4.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gsdhcpd {

class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

enum class run_mode {
  serve,
  check_config, // the config was valid: say so and exit
  check_leases, // print check_leases() for lease-dir and exit
  dump_leases,  // print dump_leases() for lease-dir and exit
  help,
};

struct config {
  run_mode mode = run_mode::serve;
  std::optional<std::string> interface;
  std::optional<endpoint> listen;
  gsdhcpd::subnet subnet;
  ipv4 pool_first, pool_last;
  std::optional<ipv4> router;
  std::vector<ipv4> dns;
  std::uint32_t lease_time = 3600;
  std::string lease_dir;
  std::optional<std::string> user;
  std::optional<ipv4> server_id; // unset in interface mode: taken from the interface at start-up
  bool repair_leases = false;
  std::string config_file; // the --config or --check-config file; empty if none
};

// The mode the arguments ask for, from the command line alone (no file is read), so that a
// daemon can set up its signal handling before it reads anything that might block. Throws
// config_error for a malformed command line.
run_mode requested_mode(const std::vector<std::string> &args);

// Parses the arguments (without the program name), reading the --config file if one is given.
config load_config(const std::vector<std::string> &args);

// The same, with the file's text supplied rather than read; `file_name` is used in messages.
config parse_config(std::string_view file_text, const std::string &file_name,
                    const std::vector<std::string> &args = {});

std::string usage();

// Why `next` cannot replace `running` in place (a SIGHUP reload), or "" if it can. The socket,
// the lease directory, the user and the server id are fixed for the life of the process: the
// first three were set up with privileges the daemon no longer has, and clients in the middle
// of an exchange address the server id they were given.
std::string reload_conflict(const config &running, const config &next);

// "subnet=10.0.0.0/24 pool=10.0.0.10-10.0.0.200 router=10.0.0.1 dns=10.0.0.1,9.9.9.9
// lease_time=600": the settings a reload may change, as logfmt pairs.
std::string describe_settings(const config &c);

} // namespace gsdhcpd

#endif // GSDHCPD_CONFIG_HPP
