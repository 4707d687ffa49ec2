// The sd_notify client and its event-hook adapter, checked against a notification socket the test
// owns: it plays the service manager, binds a unix datagram socket (a path in a fresh directory,
// or an abstract name), points NOTIFY_SOCKET at it and asserts the exact datagrams that arrive,
// with the sender's pid as the kernel reports it (SO_PASSCRED), which is what systemd checks.
//
// The header comes first: this file is also the proof that it compiles on its own.
#include <gracefulstop/systemd_notify.hpp>

#include <gracefulstop/stop.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace gs = gracefulstop;
using namespace std::chrono_literals;

namespace {

/// Sets (or with nullptr, unsets) an environment variable for the scope, then restores it.
class env_var {
public:
  env_var(const char *name, const char *value) : name_(name) {
    if (const char *old = std::getenv(name)) previous_ = std::string(old);
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~env_var() {
    if (previous_)
      ::setenv(name_, previous_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  env_var(const env_var &) = delete;
  env_var &operator=(const env_var &) = delete;

private:
  const char *name_;
  std::optional<std::string> previous_;
};

struct datagram {
  std::string text;
  pid_t sender = 0;
};

/// The service manager's end of the protocol.
class notify_receiver {
public:
  enum class kind { path, abstract };

  explicit notify_receiver(kind k) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t length = 0;
    if (k == kind::path) {
      const char *tmp = std::getenv("TMPDIR");
      std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/gs-notify-XXXXXX";
      REQUIRE(::mkdtemp(pattern.data()) != nullptr);
      dir_ = pattern;
      path_ = dir_ + "/notify";
      REQUIRE(path_.size() < sizeof addr.sun_path);
      std::memcpy(addr.sun_path, path_.data(), path_.size());
      length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size() + 1);
      address_ = path_;
    } else {
      static int serial = 0;
      const std::string name =
          "gracefulstop-test-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
      std::memcpy(addr.sun_path + 1, name.data(), name.size());
      length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
      address_ = "@" + name;
    }
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr *>(&addr), length) == 0);
    // Like systemd: ask the kernel for each datagram's sender credentials.
    const int on = 1;
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
  }
  ~notify_receiver() {
    ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  notify_receiver(const notify_receiver &) = delete;
  notify_receiver &operator=(const notify_receiver &) = delete;

  const std::string &address() const { return address_; }

  /// The next datagram, or nothing if none arrives within `timeout_ms`.
  std::optional<datagram> receive(int timeout_ms = 5000) {
    pollfd p{fd_, POLLIN, 0};
    int n;
    do {
      n = ::poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return std::nullopt;
    char buffer[8192];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buffer, sizeof buffer};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (got < 0) return std::nullopt;
    datagram d;
    d.text.assign(buffer, static_cast<std::size_t>(got));
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        d.sender = cred.pid;
      }
    return d;
  }

  /// The next datagram's text, failing the test if none comes.
  std::string next(int timeout_ms = 5000) {
    const auto d = receive(timeout_ms);
    REQUIRE(d);
    return d->text;
  }

private:
  int fd_ = -1;
  std::string dir_, path_, address_;
};

std::size_t open_fd_count() {
  std::size_t n = 0;
  DIR *dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (dirent *entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n;
}

std::uint64_t monotonic_usec_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

/// "A=1\nB=2" -> {A: 1, B: 2}
std::map<std::string, std::string> fields(const std::string &text) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const std::size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

std::uint64_t as_number(const std::string &digits) {
  REQUIRE(!digits.empty());
  REQUIRE(digits.find_first_not_of("0123456789") == std::string::npos);
  return std::stoull(digits);
}

/// Runs `ctl` until it has stopped, waiting on its fd; fails the test if it takes 10 s.
void run_until_stopped(gs::stop_controller &ctl) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (ctl.state() != gs::controller_state::stopped) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    pollfd p{ctl.fd(), POLLIN, 0};
    const int timeout = ctl.next_timeout_ms();
    ::poll(&p, 1, timeout < 0 || timeout > 1000 ? 1000 : timeout);
    ctl.dispatch();
  }
}

