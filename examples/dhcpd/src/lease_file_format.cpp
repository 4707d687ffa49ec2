#include "lease_file_format.hpp"

#include "crc32c.hpp"
#include "packet.hpp"

#include <cstdio>

namespace gsdhcpd {

namespace {

// ---- little-endian and hex helpers ---------------------------------------------------------

template <typename T>
void put_le(std::string &out, T value) {
  auto bits = static_cast<std::uint64_t>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}

template <typename T>
T get_le(std::string_view in, std::size_t offset) {
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    bits |= std::uint64_t{static_cast<std::uint8_t>(in[offset + i])} << (8 * i);
  return static_cast<T>(bits);
}

void put_hex_field(std::string &out, const std::uint8_t *data, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(size * 2));
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xF];
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Reads a u16-length hex field at `offset`, advancing it. Returns false on any inconsistency.
bool get_hex_field(std::string_view body, std::size_t &offset, std::vector<std::uint8_t> &out) {
  if (offset + 2 > body.size()) return false;
  std::size_t length = get_le<std::uint16_t>(body, offset);
  offset += 2;
  if (length % 2 != 0 || offset + length > body.size()) return false;
  out.clear();
  for (std::size_t i = 0; i < length; i += 2) {
    int high = hex_value(body[offset + i]), low = hex_value(body[offset + i + 1]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<std::uint8_t>(high << 4 | low));
  }
  offset += length;
  return true;
}

// seq + kind + address + state + starts + ends + hardware type + three empty hex fields.
constexpr std::size_t min_body_size = 8 + 1 + 4 + 1 + 8 + 8 + 1 + 3 * 2;
constexpr std::uint8_t kind_lease = 1;

std::optional<std::string> decode_body(std::string_view body, std::uint64_t &seq, lease &l) {
  std::size_t at = 0;
  seq = get_le<std::uint64_t>(body, at);
  at += 8;
  std::uint8_t kind = static_cast<std::uint8_t>(body[at++]);
  if (kind != kind_lease) return "unknown record kind " + std::to_string(kind);
  l.address = ipv4{get_le<std::uint32_t>(body, at)};
  at += 4;
  std::uint8_t state = static_cast<std::uint8_t>(body[at++]);
  if (state < 1 || state > 3) return "unknown lease state " + std::to_string(state);
  l.state = static_cast<lease_state>(state);
  l.starts = get_le<std::int64_t>(body, at);
  l.ends = get_le<std::int64_t>(body, at + 8);
  at += 16;
  l.hardware.type = static_cast<std::uint8_t>(body[at++]);
  std::vector<std::uint8_t> hardware, hostname;
  if (!get_hex_field(body, at, hardware) || hardware.size() > l.hardware.bytes.size() ||
      !get_hex_field(body, at, l.client_id) || !get_hex_field(body, at, hostname) ||
      at != body.size())
    return std::string("the lease fields do not fit the record length");
  l.hardware.length = static_cast<std::uint8_t>(hardware.size());
  l.hardware.bytes = {};
  std::copy(hardware.begin(), hardware.end(), l.hardware.bytes.begin());
  l.hostname.assign(hostname.begin(), hostname.end());
  return std::nullopt;
}

struct record_attempt {
  bool ok = false;
  std::size_t size = 0;
  journal_record record;
  std::string reason;
};

record_attempt try_record(std::string_view bytes, std::size_t offset) {
  record_attempt a;
  std::size_t left = bytes.size() - offset;
  if (left < journal_header_size) {
    a.reason = "only " + std::to_string(left) + " bytes left, less than a record header";
    return a;
  }
  std::size_t length = get_le<std::uint32_t>(bytes, offset);
  if (length < min_body_size || length > journal_max_body_size) {
    a.reason = "record length " + std::to_string(length) + " is outside " +
               std::to_string(min_body_size) + "-" + std::to_string(journal_max_body_size);
    return a;
  }
  if (length > left - journal_header_size) {
    a.reason = "a record of " + std::to_string(length) + " bytes runs past the end of the file";
    return a;
  }
  std::uint32_t stored = get_le<std::uint32_t>(bytes, offset + 4);
  std::uint32_t computed = crc32c(bytes.data() + offset, 4);
  computed = crc32c(bytes.data() + offset + journal_header_size, length, computed);
  if (stored != computed) {
    char text[80];
    std::snprintf(text, sizeof text, "checksum mismatch (stored %08x, computed %08x)", stored,
                  computed);
    a.reason = text;
    return a;
  }
  if (auto bad = decode_body(bytes.substr(offset + journal_header_size, length), a.record.seq,
                             a.record.value)) {
    a.reason = *bad;
    return a;
  }
  a.ok = true;
  a.size = journal_header_size + length;
  a.record.offset = offset;
  return a;
}

// ---- ISC dates ------------------------------------------------------------------------------

// Days since 1970-01-01 for a proleptic Gregorian date, and back (H. Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t &y, unsigned &m, unsigned &d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - (a % b < 0 ? 1 : 0);
}

