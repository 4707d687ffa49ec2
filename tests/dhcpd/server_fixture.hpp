// What the example DHCP server's tests share: a fixed clock reading, IPv4 literals, and a
// scratch directory for lease databases that is removed with everything in it.
#ifndef GSDHCPD_TESTS_SERVER_FIXTURE_HPP
#define GSDHCPD_TESTS_SERVER_FIXTURE_HPP

#include "ipv4.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace dhcpd_test {

// "Now" for the tests that drive the server with their own clock: a fixed instant, so that
// lease start and end times are the same on every run.
inline constexpr std::int64_t t0 = 1795550400;

inline gsdhcpd::ipv4 ip(const char *text) {
  return *gsdhcpd::parse_ipv4(text);
}

// A fresh directory /tmp/gsdhcpd-<purpose>-XXXXXX, removed with its contents at the end.
class temp_dir {
public:
  explicit temp_dir(const std::string &purpose) {
    std::string pattern = "/tmp/gsdhcpd-" + purpose + "-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec; // a destructor must not throw; a leftover directory is harmless
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir &) = delete;
  temp_dir &operator=(const temp_dir &) = delete;

  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }
  void write(const std::string &name, const std::string &text) const {
    std::ofstream(file(name), std::ios::binary | std::ios::trunc) << text;
  }

private:
  std::string path_;
};

} // namespace dhcpd_test

#endif // GSDHCPD_TESTS_SERVER_FIXTURE_HPP
