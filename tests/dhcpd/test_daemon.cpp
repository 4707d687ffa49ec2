// gracefulstop-dhcpd as a real process over loopback: every signal, the start-up, the exit
// codes, the one-shot modes and sd_notify. A fake relay agent (daemon_harness.hpp) plays the
// clients; the peer tests (peers_*.sh) do the same with dhclient, udhcpc and perfdhcp.
#include "daemon_harness.hpp"
#include "lease_db.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <sys/stat.h>
#include <sys/un.h>

using namespace dhcpd_test;
using gsdhcpd::message_type;

namespace {

// How the controller names this test process as the sender of the signals it sends.
std::string sent_by_me() {
  return " sender_pid=" + std::to_string(::getpid()) + " sender_uid=" + std::to_string(::getuid());
}

const std::string daemon_binary = GSDHCPD_BINARY;

// A lease directory, a relay, and a config file for a server on 127.0.0.1 at the relay's port.
struct setup {
  temp_dir dir{"daemon"};
  relay agent;
  std::string config_path = dir.file("dhcpd.conf");
  std::string lease_dir = dir.file("leases");

  explicit setup(const std::string &dns = "10.0.0.1") {
    std::filesystem::create_directory(lease_dir);
    write_config(dns);
  }
  std::string config_text(const std::string &dns) const {
    return "# loopback test server\n"
           "listen = " +
           agent.server_endpoint() +
           "\n"
           "subnet = 127.0.0.0/16\n"
           "pool = 127.0.1.1-127.0.4.250\n"
           "router = 127.0.0.1\n"
           "dns = " +
           dns +
           "\n"
           "lease-time = 3600\n"
           "lease-dir = " +
           lease_dir + "\n";
  }
  void write_config(const std::string &dns) const {
    std::ofstream(config_path, std::ios::trunc) << config_text(dns);
  }
  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {daemon_binary, "--config", config_path};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // Starts the daemon and waits for event=ready.
  std::unique_ptr<process> start(std::vector<std::string> extra = {},
                                 std::vector<std::string> env = {}) const {
    auto p = std::make_unique<process>(argv(std::move(extra)), std::move(env));
    auto ready = p->next_line("event=ready", milliseconds(10000));
    if (!ready) FAIL("no event=ready\n" << p->transcript());
    return p;
  }
  // The leases the database holds as bound now: address -> MAC.
  std::map<std::string, std::string> bound_leases() const {
    std::ostringstream out;
    gsdhcpd::dump_leases(lease_dir, out, static_cast<std::int64_t>(std::time(nullptr)));
    std::map<std::string, std::string> leases;
    std::istringstream in(out.str());
    std::string address, mac, expiry;
    while (in >> address >> mac >> expiry)
      leases[address] = mac;
    return leases;
  }
};

int exit_status(std::optional<int> status) {
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

// Every ACK the clients received is a bound lease in the database, for the same client.
void require_every_ack_on_disk(const setup &s, const load &clients) {
  const auto leases = s.bound_leases();
  std::size_t missing = 0;
  for (const auto &ack : clients.acks) {
    auto it = leases.find(gsdhcpd::to_string(ack.address));
    if (it == leases.end() || it->second != mac_text(ack.client)) {
      ++missing;
      UNSCOPED_INFO("ACKed " << gsdhcpd::to_string(ack.address) << " to " << mac_text(ack.client)
                             << " is not in the lease database");
    }
  }
  CHECK(missing == 0);
}

// The stages of the stop, in the order the log reports them, with their outcomes.
std::vector<std::string> stage_outcomes(const process &p) {
  std::vector<std::string> out;
  for (const std::string &l : p.lines())
    if (l.rfind("event=stage ", 0) == 0)
      out.push_back(*field(l, "stage") + "=" + *field(l, "outcome"));
  return out;
}

} // namespace

TEST_CASE("SIGTERM under load: stages in order, exit 0, every ACKed lease on disk, restart "
          "serves them") {
  setup s;
  auto daemon = s.start();
  load clients(s.agent, ip("127.0.0.1"), 1, 400);
  // Load first, then the signal in the middle of it.
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000),
                       [&] { return clients.acks.size() >= 100; }));
  daemon->send_signal(SIGTERM);
  // The clients go on as if nothing happened, until the server is gone.
  clients.pump(daemon.get(), clock::now() + milliseconds(10000), [&] {
    daemon->read_available();
    return daemon->index_of("event=exit") != process::npos;
  });
  const auto status = daemon->wait_exit(milliseconds(10000));
  INFO(daemon->transcript());
  REQUIRE(status);
  CHECK(exit_status(status) == 0);

  const std::string me = std::to_string(::getpid());
  const std::size_t requested = daemon->index_of("event=stop-requested signal=SIGTERM");
  REQUIRE(requested != process::npos);
  CHECK(field(daemon->lines()[requested], "sender_pid") == me);
  CHECK(daemon->index_of("event=announce state=restarting") != process::npos);
  CHECK(stage_outcomes(*daemon) ==
        std::vector<std::string>{"stop-accepting=done", "drain=done", "flush=done", "close=done"});
  const std::size_t stopped = daemon->index_of("event=stopped");
  REQUIRE(stopped != process::npos);
  CHECK(std::stoi(*field(daemon->lines()[stopped], "elapsed_ms")) < 10000); // the deadline
  // The daemon's own exit line is its last word: exit_process() reports nothing after it.
  CHECK(daemon->lines().back().find("event=exit status=0") != std::string::npos);
  CHECK(daemon->count_of("partner-down") == 0);

  REQUIRE(clients.acks.size() >= 100);
  require_every_ack_on_disk(s, clients);
  run_result check = run({daemon_binary, "--check-leases", s.lease_dir});
  INFO(check.text());
  CHECK(check.status == 0);
  // The final flush folded the journal into the snapshot.
  CHECK(check.text().find("journal_records=0") != std::string::npos);

  // The restart reads them back, and a client that had an address keeps it (INIT-REBOOT).
  auto again = s.start();
  const std::string ready = again->lines()[again->index_of("event=ready")];
  CHECK(std::stoul(*field(ready, "leases")) >= clients.acks.size());
  const load::ack_record &first = clients.acks.front();
  gsdhcpd::dhcp_packet reboot = client_message(message_type::request, first.client, 0xabc);
  reboot.options.requested_ip = first.address;
  s.agent.send(reboot);
  auto reply = s.agent.receive(milliseconds(5000));
  REQUIRE(reply);
  CHECK(reply->options.type == message_type::ack);
  CHECK(reply->yiaddr == first.address);
  again->send_signal(SIGTERM);
  CHECK(exit_status(again->wait_exit(milliseconds(10000))) == 0);
}