void expect_system_error(std::errc code, const std::string &says) {
  try {
    gs::systemd_notifier sd;
    FAIL("constructor accepted the environment; expected: " << says);
  } catch (const std::system_error &ex) {
    CHECK(ex.code() == code);
    CHECK_THAT(ex.what(), Catch::Contains(says));
  }
  std::error_code ec;
  gs::systemd_notifier quiet(gs::systemd_notifier::options(), ec);
  CHECK(ec == code);
  CHECK_FALSE(quiet.enabled());
  CHECK_FALSE(quiet.ready()); // disabled: a no-op that succeeds
}

} // namespace

TEST_CASE("systemd_notifier opens nothing and sends nothing when NOTIFY_SOCKET is unset",
          "[systemd]") {
  env_var unset("NOTIFY_SOCKET", nullptr);
  env_var watchdog("WATCHDOG_USEC", "1000000"); // meaningless without a socket
  const std::size_t before = open_fd_count();
  gs::systemd_notifier sd;
  CHECK(open_fd_count() == before);
  CHECK_FALSE(sd.enabled());
  CHECK(sd.address().empty());
  CHECK_FALSE(sd.watchdog_interval());
  CHECK_FALSE(sd.ready());
  CHECK_FALSE(sd.stopping());
  CHECK_FALSE(sd.status("anything"));
  CHECK_FALSE(sd.send(gs::notify_message().ready().status("x")));
  gs::event e;
  e.kind = gs::event_kind::stop_requested;
  static_assert(noexcept(sd.on_event(e)), "the event hook path must not throw");
  sd.on_event(e);
  CHECK(open_fd_count() == before);
}

TEST_CASE("an empty NOTIFY_SOCKET disables the notifier like an unset one", "[systemd]") {
  env_var empty("NOTIFY_SOCKET", "");
  gs::systemd_notifier sd;
  CHECK_FALSE(sd.enabled());
  CHECK_FALSE(sd.ready());
}

TEST_CASE("each message arrives as one exact datagram from this process on a path socket",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier sd;
  REQUIRE(sd.enabled());
  CHECK(sd.address() == manager.address());

  CHECK_FALSE(sd.ready());
  const auto ready = manager.receive();
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
  CHECK(ready->sender == ::getpid());

  CHECK_FALSE(sd.stopping());
  CHECK(manager.next() == "STOPPING=1");
  CHECK_FALSE(sd.status("draining 3 clients"));
  CHECK(manager.next() == "STATUS=draining 3 clients");
  CHECK_FALSE(sd.watchdog());
  CHECK(manager.next() == "WATCHDOG=1");
  CHECK_FALSE(sd.extend_timeout(7s));
  CHECK(manager.next() == "EXTEND_TIMEOUT_USEC=7000000");
  CHECK_FALSE(
      sd.send(gs::notify_message().ready().status("serving").field("X_GRACEFULSTOP_TEST", "1")));
  CHECK(manager.next() == "READY=1\nSTATUS=serving\nX_GRACEFULSTOP_TEST=1");
  CHECK_FALSE(manager.receive(0)); // nothing else was sent
}

TEST_CASE("reloading sends RELOADING=1 with the CLOCK_MONOTONIC time in microseconds",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier sd;
  const std::uint64_t before = monotonic_usec_now();
  CHECK_FALSE(sd.reloading());
  const std::uint64_t after = monotonic_usec_now();
  const std::string text = manager.next();
  REQUIRE(text.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  const auto f = fields(text);
  REQUIRE(f.size() == 2);
  const std::uint64_t stamp = as_number(f.at("MONOTONIC_USEC"));
  CHECK(stamp >= before);
  CHECK(stamp <= after);
}

TEST_CASE("an abstract NOTIFY_SOCKET (@name) reaches the abstract socket", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::abstract);
  REQUIRE(manager.address()[0] == '@');
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier sd;
  REQUIRE(sd.enabled());
  CHECK_FALSE(sd.send(gs::notify_message().ready().status("abstract")));
  const auto d = manager.receive();
  REQUIRE(d);
  CHECK(d->text == "READY=1\nSTATUS=abstract");
  CHECK(d->sender == ::getpid());
}

