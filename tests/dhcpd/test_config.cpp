// Configuration: a good file, command-line overrides, and one test per error message.
#include "config.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace gsdhcpd;

namespace {

const std::string good_file = "# test server\n"
                              "listen = 127.0.0.1:6767\n"
                              "subnet = 10.0.0.0/24   # the one subnet\n"
                              "pool = 10.0.0.10-10.0.0.200\n"
                              "router = 10.0.0.1\n"
                              "dns = 10.0.0.1, 9.9.9.9\n"
                              "lease-time = 600\n"
                              "lease-dir = /var/lib/gsdhcpd\n";

// The message of the config_error that parsing throws, or "" if it does not throw.
std::string error_of(const std::string &text, const std::vector<std::string> &args = {}) {
  try {
    parse_config(text, "dhcpd.conf", args);
  } catch (const config_error &e) {
    return e.what();
  }
  return "";
}

// good_file with line `line` (1-based) replaced.
std::string replace_line(int line, const std::string &with) {
  std::string text = good_file;
  std::size_t begin = 0;
  for (int i = 1; i < line; ++i)
    begin = text.find('\n', begin) + 1;
  std::size_t end = text.find('\n', begin);
  return text.replace(begin, end - begin, with);
}

} // namespace

TEST_CASE("a complete config file is read") {
  config c = parse_config(good_file, "dhcpd.conf");
  CHECK(c.mode == run_mode::serve);
  REQUIRE(c.listen);
  CHECK(to_string(*c.listen) == "127.0.0.1:6767");
  CHECK_FALSE(c.interface);
  CHECK(to_string(c.subnet) == "10.0.0.0/24");
  CHECK(to_string(c.pool_first) == "10.0.0.10");
  CHECK(to_string(c.pool_last) == "10.0.0.200");
  CHECK(c.router == parse_ipv4("10.0.0.1"));
  REQUIRE(c.dns.size() == 2);
  CHECK(to_string(c.dns[1]) == "9.9.9.9");
  CHECK(c.lease_time == 600);
  CHECK(c.lease_dir == "/var/lib/gsdhcpd");
  CHECK(c.server_id == parse_ipv4("127.0.0.1")); // defaults to the listen address
  CHECK_FALSE(c.repair_leases);
}

TEST_CASE("the command line alone is enough, in both --key value and --key=value forms") {
  config c = load_config({"--interface", "eth1", "--subnet=192.168.5.0/24", "--pool",
                          "192.168.5.100-192.168.5.150", "--lease-dir", "/tmp/x", "--repair-leases",
                          "--user", "nobody"});
  CHECK(c.interface == std::optional<std::string>("eth1"));
  CHECK_FALSE(c.server_id); // found on the interface at start-up
  CHECK(c.lease_time == 3600);
  CHECK(c.repair_leases);
  CHECK(c.user == std::optional<std::string>("nobody"));
}

TEST_CASE("command-line values override the file's") {
  config c = parse_config(good_file, "dhcpd.conf", {"--lease-time", "120", "--server-id=10.0.0.1"});
  CHECK(c.lease_time == 120);
  CHECK(c.server_id == parse_ipv4("10.0.0.1"));
}

TEST_CASE("load_config reads the --config file and names it in errors") {
  char path[] = "/tmp/gsdhcpd-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::string text = replace_line(4, "pool = 10.0.1.5-10.0.0.9");
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  try {
    load_config({"--config", path});
    FAIL("no error");
  } catch (const config_error &e) {
    CHECK(std::string(e.what()) ==
          std::string(path) + ":4: pool 10.0.1.5-10.0.0.9 is not inside subnet 10.0.0.0/24");
  }
  std::remove(path);
  try {
    load_config({"--config", path});
    FAIL("no error");
  } catch (const config_error &e) {
    CHECK(std::string(e.what()) == std::string(path) + ": cannot read: No such file or directory");
  }
}