// ---- ISC strings and hex lists --------------------------------------------------------------

std::string quote_isc(const std::string &text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\%03o", c);
      out += escaped;
    }
  }
  return out + "\"";
}

std::optional<std::string> unquote_isc(std::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
  text = text.substr(1, text.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') return std::nullopt;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == text.size()) return std::nullopt;
    char e = text[i];
    if (e >= '0' && e <= '7') {
      int value = 0, digits = 0;
      while (digits < 3 && i < text.size() && text[i] >= '0' && text[i] <= '7') {
        value = value * 8 + (text[i++] - '0');
        ++digits;
      }
      --i;
      if (value > 255) return std::nullopt;
      out += static_cast<char>(value);
    } else if (e == 't') {
      out += '\t';
    } else if (e == 'n') {
      out += '\n';
    } else if (e == 'r') {
      out += '\r';
    } else if (e == 'b') {
      out += '\b';
    } else {
      out += e;
    }
  }
  return out;
}

// "aa:b:0c" (ISC writes single digits without a leading zero, and accepts both).
std::optional<std::vector<std::uint8_t>> parse_hex_list(std::string_view text) {
  std::vector<std::uint8_t> out;
  while (true) {
    std::size_t colon = text.find(':');
    std::string_view part = text.substr(0, colon);
    if (part.empty() || part.size() > 2) return std::nullopt;
    int value = 0;
    for (char c : part) {
      int digit = hex_value(static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c));
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    out.push_back(static_cast<std::uint8_t>(value));
    if (colon == std::string_view::npos) return out;
    text = text.substr(colon + 1);
  }
}

// The hardware types ISC dhcpd knows by name; other types are not written (see the server).
const char *isc_hardware_name(std::uint8_t type) {
  switch (type) {
  case 1:
    return "ethernet";
  case 6:
    return "token-ring";
  case 8:
    return "fddi";
  case 32:
    return "infiniband";
  }
  return nullptr;
}

std::optional<std::uint8_t> isc_hardware_type(std::string_view name) {
  for (std::uint8_t type : {1, 6, 8, 32})
    if (name == isc_hardware_name(type)) return type;
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "ends never" in a file ISC wrote: the last second format_isc_time can still write.
constexpr std::int64_t never = 253402300799; // 9999-12-31 23:59:59

constexpr std::string_view header_prefix = "# gracefulstop-dhcpd snapshot v1 ";

// Parses one statement inside a lease block (without its ';'). Unknown statements are skipped,
// so that a file ISC dhcpd wrote (cltt, tstp, next binding state, set ...) also loads.
std::optional<std::string> parse_lease_statement(std::string_view s, lease &l, bool &has_starts,
                                                 bool &has_ends, bool &has_state) {
  if (starts_with(s, "starts ") || starts_with(s, "ends ")) {
    bool is_starts = s[0] == 's';
    std::string_view value = trim(s.substr(is_starts ? 7 : 5));
    std::optional<std::int64_t> when;
    if (value == "never")
      when = never;
    else if (starts_with(value, "epoch ")) {
      std::string digits(trim(value.substr(6)));
      if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos &&
          digits.size() < 19)
        when = std::stoll(digits);
    } else {
      when = parse_isc_time(value);
    }
    if (!when) return "cannot read the date '" + std::string(value) + "'";
    (is_starts ? l.starts : l.ends) = *when;
    (is_starts ? has_starts : has_ends) = true;
  } else if (starts_with(s, "binding state ")) {
    std::string_view state = trim(s.substr(14));
    if (state == "active")
      l.state = lease_state::active;
    else if (state == "released" || state == "free" || state == "expired")
      l.state = lease_state::released;
    else if (state == "abandoned")
      l.state = lease_state::declined;
    else
      return "unknown binding state '" + std::string(state) + "'";
    has_state = true;
  } else if (starts_with(s, "hardware ")) {
    std::string_view rest = trim(s.substr(9));
    std::size_t space = rest.find(' ');
    auto type = isc_hardware_type(rest.substr(0, space));
    if (!type || space == std::string_view::npos)
      return "unknown hardware statement '" + std::string(s) + "'";
    auto bytes = parse_hex_list(trim(rest.substr(space + 1)));
    if (!bytes || bytes->size() > l.hardware.bytes.size())
      return "bad hardware address '" + std::string(rest.substr(space + 1)) + "'";
    l.hardware.type = *type;
    l.hardware.length = static_cast<std::uint8_t>(bytes->size());
    std::copy(bytes->begin(), bytes->end(), l.hardware.bytes.begin());
  } else if (starts_with(s, "uid ")) {
    std::string_view value = trim(s.substr(4));
    if (!value.empty() && value[0] == '"') {
      auto text = unquote_isc(value);
      if (!text) return "bad uid string";
      l.client_id.assign(text->begin(), text->end());
    } else {
      auto bytes = parse_hex_list(value);
      if (!bytes) return "bad uid '" + std::string(value) + "'";
      l.client_id = *bytes;
    }
  } else if (starts_with(s, "client-hostname ")) {
    auto text = unquote_isc(trim(s.substr(16)));
    if (!text) return "bad client-hostname string";
    l.hostname = *text;
  }
  return std::nullopt;
}

} // namespace