TEST_CASE("SIGTERM drains: every request waiting in the socket when the stop began is answered") {
  setup s;
  auto daemon = s.start();
  // Hold the server still, queue 300 requests (INIT-REBOOT, each a new lease to commit), then
  // ask it to stop before it has read any of them.
  daemon->send_signal(SIGSTOP);
  REQUIRE(daemon->wait_for_proc([&] { return daemon->state() == 'T'; }, milliseconds(5000)));
  const std::uint32_t queued = 300;
  for (std::uint32_t id = 1; id <= queued; ++id) {
    gsdhcpd::dhcp_packet p = client_message(message_type::request, id, id);
    p.options.requested_ip = gsdhcpd::ipv4{ip("127.0.1.1").value + id - 1};
    s.agent.send(p);
  }
  daemon->send_signal(SIGTERM);
  daemon->send_signal(SIGCONT);
  const auto status = daemon->wait_exit(milliseconds(10000));
  INFO(daemon->transcript());
  CHECK(exit_status(status) == 0);
  std::set<std::uint32_t> acked;
  while (auto reply = s.agent.receive(milliseconds(0)))
    if (reply->options.type == message_type::ack) acked.insert(reply->xid);
  CHECK(acked.size() == queued);
  const std::size_t served = daemon->index_of("event=served");
  REQUIRE(served != process::npos);
  CHECK(field(daemon->lines()[served], "drained") == std::to_string(queued));
  CHECK(field(daemon->lines()[served], "left_for_restart") == "0");
  CHECK(stage_outcomes(*daemon)[1] == "drain=done");
  CHECK(s.bound_leases().size() == queued);
}