TEST_CASE("a malformed NOTIFY_SOCKET is rejected with a message naming it", "[systemd]") {
  {
    env_var v("NOTIFY_SOCKET", "run/notify");
    expect_system_error(std::errc::invalid_argument,
                        "NOTIFY_SOCKET=\"run/notify\" is neither an absolute socket path");
  }
  {
    env_var v("NOTIFY_SOCKET", "@");
    expect_system_error(std::errc::invalid_argument, "names an empty abstract socket");
  }
  {
    const std::string too_long = "/" + std::string(120, 'x');
    env_var v("NOTIFY_SOCKET", too_long.c_str());
    expect_system_error(std::errc::filename_too_long, "longer than a unix socket path can be");
  }
  {
    const std::string too_long = "@" + std::string(120, 'x');
    env_var v("NOTIFY_SOCKET", too_long.c_str());
    expect_system_error(std::errc::filename_too_long, "longer than an abstract socket name can be");
  }
  {
    env_var v("NOTIFY_SOCKET", "vsock:2:1234");
    expect_system_error(std::errc::address_family_not_supported, "AF_VSOCK");
  }
}

TEST_CASE("a malformed WATCHDOG_USEC or WATCHDOG_PID is rejected with a message naming it",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  for (const char *bad : {"abc", "0", "-5", "12 ", "99999999999999999999999"}) {
    env_var v("WATCHDOG_USEC", bad);
    expect_system_error(std::errc::invalid_argument,
                        "WATCHDOG_USEC=\"" + std::string(bad) + "\" is not a positive");
  }
  env_var usec("WATCHDOG_USEC", "1000000");
  env_var pid("WATCHDOG_PID", "me");
  expect_system_error(std::errc::invalid_argument, "WATCHDOG_PID=\"me\" is not a process id");
}

TEST_CASE("watchdog_interval comes from WATCHDOG_USEC when WATCHDOG_PID is this process",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  env_var usec("WATCHDOG_USEC", "2500000");
  {
    env_var pid("WATCHDOG_PID", nullptr);
    gs::systemd_notifier sd;
    REQUIRE(sd.watchdog_interval());
    CHECK(*sd.watchdog_interval() == 2500ms);
  }
  {
    const std::string self = std::to_string(::getpid());
    env_var pid("WATCHDOG_PID", self.c_str());
    gs::systemd_notifier sd;
    REQUIRE(sd.watchdog_interval());
    CHECK(*sd.watchdog_interval() == 2500ms);
  }
  {
    // Inherited from a parent the watchdog is for: not ours to feed.
    const std::string other = std::to_string(::getpid() + 1);
    env_var pid("WATCHDOG_PID", other.c_str());
    gs::systemd_notifier sd;
    CHECK(sd.enabled());
    CHECK_FALSE(sd.watchdog_interval());
  }
}

TEST_CASE("unset_environment keeps children from inheriting the notification socket", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  env_var usec("WATCHDOG_USEC", "1000000");
  env_var pid("WATCHDOG_PID", std::to_string(::getpid()).c_str());
  gs::systemd_notifier::options o;
  o.unset_environment = true;
  gs::systemd_notifier sd(o);
  CHECK(std::getenv("NOTIFY_SOCKET") == nullptr);
  CHECK(std::getenv("WATCHDOG_USEC") == nullptr);
  CHECK(std::getenv("WATCHDOG_PID") == nullptr);
  CHECK(sd.watchdog_interval() == std::chrono::microseconds(1000000));
  CHECK_FALSE(sd.ready());
  CHECK(manager.next() == "READY=1");
}

