#include "config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

namespace gsdhcpd {

namespace {

constexpr const char *command_line = "command line";

const std::vector<std::string> file_keys = {"interface", "listen",   "subnet",     "pool",
                                            "router",    "dns",      "lease-time", "lease-dir",
                                            "user",      "server-id"};
const std::vector<std::string> command_line_only_keys = {"config", "check-config"};
const std::vector<std::string> command_line_flags = {"repair-leases", "repair", "check-leases",
                                                     "dump-leases", "help"};
// Flags that may name the lease directory: `--check-leases DIR` is `--check-leases --lease-dir
// DIR`. A following argument that is not an option is taken as that directory.
const std::vector<std::string> flags_taking_lease_dir = {"check-leases", "dump-leases"};

bool contains(const std::vector<std::string> &list, const std::string &item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

struct setting {
  std::string value;
  std::string origin; // "FILE:LINE" or "command line"
};

struct raw_settings {
  std::map<std::string, setting> values;
  std::vector<std::string> flags;
};

[[noreturn]] void fail(const std::string &origin, const std::string &reason) {
  throw config_error(origin + ": " + reason);
}

std::string_view trim(std::string_view s) {
  const char *space = " \t\r";
  std::size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

void add_setting(raw_settings &raw, const std::string &key, const std::string &value,
                 const std::string &origin) {
  if (value.empty()) fail(origin, "'" + key + "' has no value");
  auto [it, inserted] = raw.values.emplace(key, setting{value, origin});
  if (!inserted) fail(origin, "'" + key + "' is already set (" + it->second.origin + ")");
}

raw_settings parse_arguments(const std::vector<std::string> &args) {
  raw_settings raw;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string &arg = args[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0)
      fail(command_line, "unexpected argument '" + arg + "' (options look like --key value)");
    std::string key = arg.substr(2);
    std::optional<std::string> value;
    if (std::size_t equals = key.find('='); equals != std::string::npos) {
      value = key.substr(equals + 1);
      key.resize(equals);
    }
    if (contains(command_line_flags, key)) {
      if (contains(flags_taking_lease_dir, key)) {
        if (!value && i + 1 < args.size() && args[i + 1].compare(0, 2, "--") != 0)
          value = args[++i];
        if (value) add_setting(raw, "lease-dir", *value, command_line);
      } else if (value) {
        fail(command_line, "--" + key + " takes no value");
      }
      raw.flags.push_back(key == "repair" ? "repair-leases" : key);
      continue;
    }
    if (!contains(file_keys, key) && !contains(command_line_only_keys, key))
      fail(command_line, "unknown option --" + key);
    if (!value) {
      if (i + 1 == args.size()) fail(command_line, "--" + key + " needs a value");
      value = args[++i];
    }
    add_setting(raw, key, *value, command_line);
  }
  return raw;
}

raw_settings parse_file(std::string_view text, const std::string &file_name) {
  raw_settings raw;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::string origin = file_name + ":" + std::to_string(line_number);
    std::size_t equals = line.find('=');
    if (equals == std::string_view::npos) fail(origin, "expected 'key = value'");
    std::string key(trim(line.substr(0, equals)));
    std::string value(trim(line.substr(equals + 1)));
    if (key.empty()) fail(origin, "expected 'key = value'");
    if (contains(command_line_only_keys, key) || contains(command_line_flags, key))
      fail(origin, "'" + key + "' can only be given on the command line");
    if (!contains(file_keys, key)) fail(origin, "unknown key '" + key + "'");
    add_setting(raw, key, value, origin);
  }
  return raw;
}

std::string read_config_file(const std::string &path) {
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, std::string("cannot read: ") + std::strerror(errno));
  std::string text;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    text.append(buffer, n);
  int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error) fail(path, std::string("cannot read: ") + std::strerror(error));
  return text;
}

ipv4 parse_ip_value(const setting &s, const std::string &key) {
  auto address = parse_ipv4(s.value);
  if (!address) fail(s.origin, key + " '" + s.value + "' is not an IPv4 address");
  return *address;
}