TEST_CASE("SIGINT: a second SIGINT cancels the drain, the flush still runs, the process dies of "
          "SIGINT") {
  setup s;
  auto daemon = s.start();
  // Some leases first, which the flush must keep.
  load clients(s.agent, ip("127.0.0.1"), 1, 50);
  REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));

  // A backlog larger than one batch (64), so that the drain cannot finish in its first step.
  daemon->send_signal(SIGSTOP);
  REQUIRE(daemon->wait_for_proc([&] { return daemon->state() == 'T'; }, milliseconds(5000)));
  for (std::uint32_t id = 1000; id < 1200; ++id)
    s.agent.send(client_message(message_type::discover, id, id));
  // Hold the daemon at its first log line after the first ^C: it has read that SIGINT, so the
  // second cannot merge with it in the kernel's pending set.
  daemon->read_available();
  daemon->fill_output_pipe();
  daemon->send_signal(SIGINT);
  daemon->send_signal(SIGCONT);
  REQUIRE(
      daemon->wait_for_proc([&] { return daemon->blocked_writing_stderr(); }, milliseconds(5000)));
  daemon->send_signal(SIGINT);
  const auto status = daemon->wait_exit(milliseconds(10000));
  INFO(daemon->transcript());
  REQUIRE(status);
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGINT);
  CHECK(daemon->index_of("event=stop-requested signal=SIGINT") != process::npos);
  CHECK(daemon->index_of("deadline_ms=2000") != process::npos);
  CHECK(daemon->index_of("event=escalated signal=SIGINT action=fast") != process::npos);
  CHECK(stage_outcomes(*daemon) == std::vector<std::string>{"stop-accepting=done",
                                                            "drain=cancelled", "flush=done",
                                                            "close=done"});
  CHECK(daemon->index_of("event=exit status=130 reraise=SIGINT") != process::npos);
  require_every_ack_on_disk(s, clients);
  CHECK(run({daemon_binary, "--check-leases", s.lease_dir}).status == 0);
}

TEST_CASE("SIGQUIT runs only the flush and exits 131") {
  setup s;
  auto daemon = s.start();
  load clients(s.agent, ip("127.0.0.1"), 1, 30);
  REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
  daemon->send_signal(SIGQUIT);
  const auto status = daemon->wait_exit(milliseconds(5000));
  INFO(daemon->transcript());
  CHECK(exit_status(status) == 131);
  CHECK(daemon->index_of("event=stop-requested signal=SIGQUIT") != process::npos);
  CHECK(daemon->index_of("action=fast") != process::npos);
  CHECK(stage_outcomes(*daemon) == std::vector<std::string>{"flush=done"});
  CHECK(daemon->index_of("event=flushed leases=30") != process::npos);
  require_every_ack_on_disk(s, clients);
  CHECK(run({daemon_binary, "--check-leases", s.lease_dir}).text().find("journal_records=0") !=
        std::string::npos);
}