TEST_CASE("STATUS is one line and is shortened at a character boundary to fit one datagram",
          "[systemd]") {
  CHECK(gs::notify_message().status("line one\nline two\tand\r\x01").text() ==
        "STATUS=line one line two and  ");

  const gs::notify_message ascii = gs::notify_message().status(std::string(10000, 'x'));
  CHECK(ascii.text().size() == gs::notify_message::capacity);
  CHECK(ascii.truncated());
  CHECK_FALSE(ascii.error());

  // "é" is two bytes; 4089 bytes of room after "STATUS=" end in the middle of one, which must
  // not be cut in half.
  std::string accents;
  for (int i = 0; i < 3000; ++i)
    accents += "\xC3\xA9";
  const gs::notify_message cut = gs::notify_message().status(accents);
  CHECK(cut.text().size() == gs::notify_message::capacity - 1);
  CHECK(cut.text().substr(cut.text().size() - 2) == "\xC3\xA9");

  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier sd;
  CHECK_FALSE(sd.status(std::string(10000, 'y')));
  const std::string text = manager.next();
  CHECK(text.size() == gs::notify_message::capacity);
  CHECK(text == "STATUS=" + std::string(gs::notify_message::capacity - 7, 'y'));
}

TEST_CASE("a message that cannot be built is refused and nothing is sent", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier sd;

  const gs::notify_message big =
      gs::notify_message().ready().field("X_BIG", std::string(5000, 'a'));
  CHECK(big.error() == std::errc::message_size);
  CHECK(big.text() == "READY=1"); // the field that did not fit left nothing behind
  CHECK(sd.send(big) == std::errc::message_size);

  CHECK(gs::notify_message().field("BAD NAME", "1").error() == std::errc::invalid_argument);
  CHECK(gs::notify_message().field("9LIVES", "1").error() == std::errc::invalid_argument);
  CHECK(gs::notify_message().field("", "1").error() == std::errc::invalid_argument);
  CHECK(gs::notify_message().field("A=B", "1").error() == std::errc::invalid_argument);
  CHECK(gs::notify_message().extend_timeout(-1us).error() == std::errc::invalid_argument);
  CHECK(sd.extend_timeout(-1us) == std::errc::invalid_argument);
  CHECK(sd.send(gs::notify_message()) == std::errc::invalid_argument);
  CHECK_FALSE(manager.receive(100));
}

TEST_CASE("a send to a socket nobody listens on reports the errno", "[systemd]") {
  std::string path;
  {
    notify_receiver gone(notify_receiver::kind::path);
    path = gone.address();
  } // socket closed and unlinked
  env_var socket("NOTIFY_SOCKET", path.c_str());
  gs::systemd_notifier sd; // not an error yet: the manager may bind it later (daemon-reexec)
  CHECK(sd.enabled());
  CHECK(sd.ready() == std::errc::no_such_file_or_directory);
}

TEST_CASE("a manager that does not read makes a send fail after send_timeout, not hang",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path); // never read until the end
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::systemd_notifier::options o;
  o.send_timeout = 50ms;
  gs::systemd_notifier sd(o);
  std::error_code ec;
  int sent = 0;
  const auto start = std::chrono::steady_clock::now();
  // The receive queue holds net.unix.max_dgram_qlen datagrams (10 by default, 512 under systemd).
  for (; sent < 2000 && !(ec = sd.watchdog()); ++sent) {
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(sent > 0);
  CHECK(ec == std::errc::resource_unavailable_try_again);
  CHECK(waited >= 40ms);
  CHECK(waited < 2s);

  gs::systemd_notifier::options never_wait;
  never_wait.send_timeout = 0ms;
  gs::systemd_notifier impatient(never_wait);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(impatient.watchdog() == std::errc::resource_unavailable_try_again);
  CHECK(std::chrono::steady_clock::now() - t0 < 40ms);

  // Room again once the manager reads: the queue, not the notifier, was the problem.
  REQUIRE(manager.receive());
  CHECK_FALSE(sd.watchdog());
}