std::string encode_journal_record(std::uint64_t seq, const lease &l) {
  std::string record(journal_header_size, '\0'); // length and crc, filled in below
  put_le<std::uint64_t>(record, seq);
  record += static_cast<char>(kind_lease);
  put_le<std::uint32_t>(record, l.address.value);
  record += static_cast<char>(l.state);
  put_le<std::int64_t>(record, l.starts);
  put_le<std::int64_t>(record, l.ends);
  record += static_cast<char>(l.hardware.type);
  put_hex_field(record, l.hardware.bytes.data(), l.hardware.length);
  put_hex_field(record, l.client_id.data(), l.client_id.size());
  put_hex_field(record, reinterpret_cast<const std::uint8_t *>(l.hostname.data()),
                l.hostname.size());

  std::string length;
  put_le<std::uint32_t>(length, static_cast<std::uint32_t>(record.size() - journal_header_size));
  record.replace(0, 4, length);
  std::uint32_t crc = crc32c(record.data(), 4);
  crc = crc32c(record.data() + journal_header_size, record.size() - journal_header_size, crc);
  std::string crc_bytes;
  put_le<std::uint32_t>(crc_bytes, crc);
  record.replace(4, 4, crc_bytes);
  return record;
}

journal_scan scan_journal(std::string_view bytes) {
  journal_scan scan;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    record_attempt attempt = try_record(bytes, offset);
    if (attempt.ok) {
      scan.records.push_back(std::move(attempt.record));
      offset += attempt.size;
      continue;
    }
    std::size_t next = offset + 1;
    while (next < bytes.size() && !try_record(bytes, next).ok)
      ++next;
    journal_damage damage{offset, next, attempt.reason};
    if (next == bytes.size()) {
      scan.torn_tail = damage;
      break;
    }
    scan.damage.push_back(damage);
    offset = next;
  }
  return scan;
}

std::string format_isc_time(std::int64_t t) {
  std::int64_t days = floor_div(t, 86400);
  std::int64_t second_of_day = t - days * 86400;
  std::int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  // 1970-01-01 was a Thursday (4).
  auto weekday = static_cast<int>(((days % 7) + 11) % 7);
  char text[64];
  std::snprintf(text, sizeof text, "%d %04lld/%02u/%02u %02d:%02d:%02d", weekday,
                static_cast<long long>(year), month, day, static_cast<int>(second_of_day / 3600),
                static_cast<int>(second_of_day / 60 % 60), static_cast<int>(second_of_day % 60));
  return text;
}

std::optional<std::int64_t> parse_isc_time(std::string_view text) {
  // The weekday is redundant; ISC dhcpd ignores it too.
  std::string copy(text);
  int weekday, year, month, day, hour, minute, second, consumed = 0;
  if (std::sscanf(copy.c_str(), "%d %d/%d/%d %d:%d:%d%n", &weekday, &year, &month, &day, &hour,
                  &minute, &second, &consumed) != 7 ||
      static_cast<std::size_t>(consumed) != copy.size())
    return std::nullopt;
  if (weekday < 0 || weekday > 6 || year < 1970 || year > 9999 || month < 1 || month > 12 ||
      day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
      second > 60)
    return std::nullopt;
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
         hour * 3600 + minute * 60 + second;
}