TEST_CASE("SIGHUP under load: no request dropped, new settings in effect, a bad config is "
          "refused and the running one kept") {
  setup s("10.0.0.1");
  auto daemon = s.start();
  load clients(s.agent, ip("127.0.0.1"), 1, 600, 8);
  // A retransmission would mean a request went unanswered; the window is generous for a loaded
  // machine, and none may be needed.
  clients.retransmit = milliseconds(2000);
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000),
                       [&] { return clients.acks.size() >= 100; }));

  // 1. A good change: new DNS server.
  s.write_config("10.0.0.53");
  daemon->send_signal(SIGHUP);
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000), [&] {
    return daemon->index_of("event=reload signal=SIGHUP" + sent_by_me() + " ok=true") !=
           process::npos;
  }));
  const auto reloaded_at = clock::now();
  const std::size_t acks_before_bad = clients.acks.size() + 100;
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000),
                       [&] { return clients.acks.size() >= acks_before_bad; }));

  // 2. A broken file: refused with FILE:LINE, the running settings stay.
  std::string broken = s.config_text("10.0.0.99");
  broken.replace(broken.find("pool = 127.0.1.1-127.0.4.250"), 28, "pool = 127.0.9.1-127.0.0.5");
  std::ofstream(s.config_path, std::ios::trunc) << broken;
  daemon->send_signal(SIGHUP);
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000), [&] {
    return daemon->index_of("event=reload signal=SIGHUP" + sent_by_me() + " ok=false") !=
           process::npos;
  }));
  const std::string refused = daemon->lines()[daemon->index_of("ok=false")];
  CHECK(field(refused, "error") ==
        s.config_path + ":4: pool 127.0.9.1-127.0.0.5 ends before it starts");

  // 3. A change that needs a restart: refused too.
  std::string moved = s.config_text("10.0.0.99");
  moved.replace(moved.find("listen = "), 9, "listen = 127.0.0.3:1#");
  std::ofstream(s.config_path, std::ios::trunc) << moved;
  daemon->send_signal(SIGHUP);
  REQUIRE(clients.pump(daemon.get(), clock::now() + milliseconds(10000), [&] {
    return daemon->count_of("event=reload signal=SIGHUP" + sent_by_me() + " ok=false") == 2;
  }));
  CHECK(daemon->lines().back().find("listen cannot change without a restart") != std::string::npos);

  REQUIRE(clients.pump_all(daemon.get(), milliseconds(20000)));
  daemon->send_signal(SIGTERM);
  CHECK(exit_status(daemon->wait_exit(milliseconds(10000))) == 0);
  INFO(daemon->transcript());

  CHECK(clients.acks.size() == 600);
  CHECK(clients.retransmissions == 0); // no request went unanswered
  CHECK(clients.naks == 0);
  std::size_t old_dns_after_reload = 0, new_dns = 0;
  for (const auto &ack : clients.acks) {
    REQUIRE(ack.dns.size() == 1);
    if (ack.request_sent > reloaded_at && ack.dns[0] != ip("10.0.0.53")) ++old_dns_after_reload;
    new_dns += ack.dns[0] == ip("10.0.0.53");
  }
  CHECK(old_dns_after_reload == 0); // the reload is in force for every later request
  CHECK(new_dns >= 400);            // and the refused files changed nothing
  CHECK(daemon->count_of("event=settings") == 1);
  require_every_ack_on_disk(s, clients);
}

TEST_CASE("SIGUSR1 checkpoints the journal into a snapshot that ISC dhcpd accepts") {
  setup s;
  auto daemon = s.start();
  load clients(s.agent, ip("127.0.0.1"), 1, 40);
  REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
  run_result before = run({daemon_binary, "--check-leases", s.lease_dir});
  CHECK(before.text() == "leases=40 active=40 journal_records=40 snapshot_seq=0\n");

  daemon->send_signal(SIGUSR1);
  REQUIRE(daemon->next_line("event=callback signal=SIGUSR1" + sent_by_me() + " ok=true",
                            milliseconds(5000)));
  CHECK(daemon->index_of("event=checkpoint leases=40 snapshot_seq=40") != process::npos);
  // Checked while the server runs: the read-only checker takes no lock.
  run_result after = run({daemon_binary, "--check-leases", s.lease_dir});
  CHECK(after.status == 0);
  CHECK(after.text() == "leases=40 active=40 journal_records=0 snapshot_seq=40\n");

  if (::access("/usr/sbin/dhcpd", X_OK) == 0) {
    s.dir.write("isc.conf", "authoritative;\nsubnet 127.0.0.0 netmask 255.255.0.0 {\n"
                            "  range 127.0.1.1 127.0.4.250;\n}\n");
    // -T rewrites the file it tests; give it a copy.
    std::filesystem::copy_file(s.lease_dir + "/leases.snapshot", s.dir.file("copy.leases"));
    run_result isc = run({"/usr/sbin/dhcpd", "-4", "-T", "-cf", s.dir.file("isc.conf"), "-lf",
                          s.dir.file("copy.leases")});
    INFO(isc.text());
    CHECK(isc.status == 0);
    CHECK(isc.text().find("Wrote 40 leases to leases file.") != std::string::npos);
    CHECK(isc.text().find("orrupt") == std::string::npos);
  } else {
    WARN("dhcpd -T not run: /usr/sbin/dhcpd (isc-dhcp-server) is not installed");
  }
  daemon->send_signal(SIGTERM);
  CHECK(exit_status(daemon->wait_exit(milliseconds(10000))) == 0);
}

