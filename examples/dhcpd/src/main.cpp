// gracefulstop-dhcpd: a DHCPv4 server that can be stopped, restarted and reloaded at any moment
// without losing a lease it acknowledged. This file wires gracefulstop into the daemon and is
// meant to be read top to bottom:
//
//   1. one-shot modes (--check-config, --check-leases, --dump-leases) need no signal handling;
//   2. the controller is installed FIRST, before the configuration is read or the socket bound,
//      so that a SIGTERM during start-up is latched and honoured instead of killing the process
//      half-way (ISC dhcpd had no handler at all: a plain kill could cut dhcpd.leases);
//   3. the stop's stages: stop-accepting, drain (asynchronous), flush, close;
//   4. one policy per signal: TERM, INT, QUIT stop; HUP reloads; USR1 checkpoints;
//   5. start-up: configuration, socket, privileges, lease database, READY;
//   6. the loop: poll the DHCP socket and ctl.fd(), dispatch, serve or drain;
//   7. exit by the rule of the signal that stopped us.
//
// The DHCP side (codec, lease database, protocol, socket, batches) lives in the other files of
// src/; README.md describes them and the lease files.
#include "config.hpp"
#include "lease_db.hpp"
#include "logfmt.hpp"
#include "server.hpp"
#include "service.hpp"
#include "socket.hpp"

#include <gracefulstop/stop.hpp>
#include <gracefulstop/systemd_notify.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <poll.h>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace gs = gracefulstop;
using namespace gsdhcpd;
using namespace std::chrono_literals;

namespace {

// Exit statuses from sysexits.h, so that a supervisor or a script can tell what went wrong.
constexpr int exit_data_error = 65;   // EX_DATAERR: the lease files are damaged
constexpr int exit_os_error = 71;     // EX_OSERR: socket, privileges, signal set-up
constexpr int exit_io_error = 74;     // EX_IOERR: a lease journal write failed while serving
constexpr int exit_busy = 75;         // EX_TEMPFAIL: another server holds the lease directory
constexpr int exit_config_error = 78; // EX_CONFIG: the configuration is invalid

// How long each stop may take. SIGTERM is what a service manager or an operator's restart
// sends: answer what is waiting, then go, well inside the 10 s. SIGINT is someone at a terminal.
constexpr auto term_deadline = 10s;
constexpr auto int_deadline = 2s;
constexpr auto quit_deadline = 2s;
constexpr auto drain_budget = 5s;
// How often the loop lets the service compact the journal into a snapshot when it has grown.
constexpr int maintenance_interval_ms = 60000;

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

// The clock of the kernel's receive timestamps (SO_TIMESTAMPNS), for the drain's cut-off.
std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void log_error(const char *during, const std::string &what) {
  log_line("error").field("during", during).field("error", what).write();
}

// ---- 1. one-shot modes --------------------------------------------------------------------
// They read files and print; a signal may kill them as it would any command-line tool.
int run_one_shot(run_mode mode, const std::vector<std::string> &args) {
  if (mode == run_mode::help) {
    std::cout << usage();
    return 0;
  }
  config c;
  try {
    c = load_config(args);
  } catch (const config_error &e) {
    std::cerr << e.what() << '\n'; // FILE:LINE: reason
    return exit_config_error;
  }
  switch (mode) {
  case run_mode::check_config:
    std::cout << c.config_file << ": ok " << describe_settings(c) << '\n';
    return 0;
  case run_mode::check_leases: {
    // Reads without locking or writing: safe while the server runs.
    lease_check check = check_leases(c.lease_dir, unix_now());
    if (!check.ok) {
      std::cerr << check.error << '\n';
      return exit_data_error;
    }
    std::cout << check.summary << '\n';
    return 0;
  }
  case run_mode::dump_leases:
    try {
      dump_leases(c.lease_dir, std::cout, unix_now());
    } catch (const lease_db_error &e) {
      std::cerr << e.what() << '\n';
      return exit_data_error;
    }
    return 0;
  default:
    return exit_config_error;
  }
}

// Everything that exists once the server runs. Built in place, after the socket is bound and
// privileges are dropped: the lease files are then created by the user that will write them.
struct instance {
  config cfg;
  dhcp_socket socket;
  lease_db db;
  dhcp_server server;
  dhcp_service service;