TEST_CASE("a SIGTERM stop sends STOPPING, each stage and the remaining time as the extension",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());

  // One test clock for the controller and the notifier, moved by the stages: the windows are
  // then exact. (The controller's watchdog thread keeps real time and does not fire here.)
  auto fake_now = std::chrono::steady_clock::time_point() + 1h;
  gs::stop_controller::options o;
  o.which = gs::backend::self_pipe;
  o.grace = 2s;
  o.watchdog_margin = 1s;
  o.now = [&] { return fake_now; };
  gs::systemd_notifier sd(gs::systemd_notifier::options::for_controller(o));
  std::vector<std::string> log;
  o.on_event = [&](const gs::event &e) {
    log.push_back(gs::to_logfmt(e));
    sd.on_event(e);
  };
  gs::stop_controller ctl(o);
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(10s));
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting,
                 [&](gs::stage_context &) { fake_now += 1s; }});
  ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &) { fake_now += 3s; }});
  ctl.install();
  CHECK_FALSE(sd.ready());
  CHECK(manager.next() == "READY=1");

  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  run_until_stopped(ctl);
  INFO("events:\n"
       << [&] {
            std::string all;
            for (const auto &line : log)
              all += line + "\n";
            return all;
          }());
  CHECK(ctl.exit_code() == 0);

  // Budget: deadline 10 s + grace 2 s + watchdog margin 1 s = 13 s from the stop's start.
  CHECK(manager.next() ==
        "STOPPING=1\nSTATUS=stopping: SIGTERM graceful\nEXTEND_TIMEOUT_USEC=13000000");
  CHECK(manager.next() == "STATUS=stopping: stage stop-accepting\nEXTEND_TIMEOUT_USEC=13000000");
  CHECK(manager.next() == "EXTEND_TIMEOUT_USEC=12000000");
  CHECK(manager.next() == "STATUS=stopping: stage drain\nEXTEND_TIMEOUT_USEC=12000000");
  CHECK(manager.next() == "EXTEND_TIMEOUT_USEC=9000000");
  CHECK(manager.next() == "STATUS=stopped: exit status 0");
  CHECK_FALSE(manager.receive(0));
}

TEST_CASE("a passed deadline and a fixed extend_by are reported as such", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  auto fake_now = std::chrono::steady_clock::time_point() + 1h;
  gs::stop_controller::options o;
  o.which = gs::backend::self_pipe;
  o.now = [&] { return fake_now; };
  gs::systemd_notifier::options so = gs::systemd_notifier::options::for_controller(o);
  so.extend_by = 20s;
  gs::systemd_notifier sd(so);
  o.on_event = [&](const gs::event &e) { sd.on_event(e); };
  gs::stop_controller ctl(o);
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(1s));
  gs::stage_completion flush_done;
  // A must-run stage still busy when the deadline passes: the stop goes on within the grace.
  ctl.add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &c) {
                   flush_done = c.defer();
                   return gs::stage_status::pending;
                 }});
  ctl.install();

  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  pollfd p{ctl.fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  ctl.dispatch();
  REQUIRE(ctl.current_stage() == "flush");
  fake_now += 2s; // past the 1 s deadline
  ctl.dispatch();
  flush_done.done();
  run_until_stopped(ctl);

  CHECK(manager.next() ==
        "STOPPING=1\nSTATUS=stopping: SIGTERM graceful\nEXTEND_TIMEOUT_USEC=20000000");
  CHECK(manager.next() == "STATUS=stopping: stage flush\nEXTEND_TIMEOUT_USEC=20000000");
  CHECK(manager.next() == "STATUS=stopping: deadline passed\nEXTEND_TIMEOUT_USEC=20000000");
  CHECK(manager.next() == "EXTEND_TIMEOUT_USEC=20000000");
  CHECK(manager.next() == "STATUS=stopped: exit status 0");
}