config validate(const raw_settings &file, const raw_settings &arguments,
                const std::string &default_origin) {
  std::map<std::string, setting> values = file.values;
  for (const auto &[key, s] : arguments.values)
    if (!contains(command_line_only_keys, key)) values[key] = s;
  auto has_flag = [&](const char *flag) { return contains(arguments.flags, flag); };
  auto find = [&](const char *key) -> const setting * {
    auto it = values.find(key);
    return it == values.end() ? nullptr : &it->second;
  };
  auto require = [&](const char *key) -> const setting & {
    const setting *s = find(key);
    if (!s) fail(default_origin, "missing required key '" + std::string(key) + "'");
    return *s;
  };

  config c;
  const bool check_config = arguments.values.count("check-config") > 0;
  int modes = has_flag("check-leases") + has_flag("dump-leases") + has_flag("help") + check_config;
  if (modes > 1)
    fail(command_line,
         "--check-config, --check-leases, --dump-leases and --help exclude each other");
  if (check_config && arguments.values.count("config"))
    fail(command_line, "--check-config and --config exclude each other; --check-config FILE "
                       "checks FILE");
  if (has_flag("help")) {
    c.mode = run_mode::help;
    return c;
  }
  c.repair_leases = has_flag("repair-leases");
  c.lease_dir = require("lease-dir").value;
  if (has_flag("check-leases") || has_flag("dump-leases")) {
    c.mode = has_flag("check-leases") ? run_mode::check_leases : run_mode::dump_leases;
    return c;
  }

  const setting *interface = find("interface");
  const setting *listen = find("listen");
  if (interface && listen)
    fail(listen->origin, "interface (" + interface->origin + ") and listen (" + listen->origin +
                             ") are both set; use one");
  if (!interface && !listen) fail(default_origin, "set one of interface or listen");
  if (interface) {
    // IFNAMSIZ is 16 including the terminating NUL.
    if (interface->value.size() > 15 || interface->value.find_first_of("/ \t") != std::string::npos)
      fail(interface->origin, "'" + interface->value + "' is not a valid interface name");
    c.interface = interface->value;
  } else {
    c.listen = parse_endpoint(listen->value);
    if (!c.listen) fail(listen->origin, "listen '" + listen->value + "' is not ADDRESS:PORT");
  }

  const setting &subnet_setting = require("subnet");
  std::string why;
  auto net = parse_subnet(subnet_setting.value, &why);
  if (!net) fail(subnet_setting.origin, "subnet '" + subnet_setting.value + "': " + why);
  if (net->prefix_length > 30)
    fail(subnet_setting.origin, "subnet " + subnet_setting.value +
                                    " has no room for a pool (the prefix must be /30 or "
                                    "shorter)");
  c.subnet = *net;

  const setting &pool = require("pool");
  std::size_t dash = pool.value.find('-');
  auto first = parse_ipv4(pool.value.substr(0, dash));
  auto last = dash == std::string::npos ? std::nullopt : parse_ipv4(pool.value.substr(dash + 1));
  if (!first || !last) fail(pool.origin, "pool '" + pool.value + "' is not FIRST-LAST");
  if (!c.subnet.contains(*first) || !c.subnet.contains(*last))
    fail(pool.origin, "pool " + pool.value + " is not inside subnet " + to_string(c.subnet));
  if (*last < *first) fail(pool.origin, "pool " + pool.value + " ends before it starts");
  if (*first == c.subnet.network || *last == c.subnet.broadcast())
    fail(pool.origin, "pool " + pool.value + " includes the subnet's network or broadcast address");
  c.pool_first = *first;
  c.pool_last = *last;
  auto in_pool = [&](ipv4 a) { return c.pool_first <= a && a <= c.pool_last; };

  if (const setting *router = find("router")) {
    c.router = parse_ip_value(*router, "router");
    if (!c.subnet.contains(*c.router))
      fail(router->origin,
           "router " + router->value + " is not inside subnet " + to_string(c.subnet));
    if (in_pool(*c.router))
      fail(router->origin, "router " + router->value + " is inside the pool " + pool.value);
  }

  if (const setting *dns = find("dns")) {
    std::string_view rest = dns->value;
    while (true) {
      std::size_t comma = rest.find(',');
      std::string item(trim(rest.substr(0, comma)));
      auto address = parse_ipv4(item);
      if (!address) fail(dns->origin, "dns '" + item + "' is not an IPv4 address");
      c.dns.push_back(*address);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }

  if (const setting *lease_time = find("lease-time")) {
    const std::string &v = lease_time->value;
    // 0xFFFFFFFF means "infinite" in DHCP, which this server does not hand out.
    bool digits =
        !v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string::npos;
    unsigned long long seconds = digits ? std::stoull(v) : 0;
    if (!digits || seconds < 10 || seconds > 0xFFFFFFFEull)
      fail(lease_time->origin,
           "lease-time '" + v + "' must be a whole number of seconds from 10 to 4294967294");
    c.lease_time = static_cast<std::uint32_t>(seconds);
  }

  if (const setting *user = find("user")) c.user = user->value;

  if (const setting *server_id = find("server-id")) {
    c.server_id = parse_ip_value(*server_id, "server-id");
  } else if (c.listen) {
    if (c.listen->address.is_zero())
      fail(listen->origin, "listen address 0.0.0.0 cannot serve as the server id; set server-id");
    c.server_id = c.listen->address;
  }
  if (check_config) c.mode = run_mode::check_config;
  if (c.server_id && in_pool(*c.server_id)) {
    const setting *s = find("server-id");
    fail(s ? s->origin : listen->origin,
         "server id " + to_string(*c.server_id) + " is inside the pool " + pool.value);
  }
  return c;
}

} // namespace