TEST_CASE("a SIGTERM that arrives during start-up is honoured: no ready, exit 0") {
  setup s;
  // The config file is a FIFO: the daemon installs its handlers, then blocks reading it.
  const std::string fifo = s.dir.file("fifo.conf");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  process daemon({daemon_binary, "--config", fifo});
  INFO(daemon.transcript());
  REQUIRE(daemon.next_line("event=installed", milliseconds(5000)));
  daemon.send_signal(SIGTERM); // latched: the default action would have killed it
  { std::ofstream(fifo) << s.config_text("10.0.0.1"); }
  const auto status = daemon.wait_exit(milliseconds(10000));
  INFO(daemon.transcript());
  CHECK(exit_status(status) == 0);
  CHECK(daemon.index_of("event=ready") == process::npos);
  CHECK(daemon.index_of("event=stop-requested signal=SIGTERM") != process::npos);
  CHECK(daemon.index_of("event=stage stage=flush") != process::npos);
  // It did start up whole before stopping: the lease files exist and check.
  CHECK(run({daemon_binary, "--check-leases", s.lease_dir}).status == 0);
}

TEST_CASE("truncated, oversized and malformed datagrams are dropped and counted, never a crash") {
  setup s;
  auto daemon = s.start();
  std::vector<std::uint8_t> good = gsdhcpd::serialize(client_message(message_type::discover, 1, 1));
  auto send = [&](std::vector<std::uint8_t> bytes) {
    s.agent.send_bytes(bytes.data(), bytes.size());
  };
  send({});                                                          // empty
  send(std::vector<std::uint8_t>(good.begin(), good.begin() + 100)); // truncated header
  send(std::vector<std::uint8_t>(9000, 0x01));                       // oversized
  auto bad_cookie = good;
  bad_cookie[236] = 0;
  send(bad_cookie);
  // A valid header, then option 53 and a hostname option whose length runs past the end. Built
  // in place: g++ 12 at -O2 reports a false -Warray-bounds on vector::insert of a list here.
  const std::uint8_t options_overrun[] = {53, 1, 1, 12, 200, 'x'};
  std::vector<std::uint8_t> overrun(240 + sizeof options_overrun);
  std::copy(good.begin(), good.begin() + 240, overrun.begin());
  std::copy(std::begin(options_overrun), std::end(options_overrun), overrun.begin() + 240);
  send(overrun);
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) { // fuzz: a valid header, random options
    auto fuzzed = std::vector<std::uint8_t>(good.begin(), good.begin() + 240);
    fuzzed.resize(240 + random() % 300);
    for (std::size_t b = 240; b < fuzzed.size(); ++b)
      fuzzed[b] = static_cast<std::uint8_t>(random());
    send(fuzzed);
  }
  // Still serving.
  load clients(s.agent, ip("127.0.0.1"), 1, 5);
  REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
  daemon->send_signal(SIGTERM);
  const auto status = daemon->wait_exit(milliseconds(10000));
  INFO(daemon->transcript());
  CHECK(exit_status(status) == 0);
  const std::string served = daemon->lines()[daemon->index_of("event=served")];
  CHECK(field(served, "malformed.truncated_header") == "2");
  CHECK(field(served, "malformed.oversized") == "1");
  CHECK(field(served, "malformed.bad_magic_cookie") == "1");
  CHECK(field(served, "malformed.option_overrun"));
  CHECK(std::stoi(*field(served, "dropped.malformed")) >= 5);
  // (a fuzzed datagram may happen to be a valid request, and get its answer)
  CHECK(std::stoi(*field(served, "out.DHCPACK")) >= 5);
}