TEST_CASE("a repeated SIGINT reports the escalation and the re-raise", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::abstract);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::stop_controller::options o;
  o.keep_inherited_ignore = false; // a SIGINT ignored by whoever started the test is ours anyway
  gs::systemd_notifier sd(gs::systemd_notifier::options::for_controller(o));
  o.on_event = [&](const gs::event &e) { sd.on_event(e); };
  gs::stop_controller ctl(o); // default SIGINT policy: 2nd -> fast, 3rd -> immediate, re-raise
  ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &c) {
                   c.defer(); // never completes: only the fast stop ends it
                   return gs::stage_status::pending;
                 }});
  ctl.install();

  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  pollfd p{ctl.fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  ctl.dispatch();
  REQUIRE(ctl.current_stage() == "drain");
  const auto first = fields(manager.next());
  CHECK(first.at("STOPPING") == "1");
  CHECK(first.at("STATUS") == "stopping: SIGINT graceful");
  // 5 s deadline + 5 s grace + 1 s margin, minus the little time since the stop began.
  const std::uint64_t window = as_number(first.at("EXTEND_TIMEOUT_USEC"));
  CHECK(window <= 11000000);
  CHECK(window > 10000000);
  CHECK(fields(manager.next()).at("STATUS") == "stopping: stage drain");

  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  run_until_stopped(ctl);
  const auto escalated = fields(manager.next());
  CHECK(escalated.at("STATUS") == "stopping: SIGINT fast");
  CHECK(as_number(escalated.at("EXTEND_TIMEOUT_USEC")) <= window);
  const auto cancelled = fields(manager.next());
  CHECK(cancelled.size() == 1);
  CHECK(cancelled.count("EXTEND_TIMEOUT_USEC") == 1);
  CHECK(manager.next() == "STATUS=stopped: re-raising SIGINT");
  CHECK(ctl.reraise_signal() == SIGINT);
}

