#include "logfmt.hpp"

#include <cerrno>
#include <unistd.h>

namespace gsdhcpd {

std::string logfmt_value(std::string_view value) {
  bool plain = !value.empty();
  for (char c : value)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      plain = false;
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

log_line::log_line(std::string_view event) : text_("event=") {
  text_.append(logfmt_value(event));
}

log_line &log_line::field(std::string_view key, std::string_view value) {
  text_.push_back(' ');
  text_.append(key);
  text_.push_back('=');
  text_.append(logfmt_value(value));
  return *this;
}

log_line &log_line::field(std::string_view key, std::int64_t value) {
  return field(key, std::string_view(std::to_string(value)));
}

log_line &log_line::field(std::string_view key, std::uint64_t value) {
  return field(key, std::string_view(std::to_string(value)));
}

log_line &log_line::raw(std::string_view pairs) {
  if (!pairs.empty()) {
    text_.push_back(' ');
    text_.append(pairs);
  }
  return *this;
}

void log_line::write() const {
  std::string line = text_ + "\n";
  const char *data = line.data();
  std::size_t size = line.size();
  while (size > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; // nowhere to log to: nothing better to do
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

} // namespace gsdhcpd