std::string format_snapshot(const lease_table &table, std::uint64_t seq) {
  std::string body;
  for (const auto &[address, l] : table.all()) {
    body += "lease " + to_string(address) + " {\n";
    body += "  starts " + format_isc_time(l.starts) + ";\n";
    body += "  ends " + format_isc_time(l.ends) + ";\n";
    body += "  binding state ";
    body += l.state == lease_state::active     ? "active"
            : l.state == lease_state::released ? "released"
                                               : "abandoned";
    body += ";\n";
    if (const char *name = isc_hardware_name(l.hardware.type); name && l.hardware.length > 0)
      body += std::string("  hardware ") + name + " " +
              hex_colon(l.hardware.bytes.data(), l.hardware.length) + ";\n";
    if (!l.client_id.empty())
      body += "  uid " + hex_colon(l.client_id.data(), l.client_id.size()) + ";\n";
    if (!l.hostname.empty()) body += "  client-hostname " + quote_isc(l.hostname) + ";\n";
    body += "}\n";
  }
  char header[128];
  std::snprintf(header, sizeof header, "%sseq=%llu leases=%zu crc32c=%08x\n",
                std::string(header_prefix).c_str(), static_cast<unsigned long long>(seq),
                table.size(), crc32c(body.data(), body.size()));
  return header + body;
}

snapshot_contents parse_snapshot(std::string_view text) {
  snapshot_contents result;
  std::size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return result;
  std::string header(text.substr(0, newline));
  std::string_view body = text.substr(newline + 1);
  if (!starts_with(header, header_prefix)) return result;
  unsigned long long seq = 0;
  std::size_t count = 0;
  unsigned crc = 0;
  int consumed = 0;
  if (std::sscanf(header.c_str() + header_prefix.size(), "seq=%llu leases=%zu crc32c=%8x%n", &seq,
                  &count, &crc, &consumed) != 3 ||
      static_cast<std::size_t>(consumed) + header_prefix.size() != header.size())
    return result;
  result.has_header = true;
  result.seq = seq;
  result.checksum_ok = crc32c(body.data(), body.size()) == crc;

  // One statement per line, as both this program and ISC dhcpd write it. A bad block is skipped
  // as a whole and reported, so a caller that wants to salvage a damaged file can.
  std::optional<lease> current;
  std::size_t block_line = 0;
  bool has_starts = false, has_ends = false, has_state = false, block_bad = false;
  std::size_t line_number = 1;
  while (!body.empty()) {
    ++line_number;
    std::size_t end = body.find('\n');
    std::string_view line = trim(body.substr(0, end));
    body = end == std::string_view::npos ? std::string_view{} : body.substr(end + 1);
    auto problem = [&](const std::string &what) {
      result.problems.push_back("line " + std::to_string(line_number) + ": " + what);
    };
    if (line.empty() || line[0] == '#') continue;
    if (starts_with(line, "lease ")) {
      if (current && !block_bad)
        result.problems.push_back("line " + std::to_string(block_line) +
                                  ": lease block is not closed");
      current = lease{};
      block_line = line_number;
      block_bad = has_starts = has_ends = has_state = false;
      std::string_view rest = trim(line.substr(6));
      auto address = parse_ipv4(trim(rest.substr(0, rest.find(' '))));
      if (!address || rest.back() != '{') {
        problem("expected 'lease ADDRESS {'");
        block_bad = true;
      } else {
        current->address = *address;
      }
    } else if (line == "}") {
      if (!current) {
        problem("'}' outside a lease block");
      } else if (!block_bad) {
        if (!has_starts || !has_ends || !has_state)
          result.problems.push_back("line " + std::to_string(block_line) +
                                    ": lease block lacks starts, ends or binding state");
        else
          result.leases.push_back(*current);
      }
      current.reset();
    } else if (!current) {
      // ISC dhcpd writes a few global statements; everything else outside a block is damage.
      if (!starts_with(line, "authoring-byte-order") && !starts_with(line, "server-duid"))
        problem("unexpected text outside a lease block");
    } else if (block_bad) {
      continue;
    } else if (line.back() != ';') {
      problem("statement does not end with ';'");
      block_bad = true;
    } else if (auto bad = parse_lease_statement(trim(line.substr(0, line.size() - 1)), *current,
                                                has_starts, has_ends, has_state)) {
      problem(*bad);
      block_bad = true;
    }
  }
  if (current && !block_bad)
    result.problems.push_back("line " + std::to_string(block_line) + ": lease block is not closed");
  if (result.problems.empty() && result.leases.size() != count)
    result.problems.push_back("the header promises " + std::to_string(count) +
                              " leases but the file holds " + std::to_string(result.leases.size()));
  return result;
}

} // namespace gsdhcpd