TEST_CASE("exit codes: config errors 78 with FILE:LINE, damaged leases 65, a held directory 75") {
  setup s;
  // --check-config
  run_result ok = run({daemon_binary, "--check-config", s.config_path});
  CHECK(ok.status == 0);
  CHECK(ok.text().rfind(s.config_path + ": ok subnet=127.0.0.0/16", 0) == 0);
  std::string text = s.config_text("10.0.0.1");
  text.replace(text.find("router = 127.0.0.1"), 18, "router = 127.0.2.1");
  s.dir.write("bad.conf", text);
  run_result bad = run({daemon_binary, "--check-config", s.dir.file("bad.conf")});
  CHECK(bad.status == 78);
  CHECK(bad.text() ==
        s.dir.file("bad.conf") + ":5: router 127.0.2.1 is inside the pool 127.0.1.1-127.0.4.250\n");
  // The daemon itself refuses to start with the same message.
  run_result serve_bad = run({daemon_binary, "--config", s.dir.file("bad.conf")});
  CHECK(serve_bad.status == 78);
  CHECK(serve_bad.text().find("error=\"" + s.dir.file("bad.conf") + ":5: router") !=
        std::string::npos);
  CHECK(run({daemon_binary, "--frobnicate"}).status == 78);

  // --check-leases and --dump-leases on a database with leases.
  {
    auto daemon = s.start();
    load clients(s.agent, ip("127.0.0.1"), 1, 3);
    REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
    // A second server on the same directory is refused: 75, and the first one is unharmed.
    relay other;
    run_result second =
        run({daemon_binary, "--listen", other.server_endpoint(), "--subnet", "127.0.0.0/16",
             "--pool", "127.0.1.1-127.0.1.9", "--lease-dir", s.lease_dir});
    CHECK(second.status == 75);
    CHECK(second.text().find("locked: another gracefulstop-dhcpd is using") != std::string::npos);
    run_result dump = run({daemon_binary, "--dump-leases", s.lease_dir});
    CHECK(dump.status == 0);
    REQUIRE(dump.lines.size() == 3);
    for (const std::string &line : dump.lines) {
      std::istringstream in(line);
      std::string address, mac;
      long long expiry = 0;
      in >> address >> mac >> expiry;
      CHECK(gsdhcpd::parse_ipv4(address));
      CHECK(mac.rfind("02:42:00:00:00:0", 0) == 0);
      CHECK(expiry > std::time(nullptr) + 3500);
    }
    daemon->send_signal(SIGTERM);
    CHECK(exit_status(daemon->wait_exit(milliseconds(10000))) == 0);
  }

  // Damage in the middle of the journal: check says why (65), the server refuses to start (65),
  // and --repair starts it with what is valid.
  {
    auto daemon = s.start();
    load clients(s.agent, ip("127.0.0.1"), 10, 5);
    REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
    daemon->send_signal(SIGKILL); // no flush: the records stay in the journal
    daemon->wait_exit(milliseconds(5000));
  }
  const std::string journal = s.lease_dir + "/leases.journal";
  {
    // One bit in the first record's address: its checksum no longer matches, and the four
    // valid records after it show that this is damage, not a write cut short.
    std::fstream f(journal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(20);
    const char byte = static_cast<char>(f.get());
    f.seekp(20);
    f.put(static_cast<char>(byte ^ 0x01));
  }
  run_result damaged = run({daemon_binary, "--check-leases", s.lease_dir});
  CHECK(damaged.status == 65);
  CHECK(damaged.text().find(journal + ": damaged record at offset 0") != std::string::npos);
  CHECK(run({daemon_binary, "--dump-leases", s.lease_dir}).status == 65);
  run_result refused = run(s.argv());
  CHECK(refused.status == 65);
  CHECK(refused.text().find("refusing to start") != std::string::npos);
  {
    auto repaired = s.start({"--repair"});
    CHECK(repaired->index_of("repair:") != process::npos);
    repaired->send_signal(SIGTERM);
    CHECK(exit_status(repaired->wait_exit(milliseconds(10000))) == 0);
  }
  CHECK(run({daemon_binary, "--check-leases", s.lease_dir}).status == 0);

  // A snapshot changed behind the server's back.
  {
    std::fstream f(s.lease_dir + "/leases.snapshot", std::ios::in | std::ios::out);
    f.seekg(-3, std::ios::end);
    const char byte = static_cast<char>(f.get());
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(byte ^ 0x01));
  }
  run_result corrupt = run({daemon_binary, "--check-leases", s.lease_dir});
  CHECK(corrupt.status == 65);
  CHECK(corrupt.text().find("checksum mismatch") != std::string::npos);
}