TEST_CASE("run modes need only the lease directory") {
  CHECK(load_config({"--check-leases", "--lease-dir", "d"}).mode == run_mode::check_leases);
  CHECK(load_config({"--dump-leases", "--lease-dir", "d"}).mode == run_mode::dump_leases);
  CHECK(load_config({"--help"}).mode == run_mode::help);
  // The short forms name the directory directly.
  config check = load_config({"--check-leases", "/var/lib/x"});
  CHECK(check.mode == run_mode::check_leases);
  CHECK(check.lease_dir == "/var/lib/x");
  config dump = load_config({"--dump-leases=/var/lib/y"});
  CHECK(dump.mode == run_mode::dump_leases);
  CHECK(dump.lease_dir == "/var/lib/y");
}

TEST_CASE("the mode is known from the command line alone, before any file is read") {
  CHECK(requested_mode({"--config", "/nonexistent.conf"}) == run_mode::serve);
  CHECK(requested_mode({"--check-config", "/nonexistent.conf"}) == run_mode::check_config);
  CHECK(requested_mode({"--check-leases", "d"}) == run_mode::check_leases);
  CHECK(requested_mode({"--dump-leases", "--lease-dir", "d"}) == run_mode::dump_leases);
  CHECK(requested_mode({"--help"}) == run_mode::help);
  CHECK_THROWS_WITH(requested_mode({"--frobnicate"}), "command line: unknown option --frobnicate");
}

TEST_CASE("check-config validates the file as the server would") {
  char path[] = "/tmp/gsdhcpd-config-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, good_file.data(), good_file.size()) == static_cast<ssize_t>(good_file.size()));
  close(fd);
  config c = load_config({"--check-config", path});
  CHECK(c.mode == run_mode::check_config);
  CHECK(c.config_file == path);
  CHECK(describe_settings(c) == "subnet=10.0.0.0/24 pool=10.0.0.10-10.0.0.200 router=10.0.0.1 "
                                "dns=10.0.0.1,9.9.9.9 lease_time=600");
  std::remove(path);
}

TEST_CASE("the repair flag has a short form") {
  CHECK(parse_config(good_file, "dhcpd.conf", {"--repair"}).repair_leases);
  CHECK(parse_config(good_file, "dhcpd.conf", {"--repair-leases"}).repair_leases);
}

TEST_CASE("a reload may change the pool and options but not the socket, directory, user or id") {
  config running = parse_config(good_file, "dhcpd.conf");
  CHECK(reload_conflict(running, parse_config(replace_line(6, "dns = 10.0.0.2"), "x")).empty());
  CHECK(reload_conflict(running, parse_config(replace_line(4, "pool = 10.0.0.50-10.0.0.60"), "x"))
            .empty());
  CHECK(reload_conflict(running, parse_config(replace_line(2, "listen = 127.0.0.1:6768"), "x")) ==
        "listen cannot change without a restart (running with '127.0.0.1:6767', the "
        "configuration now says '127.0.0.1:6768')");
  CHECK(reload_conflict(running, parse_config(replace_line(8, "lease-dir = /elsewhere"), "x")) ==
        "lease-dir cannot change without a restart (running with '/var/lib/gsdhcpd', the "
        "configuration now says '/elsewhere')");
  CHECK(reload_conflict(running, parse_config(good_file + "user = nobody\n", "x")) ==
        "user cannot change without a restart (running with '(none)', the configuration now "
        "says 'nobody')");
  CHECK(reload_conflict(running, parse_config(good_file + "server-id = 10.0.0.1\n", "x")) ==
        "server-id cannot change without a restart (running with '127.0.0.1', the "
        "configuration now says '10.0.0.1')");
}