  instance(const config &c, dhcp_socket bound, ipv4 server_id)
      : cfg(c), socket(std::move(bound)), db(c.lease_dir, database_options(c)),
        server(make_server_settings(c, server_id), db),
        service(socket, server, db, log_to_stderr, unix_now()) {}

  static void log_to_stderr(const std::string &line) {
    log_line("lease-db").field("detail", line).write();
  }
  static lease_db_options database_options(const config &c) {
    lease_db_options o;
    o.repair = c.repair_leases;
    o.log = log_to_stderr;
    return o;
  }
};

// ---- 2.-7. the daemon ---------------------------------------------------------------------
int serve(const std::vector<std::string> &args) {
  // The service manager's notification socket ($NOTIFY_SOCKET; without it every call is a
  // no-op). It hears about the stop through the same event hook as the log.
  gs::stop_controller::options options;
  std::optional<gs::systemd_notifier> sd;
  try {
    sd.emplace(gs::systemd_notifier::options::for_controller(options));
  } catch (const std::system_error &e) {
    log_error("start", e.what()); // a malformed NOTIFY_SOCKET: the unit file is wrong
    return exit_config_error;
  }
  options.on_event = [&](const gs::event &e) {
    std::string line = gs::to_logfmt(e); // one write per line, like log_line::write()
    line.push_back('\n');
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    sd->on_event(e);
  };
  // A daemon's SIGHUP means "reload" and its SIGINT "stop", even when it was started under
  // nohup or as a background job of a script, which set them to SIG_IGN.
  options.keep_inherited_ignore = false;
  gs::stop_controller ctl(options);

  std::optional<instance> server;            // set once start-up is complete
  bool accepting = true;                     // cleared by stop-accepting
  std::int64_t cutoff_ns = 0;                // requests received after this are not answered
  std::optional<gs::stage_completion> drain; // the asynchronous drain, while it runs

  // ---- 3. stages, run in this order by every stop -----------------------------------------
  // stop-accepting: the loop reads no new work from now on. For a UDP server there is no
  // listener to close: the line is drawn in time, at the kernel's receive timestamp.
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [&](gs::stage_context &c) {
                   accepting = false;
                   cutoff_ns = realtime_ns();
                   // A stop is a restart, never a departure: nothing here tells a failover
                   // partner to take over the pool (ISC dhcpd's shutdown sent it to
                   // partner-down, which is wrong for a quick restart). Clients keep their
                   // leases; the next instance reads them from the same files.
                   log_line("announce")
                       .field("state", "restarting")
                       .field("signal", gs::signal_name(c.cause().signo))
                       .write();
                   if (sd) sd->status("restarting: leases kept, clients keep their addresses");
                 }});
  // drain: answer the requests that were already waiting when the stop began, each batch
  // committed before its ACKs go out. Asynchronous, so that the loop keeps dispatching while it
  // runs: a second SIGINT (fast stop) or the deadline cancels it and the flush still runs.
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &c) {
                   if (!server) return gs::stage_status::done;
                   if (server->service.drain(unix_now(), cutoff_ns).finished)
                     return gs::stage_status::done;
                   drain = c.defer(); // the loop below continues it
                   return gs::stage_status::pending;
                 },
                 drain_budget});
  // flush: the journal is already durable up to the last ACK; fold it into a snapshot in ISC
  // dhcpd.leases syntax, so the next start reads one file and `dhcpd -T` can check it. Must-run:
  // it runs in a fast stop and after the deadline; if it fails, the exit status says so.
  ctl.add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &) {
                   if (!server) return;
                   server->service.flush();
                   log_line("flushed")
                       .field("leases", static_cast<std::uint64_t>(server->db.table().size()))
                       .field("snapshot_seq", server->db.committed_seq())
                       .write();
                 }});
  // close: report what was served, close the socket and release the lease directory's lock.
  ctl.add_stage({"close", gs::stage_kind::close, [&](gs::stage_context &) {
                   if (!server) return;
                   log_line("served")
                       .raw(server->server.stats().to_string())
                       .field("drained", server->service.stats().drained)
                       .field("left_for_restart", server->service.stats().left_for_restart)
                       .write();
                   server.reset();
                 }});

  // ---- 4. policies ------------------------------------------------------------------------
  ctl.set_policy(
      SIGTERM, gs::signal_policy::graceful(term_deadline).exit_with(gs::exit_rule::with_status(0)));
  // ^C: the same stop, sooner. A second ^C cancels the drain (flush and close still run); a
  // third exits at once. The process then dies of SIGINT, so a shell sees the interrupt.
  ctl.set_policy(SIGINT, gs::signal_policy::graceful(int_deadline)
                             .on_repeat(2, gs::action::fast_stop)
                             .on_repeat(3, gs::action::immediate_exit)
                             .exit_with(gs::exit_rule::reraise()));
  // SIGQUIT: no drain, no goodbye: make what was acknowledged durable and go (status 131).
  ctl.set_policy(SIGQUIT, gs::signal_policy::fast(quit_deadline)
                              .run_stages({"flush"})
                              .exit_with(gs::exit_rule::conventional()));
  // SIGHUP: read the configuration again. Whatever is wrong with it (a typo, a pool outside the
  // subnet, a change that needs a restart) throws before anything changes, so the server keeps
  // its old settings, and the controller reports `event=reload ok=false error=...`. Requests
  // that arrive meanwhile wait in the socket's buffer; leases are not touched.
  ctl.set_policy(SIGHUP, gs::signal_policy::reload([&](const gs::signal_event &) {
                   if (!server) throw std::runtime_error("still starting");
                   config next = load_config(args);
                   if (std::string why = reload_conflict(server->cfg, next); !why.empty())
                     throw std::runtime_error(why);
                   next.server_id = server->server.settings().server_id;
                   server->server.reconfigure(make_server_settings(next, *next.server_id));
                   server->cfg = next;
                   log_line("settings").raw(describe_settings(next)).write();
                 }));
  // SIGUSR1: compact the journal into the snapshot now, e.g. before copying or checking it.
  ctl.set_policy(SIGUSR1, gs::signal_policy::callback([&](const gs::signal_event &) {
                   if (!server) throw std::runtime_error("still starting");
                   server->service.checkpoint(unix_now());
                   log_line("checkpoint")
                       .field("leases", static_cast<std::uint64_t>(server->db.table().size()))
                       .field("snapshot_seq", server->db.committed_seq())
                       .write();
                 }));

  try {
    ctl.install(); // from here on, every handled signal is latched until dispatch()
  } catch (const std::system_error &e) {
    log_error("install", e.what());
    return exit_os_error;
  }

  // ---- 5. start-up ------------------------------------------------------------------------
  // A SIGTERM from here on waits for the dispatch() below. Nothing is half-written meanwhile:
  // the lease database is opened whole or not at all.
  try {
    config cfg = load_config(args);
    dhcp_socket socket = cfg.listen ? dhcp_socket::bind_address(*cfg.listen)
                                    : dhcp_socket::bind_interface(*cfg.interface);
    std::optional<ipv4> server_id = cfg.server_id;
    if (!server_id) server_id = interface_address(*cfg.interface);
    if (!server_id)
      throw config_error("interface " + *cfg.interface +
                         " has no IPv4 address to serve as the server id; set server-id");
    if (cfg.user) drop_privileges(*cfg.user); // the socket is bound; root is no longer needed
    server.emplace(cfg, std::move(socket), *server_id);
  } catch (const config_error &e) {
    log_error("config", e.what());
    return exit_config_error;
  } catch (const socket_error &e) {
    log_error("socket", e.what());
    return exit_os_error;
  } catch (const lease_db_locked &e) {
    log_error("lease-db", e.what());
    return exit_busy;
  } catch (const lease_db_error &e) {
    log_error("lease-db", e.what());
    return exit_data_error;
  }

  // A signal that came during start-up takes effect now: a stop runs its stages (with nothing
  // in flight) instead of the server announcing itself ready.
  ctl.dispatch();
  if (ctl.state() == gs::controller_state::running) {
    const load_stats &loaded = server->db.loaded();
    log_line("ready")
        .field("pid", static_cast<std::int64_t>(::getpid()))
        .field("listen", to_string(server->socket.local_endpoint()))
        .field("server_id", to_string(server->server.settings().server_id))
        .field("leases", static_cast<std::uint64_t>(server->db.table().size()))
        .field("journal_records", static_cast<std::uint64_t>(loaded.journal_records))
        .field("backend", gs::to_string(ctl.active_backend()))
        .raw(describe_settings(server->cfg))
        .write();
    sd->send(gs::notify_message().ready().status("serving " + to_string(server->cfg.subnet)));
  }

  // ---- 6. the loop ------------------------------------------------------------------------
  auto next_maintenance = std::chrono::steady_clock::now() + 1ms * maintenance_interval_ms;
  while (ctl.state() != gs::controller_state::stopped) {
    const bool serving = server && accepting && ctl.state() == gs::controller_state::running;
    const bool draining = server && drain && !drain->cancelled();
    pollfd fds[2] = {{ctl.fd(), POLLIN, 0},
                     {serving || draining ? server->socket.fd() : -1, POLLIN, 0}};
    int timeout = draining ? 0 : ctl.next_timeout_ms(); // a drain goes on until the socket is empty
    if (serving) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            next_maintenance - std::chrono::steady_clock::now())
                            .count();
      const int maintenance = left < 0 ? 0 : static_cast<int>(left);
      if (timeout < 0 || maintenance < timeout) timeout = maintenance;
    }
    if (::poll(fds, 2, timeout) < 0 && errno != EINTR) {
      log_error("poll", std::system_category().message(errno));
      return exit_os_error;
    }
    // The controller first: a stop that begins now must be seen before more work is taken.
    ctl.dispatch();

    const bool readable = (fds[1].revents & (POLLIN | POLLERR)) != 0;
    if (readable && server && accepting && ctl.state() == gs::controller_state::running) {
      try {
        server->service.on_readable(unix_now());
      } catch (const lease_db_error &e) {
        // The journal can no longer be written, so no ACK can be made durable: stop now, and
        // let the exit status tell the supervisor this was no clean stop.
        log_error("commit", e.what());
        ctl.request_stop(
            gs::signal_policy::fast(quit_deadline)
                .exit_with(gs::exit_rule::with_status(exit_io_error).on_failure(exit_io_error)));
      }
    } else if (server && drain && !drain->cancelled()) {
      try {
        if (server->service.drain(unix_now(), cutoff_ns).finished) {
          drain->done();
          drain.reset();
        }
      } catch (const lease_db_error &e) {
        drain->fail(e.what());
        drain.reset();
      }
    }
    if (drain && drain->cancelled()) drain.reset(); // timed out or cut short by a second ^C
    if (serving && std::chrono::steady_clock::now() >= next_maintenance) {
      server->service.on_timer(unix_now());
      next_maintenance = std::chrono::steady_clock::now() + 1ms * maintenance_interval_ms;
    }
  }

  // ---- 7. exit ------------------------------------------------------------------------------
  log_line exit_line("exit");
  exit_line.field("status", ctl.exit_code());
  if (ctl.reraise_signal()) exit_line.field("reraise", gs::signal_name(ctl.reraise_signal()));
  exit_line.write();
  ctl.exit_process(); // exit(status), or die of the signal
}

} // namespace

int main(int argc, char **argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  run_mode mode;
  try {
    mode = requested_mode(args); // the command line only: no file is read yet
  } catch (const config_error &e) {
    std::cerr << e.what() << '\n' << usage();
    return exit_config_error;
  }
  if (mode != run_mode::serve) return run_one_shot(mode, args);
  return serve(args);
}
