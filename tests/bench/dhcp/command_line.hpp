// Command-line checking shared by the DHCP benchmark helpers: every mistake is reported as what
// was wrong with which option, followed by the tool's usage line.
#ifndef GSDHCP_BENCH_COMMAND_LINE_HPP
#define GSDHCP_BENCH_COMMAND_LINE_HPP

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

namespace gsdhcp_bench {

class command_line {
public:
  /// `usage`: the synopsis, e.g. "tool --count N [--out FILE]".
  explicit command_line(std::string usage) : usage_(std::move(usage)) {}

  /// Throws std::invalid_argument with `why` and the usage.
  [[noreturn]] void error(const std::string &why) const {
    throw std::invalid_argument(why + "\nusage: " + usage_);
  }

  /// `text` as a decimal number from `low` to `high`; anything else is an error naming `option`.
  long number(const std::string &option, const std::string &text, long low, long high) const {
    char *end = nullptr;
    errno = 0;
    const long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || value < low || value > high)
      error(option + ": expected a number from " + std::to_string(low) + " to " +
            std::to_string(high) + ", got '" + text + "'");
    return value;
  }

private:
  std::string usage_;
};

} // namespace gsdhcp_bench

#endif // GSDHCP_BENCH_COMMAND_LINE_HPP