TEST_CASE("file syntax errors give FILE:LINE") {
  CHECK(error_of(replace_line(2, "listen 127.0.0.1:6767")) ==
        "dhcpd.conf:2: expected 'key = value'");
  CHECK(error_of(replace_line(2, "= 127.0.0.1:6767")) == "dhcpd.conf:2: expected 'key = value'");
  CHECK(error_of(replace_line(5, "router =  # none")) == "dhcpd.conf:5: 'router' has no value");
  CHECK(error_of(replace_line(5, "gateway = 10.0.0.1")) == "dhcpd.conf:5: unknown key 'gateway'");
  CHECK(error_of(good_file + "pool = 10.0.0.20-10.0.0.30\n") ==
        "dhcpd.conf:9: 'pool' is already set (dhcpd.conf:4)");
  CHECK(error_of(replace_line(5, "config = other.conf")) ==
        "dhcpd.conf:5: 'config' can only be given on the command line");
  CHECK(error_of(replace_line(5, "repair-leases = yes")) ==
        "dhcpd.conf:5: 'repair-leases' can only be given on the command line");
}

TEST_CASE("command-line syntax errors") {
  CHECK(error_of("", {"eth0"}) ==
        "command line: unexpected argument 'eth0' (options look like --key value)");
  CHECK(error_of("", {"--frobnicate", "1"}) == "command line: unknown option --frobnicate");
  CHECK(error_of("", {"--pool"}) == "command line: --pool needs a value");
  CHECK(error_of("", {"--pool="}) == "command line: 'pool' has no value");
  CHECK(error_of("", {"--help=yes"}) == "command line: --help takes no value");
  CHECK(error_of("", {"--user", "a", "--user", "b"}) ==
        "command line: 'user' is already set (command line)");
  CHECK(error_of("", {"--check-leases", "--dump-leases"}) ==
        "command line: --check-config, --check-leases, --dump-leases and --help exclude each "
        "other");
  CHECK(error_of("", {"--check-config", "a.conf", "--config", "b.conf"}) ==
        "command line: --check-config and --config exclude each other; --check-config FILE "
        "checks FILE");
  CHECK(error_of("", {"--check-leases", "d", "--lease-dir", "e"}) ==
        "command line: 'lease-dir' is already set (command line)");
}

TEST_CASE("exactly one of interface and listen") {
  CHECK(error_of(good_file, {"--interface", "eth0"}) ==
        "dhcpd.conf:2: interface (command line) and listen (dhcpd.conf:2) are both set; use one");
  CHECK(error_of(replace_line(2, "")) == "dhcpd.conf: set one of interface or listen");
  CHECK(error_of(replace_line(2, "interface = this-name-is-too-long")) ==
        "dhcpd.conf:2: 'this-name-is-too-long' is not a valid interface name");
  CHECK(error_of(replace_line(2, "listen = 127.0.0.1")) ==
        "dhcpd.conf:2: listen '127.0.0.1' is not ADDRESS:PORT");
  CHECK(error_of(replace_line(2, "listen = 0.0.0.0:6767")) ==
        "dhcpd.conf:2: listen address 0.0.0.0 cannot serve as the server id; set server-id");
  CHECK(error_of(replace_line(2, "listen = 0.0.0.0:6767"), {"--server-id", "10.0.0.1"}).empty());
}

TEST_CASE("missing required keys") {
  CHECK(error_of(replace_line(3, "")) == "dhcpd.conf: missing required key 'subnet'");
  CHECK(error_of(replace_line(4, "")) == "dhcpd.conf: missing required key 'pool'");
  CHECK(error_of(replace_line(8, "")) == "dhcpd.conf: missing required key 'lease-dir'");
  CHECK_THROWS_WITH(load_config({"--listen", "127.0.0.1:6767"}),
                    "command line: missing required key 'lease-dir'");
}