run_mode requested_mode(const std::vector<std::string> &args) {
  raw_settings arguments = parse_arguments(args);
  if (contains(arguments.flags, "help")) return run_mode::help;
  if (arguments.values.count("check-config")) return run_mode::check_config;
  if (contains(arguments.flags, "check-leases")) return run_mode::check_leases;
  if (contains(arguments.flags, "dump-leases")) return run_mode::dump_leases;
  return run_mode::serve;
}

config parse_config(std::string_view file_text, const std::string &file_name,
                    const std::vector<std::string> &args) {
  raw_settings arguments = parse_arguments(args);
  raw_settings file = parse_file(file_text, file_name);
  return validate(file, arguments, file_name);
}

config load_config(const std::vector<std::string> &args) {
  raw_settings arguments = parse_arguments(args);
  auto config_file = arguments.values.find("check-config");
  if (config_file == arguments.values.end()) config_file = arguments.values.find("config");
  if (config_file == arguments.values.end())
    return validate(raw_settings{}, arguments, command_line);
  std::string text = read_config_file(config_file->second.value);
  raw_settings file = parse_file(text, config_file->second.value);
  config c = validate(file, arguments, config_file->second.value);
  c.config_file = config_file->second.value;
  return c;
}

std::string reload_conflict(const config &running, const config &next) {
  auto endpoint_text = [](const std::optional<endpoint> &e) {
    return e ? to_string(*e) : std::string("(none)");
  };
  auto fixed = [](const char *key, const std::string &was, const std::string &now) {
    return std::string(key) + " cannot change without a restart (running with '" + was +
           "', the configuration now says '" + now + "')";
  };
  if (running.interface != next.interface)
    return fixed("interface", running.interface.value_or("(none)"),
                 next.interface.value_or("(none)"));
  if (endpoint_text(running.listen) != endpoint_text(next.listen))
    return fixed("listen", endpoint_text(running.listen), endpoint_text(next.listen));
  if (running.lease_dir != next.lease_dir)
    return fixed("lease-dir", running.lease_dir, next.lease_dir);
  if (running.user != next.user)
    return fixed("user", running.user.value_or("(none)"), next.user.value_or("(none)"));
  // In interface mode without server-id the id came from the interface; only an explicit
  // change counts.
  if (next.server_id && running.server_id != next.server_id)
    return fixed("server-id", running.server_id ? to_string(*running.server_id) : "(interface)",
                 to_string(*next.server_id));
  return "";
}

std::string describe_settings(const config &c) {
  std::string text = "subnet=" + to_string(c.subnet) + " pool=" + to_string(c.pool_first) + "-" +
                     to_string(c.pool_last);
  if (c.router) text += " router=" + to_string(*c.router);
  if (!c.dns.empty()) {
    text += " dns=";
    for (std::size_t i = 0; i < c.dns.size(); ++i)
      text += (i ? "," : "") + to_string(c.dns[i]);
  }
  text += " lease_time=" + std::to_string(c.lease_time);
  return text;
}

std::string usage() {
  return "usage: gracefulstop-dhcpd [--config FILE] [--KEY VALUE ...] [--repair-leases]\n"
         "       gracefulstop-dhcpd --check-config FILE      exit 0, or 78 with FILE:LINE: reason\n"
         "       gracefulstop-dhcpd --check-leases DIR       exit 0 with a summary, or 65\n"
         "       gracefulstop-dhcpd --dump-leases DIR        IP MAC EXPIRY_UNIX per bound lease\n"
         "keys (also usable as 'key = value' lines in the config file):\n"
         "  --interface IF        serve on interface IF (0.0.0.0:67)\n"
         "  --listen ADDR:PORT    serve on this UDP address instead (clients on PORT+1)\n"
         "  --subnet CIDR         the subnet served, e.g. 10.0.0.0/24\n"
         "  --pool FIRST-LAST     the addresses handed out\n"
         "  --router IP           default gateway for clients\n"
         "  --dns IP[,IP...]      DNS servers for clients\n"
         "  --lease-time SECONDS  lease duration (default 3600)\n"
         "  --lease-dir DIR       lease database directory\n"
         "  --user NAME           drop root privileges to NAME after binding\n"
         "  --server-id IP        server identifier (default: the listen/interface address)\n"
         "  --repair-leases       (or --repair) start despite damaged lease files, keeping\n"
         "                        every valid record\n"
         "signals: TERM restart-safe stop; INT the same, 2 s (a second INT skips the drain);\n"
         "         QUIT flush and exit; HUP reload the config; USR1 checkpoint the lease files\n";
}

} // namespace gsdhcpd