TEST_CASE("a reload policy sends RELOADING with MONOTONIC_USEC, then READY with the outcome",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::stop_controller::options o;
  o.keep_inherited_ignore = false; // SIGHUP ignored by nohup is still ours in this test
  gs::systemd_notifier sd(gs::systemd_notifier::options::for_controller(o));
  o.on_event = [&](const gs::event &e) { sd.on_event(e); };
  gs::stop_controller ctl(o);
  int reloads = 0;
  ctl.set_policy(SIGHUP, gs::signal_policy::reload([&](const gs::signal_event &) {
                   if (++reloads == 2) throw std::runtime_error("line 3: unknown key");
                 }));
  ctl.install();

  const auto reload_once = [&] {
    const std::uint64_t before = monotonic_usec_now();
    REQUIRE(::kill(::getpid(), SIGHUP) == 0);
    pollfd p{ctl.fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    ctl.dispatch();
    const std::uint64_t after = monotonic_usec_now();
    const std::string reloading = manager.next();
    REQUIRE(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
    const std::uint64_t stamp = as_number(fields(reloading).at("MONOTONIC_USEC"));
    CHECK(stamp >= before);
    CHECK(stamp <= after);
    return manager.next();
  };
  CHECK(reload_once() == "READY=1\nSTATUS=reloaded (SIGHUP)");
  CHECK(reload_once() == "READY=1\nSTATUS=reload failed: line 3: unknown key");
  CHECK(ctl.state() == gs::controller_state::running);
  CHECK_FALSE(manager.receive(0));
}

TEST_CASE("status_updates off leaves STATUS to the application", "[systemd]") {
  notify_receiver manager(notify_receiver::kind::path);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  gs::stop_controller::options o;
  o.which = gs::backend::self_pipe;
  o.keep_inherited_ignore = false;
  gs::systemd_notifier::options so = gs::systemd_notifier::options::for_controller(o);
  so.status_updates = false;
  so.extend_by = 3s;
  gs::systemd_notifier sd(so);
  o.on_event = [&](const gs::event &e) { sd.on_event(e); };
  gs::stop_controller ctl(o);
  ctl.add_stage({"flush", gs::stage_kind::flush, [](gs::stage_context &) {}});
  ctl.set_policy(SIGHUP, gs::signal_policy::reload([](const gs::signal_event &) {}));
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGHUP) == 0);
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  run_until_stopped(ctl);
  std::vector<std::string> got;
  while (auto d = manager.receive(0))
    got.push_back(d->text);
  const std::vector<std::string> expected = {
      "READY=1",                                 // the reload's end (RELOADING= is first)
      "STOPPING=1\nEXTEND_TIMEOUT_USEC=3000000", // the stop
      "EXTEND_TIMEOUT_USEC=3000000",             // stage started
      "EXTEND_TIMEOUT_USEC=3000000",             // stage finished
  };
  REQUIRE(got.size() == 5);
  CHECK(got[0].rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  CHECK(std::vector<std::string>(got.begin() + 1, got.end()) == expected);
}

TEST_CASE("a forked daemon stopped by a real SIGTERM keeps the manager informed until it exits",
          "[systemd]") {
  notify_receiver manager(notify_receiver::kind::abstract);
  env_var socket("NOTIFY_SOCKET", manager.address().c_str());
  int finish_drain[2];
  REQUIRE(::pipe2(finish_drain, O_CLOEXEC) == 0);

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The daemon: signalfd backend, a drain that completes when the test says so.
    int status = 70;
    try {
      ::close(finish_drain[1]);
      gs::stop_controller::options o;
      o.which = gs::backend::signalfd;
      gs::systemd_notifier sd(gs::systemd_notifier::options::for_controller(o));
      o.on_event = [&](const gs::event &e) {
        std::fprintf(stderr, "%s\n", gs::to_logfmt(e).c_str());
        sd.on_event(e);
      };
      gs::stop_controller ctl(o);
      ctl.set_policy(SIGTERM, gs::signal_policy::graceful(10s));
      gs::poll_loop loop;
      gs::stage_completion drained;
      ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &c) {
                       drained = c.defer();
                       loop.watch(finish_drain[0], POLLIN, [&](short) {
                         loop.unwatch(finish_drain[0]);
                         drained.done();
                       });
                       return gs::stage_status::pending;
                     }});
      ctl.install();
      sd.ready();
      status = loop.run(ctl);
    } catch (...) {
    }
    ::_exit(status);
  }
  ::close(finish_drain[0]);
  struct reaper {
    pid_t pid;
    int write_fd;
    ~reaper() {
      ::close(write_fd);
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } guard{child, finish_drain[1]};

  const auto ready = manager.receive();
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
  CHECK(ready->sender == child);

  REQUIRE(::kill(child, SIGTERM) == 0);
  const auto stopping = manager.receive();
  REQUIRE(stopping);
  CHECK(stopping->sender == child);
  const auto stop = fields(stopping->text);
  CHECK(stop.at("STOPPING") == "1");
  CHECK(stop.at("STATUS") == "stopping: SIGTERM graceful");
  // 10 s deadline + 5 s default grace + 1 s default watchdog margin, less the time since.
  const std::uint64_t first = as_number(stop.at("EXTEND_TIMEOUT_USEC"));
  CHECK(first <= 16000000);
  CHECK(first > 15000000);

  const auto stage = fields(manager.next());
  CHECK(stage.at("STATUS") == "stopping: stage drain");
  const std::uint64_t second = as_number(stage.at("EXTEND_TIMEOUT_USEC"));
  CHECK(second <= first);

  // The daemon is now draining; let it finish.
  REQUIRE(::write(finish_drain[1], "x", 1) == 1);
  const auto finished = fields(manager.next());
  CHECK(finished.size() == 1);
  CHECK(as_number(finished.at("EXTEND_TIMEOUT_USEC")) <= second);
  CHECK(manager.next() == "STATUS=stopped: exit status 0");

  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  guard.pid = 0;
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