TEST_CASE("subnet errors") {
  CHECK(error_of(replace_line(3, "subnet = 10.0.0.0")) ==
        "dhcpd.conf:3: subnet '10.0.0.0': expected ADDRESS/PREFIX");
  CHECK(error_of(replace_line(3, "subnet = 10.0.0/24")) ==
        "dhcpd.conf:3: subnet '10.0.0/24': the address is not a dotted-quad IPv4 address");
  CHECK(error_of(replace_line(3, "subnet = 10.0.0.0/33")) ==
        "dhcpd.conf:3: subnet '10.0.0.0/33': the prefix length must be a number from 0 to 32");
  CHECK(error_of(replace_line(3, "subnet = 10.0.0.1/24")) ==
        "dhcpd.conf:3: subnet '10.0.0.1/24': the address has host bits set; use the network "
        "address");
  CHECK(error_of(replace_line(3, "subnet = 10.0.0.0/31")) ==
        "dhcpd.conf:3: subnet 10.0.0.0/31 has no room for a pool (the prefix must be /30 or "
        "shorter)");
}

TEST_CASE("pool errors") {
  CHECK(error_of(replace_line(4, "pool = 10.0.0.10")) ==
        "dhcpd.conf:4: pool '10.0.0.10' is not FIRST-LAST");
  CHECK(error_of(replace_line(4, "pool = 10.0.0.10-10.0.0")) ==
        "dhcpd.conf:4: pool '10.0.0.10-10.0.0' is not FIRST-LAST");
  CHECK(error_of(replace_line(4, "pool = 10.0.0.50-10.0.0.10")) ==
        "dhcpd.conf:4: pool 10.0.0.50-10.0.0.10 ends before it starts");
  CHECK(error_of(replace_line(4, "pool = 10.0.1.5-10.0.0.9")) ==
        "dhcpd.conf:4: pool 10.0.1.5-10.0.0.9 is not inside subnet 10.0.0.0/24");
  CHECK(error_of(replace_line(4, "pool = 10.0.0.5-10.0.1.9")) ==
        "dhcpd.conf:4: pool 10.0.0.5-10.0.1.9 is not inside subnet 10.0.0.0/24");
  CHECK(error_of(replace_line(4, "pool = 10.0.0.0-10.0.0.9")) ==
        "dhcpd.conf:4: pool 10.0.0.0-10.0.0.9 includes the subnet's network or broadcast address");
  CHECK(error_of(replace_line(4, "pool = 10.0.0.9-10.0.0.255")) ==
        "dhcpd.conf:4: pool 10.0.0.9-10.0.0.255 includes the subnet's network or broadcast "
        "address");
}

TEST_CASE("router, dns, lease-time and server-id errors") {
  CHECK(error_of(replace_line(5, "router = 10.0.0.x")) ==
        "dhcpd.conf:5: router '10.0.0.x' is not an IPv4 address");
  CHECK(error_of(replace_line(5, "router = 10.0.1.1")) ==
        "dhcpd.conf:5: router 10.0.1.1 is not inside subnet 10.0.0.0/24");
  CHECK(error_of(replace_line(5, "router = 10.0.0.100")) ==
        "dhcpd.conf:5: router 10.0.0.100 is inside the pool 10.0.0.10-10.0.0.200");
  CHECK(error_of(replace_line(6, "dns = 10.0.0.1,,9.9.9.9")) ==
        "dhcpd.conf:6: dns '' is not an IPv4 address");
  CHECK(error_of(replace_line(6, "dns = 10.0.0.1, dns.example")) ==
        "dhcpd.conf:6: dns 'dns.example' is not an IPv4 address");
  for (const char *bad : {"9", "4294967295", "1h", "-5", "99999999999"})
    CHECK(error_of(replace_line(7, std::string("lease-time = ") + bad)) ==
          std::string("dhcpd.conf:7: lease-time '") + bad +
              "' must be a whole number of seconds from 10 to 4294967294");
  CHECK(error_of(good_file, {"--server-id", "nowhere"}) ==
        "command line: server-id 'nowhere' is not an IPv4 address");
  CHECK(error_of(good_file, {"--server-id", "10.0.0.20"}) ==
        "command line: server id 10.0.0.20 is inside the pool 10.0.0.10-10.0.0.200");
  CHECK(error_of(replace_line(2, "listen = 10.0.0.20:67")) ==
        "dhcpd.conf:2: server id 10.0.0.20 is inside the pool 10.0.0.10-10.0.0.200");
}
