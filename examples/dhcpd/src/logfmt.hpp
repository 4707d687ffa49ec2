// The daemon's own log lines, in the logfmt style of gracefulstop::to_logfmt(): one line per
// event on stderr, `event=NAME key=value ...`, values quoted only when they must be.
//
//   log_line("ready").field("listen", "0.0.0.0:67").field("leases", 12).write();
#ifndef GSDHCPD_LOGFMT_HPP
#define GSDHCPD_LOGFMT_HPP

#include <cstdint>
#include <string>
#include <string_view>

namespace gsdhcpd {

class log_line {
public:
  explicit log_line(std::string_view event);

  log_line &field(std::string_view key, std::string_view value);
  log_line &field(std::string_view key, const char *value) {
    return field(key, std::string_view(value));
  }
  log_line &field(std::string_view key, const std::string &value) {
    return field(key, std::string_view(value));
  }
  log_line &field(std::string_view key, std::int64_t value);
  log_line &field(std::string_view key, std::uint64_t value);
  log_line &field(std::string_view key, int value) {
    return field(key, static_cast<std::int64_t>(value));
  }
  log_line &field(std::string_view key, unsigned value) {
    return field(key, static_cast<std::uint64_t>(value));
  }
  log_line &field(std::string_view key, bool value) {
    return field(key, std::string_view(value ? "true" : "false"));
  }
  // Appends pre-formatted `key=value` pairs, e.g. server_stats::to_string().
  log_line &raw(std::string_view pairs);

  const std::string &text() const { return text_; }
  // Writes the line and a newline to stderr with one write(), so that lines from the event hook
  // and from the daemon never interleave mid-line.
  void write() const;

private:
  std::string text_;
};

// A logfmt value: as is when it is a plain word, else in double quotes with " and \ escaped and
// control characters shown as \n or spaces.
std::string logfmt_value(std::string_view value);

} // namespace gsdhcpd

#endif // GSDHCPD_LOGFMT_HPP