TEST_CASE("systemd notify: READY, RELOADING, STOPPING, EXTEND_TIMEOUT_USEC and STATUS") {
  setup s;
  const std::string path = s.dir.file("notify.sock");
  int manager = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(manager >= 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  REQUIRE(::bind(manager, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
  std::vector<std::string> received;
  auto next_message = [&](const char *needle) -> bool {
    for (const std::string &m : received)
      if (m.find(needle) != std::string::npos) return true;
    const auto deadline = clock::now() + milliseconds(5000);
    for (;;) {
      pollfd p{manager, POLLIN, 0};
      if (::poll(&p, 1, ms_until(deadline)) != 1) return false;
      char buffer[4096];
      ssize_t n = ::recv(manager, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      received.emplace_back(buffer, static_cast<std::size_t>(n));
      if (received.back().find(needle) != std::string::npos) return true;
    }
  };

  auto daemon = s.start({}, {"NOTIFY_SOCKET=" + path});
  CHECK(next_message("READY=1\nSTATUS=serving 127.0.0.0/16"));
  daemon->send_signal(SIGHUP);
  CHECK(next_message("RELOADING=1\nMONOTONIC_USEC="));
  CHECK(next_message("READY=1\nSTATUS=reloaded (SIGHUP)"));
  daemon->send_signal(SIGTERM);
  CHECK(next_message("STOPPING=1\nSTATUS=stopping: SIGTERM graceful\nEXTEND_TIMEOUT_USEC="));
  CHECK(next_message("STATUS=restarting: leases kept"));
  CHECK(next_message("STATUS=stopping: stage drain\nEXTEND_TIMEOUT_USEC="));
  CHECK(next_message("STATUS=stopped: exit status 0"));
  CHECK(exit_status(daemon->wait_exit(milliseconds(10000))) == 0);
  ::close(manager);

  // A malformed NOTIFY_SOCKET is a unit-file mistake: refuse to start, say why.
  process bad(s.argv(), {"NOTIFY_SOCKET=relative/path"});
  CHECK(exit_status(bad.wait_exit(milliseconds(5000))) == 78);
  CHECK(bad.index_of("NOTIFY_SOCKET=\\\"relative/path\\\"") != process::npos);
}

TEST_CASE("after binding, the daemon drops to the configured user") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to switch users");
    return;
  }
  setup s;
  REQUIRE(::chmod(s.dir.path().c_str(), 0755) == 0); // mkdtemp's 0700 would keep nobody out
  REQUIRE(::chown(s.lease_dir.c_str(), 65534, 65534) == 0);
  auto daemon = s.start({"--user", "nobody"});
  std::ifstream status("/proc/" + std::to_string(daemon->pid()) + "/status");
  std::string line, uid;
  while (std::getline(status, line))
    if (line.rfind("Uid:", 0) == 0) uid = line;
  CHECK(uid == "Uid:\t65534\t65534\t65534\t65534");
  struct stat st {};
  REQUIRE(::stat((s.lease_dir + "/leases.journal").c_str(), &st) == 0);
  CHECK(st.st_uid == 65534u);
  load clients(s.agent, ip("127.0.0.1"), 1, 5);
  REQUIRE(clients.pump_all(daemon.get(), milliseconds(10000)));
  daemon->send_signal(SIGTERM);
  CHECK(exit_status(daemon->wait_exit(milliseconds(10000))) == 0);
  require_every_ack_on_disk(s, clients);
}
