// gracefulstop/systemd_notify.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The sd_notify protocol without libsystemd: tell a systemd service manager that the daemon is
// ready, reloading or stopping, and keep a long stop from being SIGKILLed by TimeoutStopSec=.
// Optional: stop.hpp does not include it, and a program that systemd does not run pays one
// getenv() for it.
//
//   gracefulstop::systemd_notifier sd;               // reads $NOTIFY_SOCKET; unset: every call is
//   a no-op gracefulstop::stop_controller::options opts; opts.on_event = [&](const
//   gracefulstop::event &e) { log(e); sd.on_event(e); }; gracefulstop::stop_controller ctl(opts);
//   ... bind sockets, add stages, ctl.install() ...
//   sd.ready();                                      // Type=notify: the unit is now "active"
//
// What on_event() sends (see its comment for the exact texts): STOPPING=1 when a stop begins,
// STATUS= naming the running stage, EXTEND_TIMEOUT_USEC= on every step of the stop so that the
// service manager waits as long as the controller itself may take, and for a reload policy
// RELOADING=1 + MONOTONIC_USEC= followed by READY=1, which is what Type=notify-reload expects.
//
// The protocol (sd_notify(3)): one datagram of newline-separated VAR=value assignments, sent to
// the AF_UNIX datagram socket named by $NOTIFY_SOCKET: a path ("/run/systemd/notify") or, with a
// leading '@', a Linux abstract socket name. The manager learns who sent it from SCM_CREDENTIALS,
// which the kernel attaches when the receiver asks for them, so the sender adds nothing.
//
// Errors: a malformed $NOTIFY_SOCKET or $WATCHDOG_USEC is a configuration mistake an
// administrator must see, so the constructor throws std::system_error naming the value (the
// error_code overload reports it instead and leaves the notifier disabled). An unset or empty
// $NOTIFY_SOCKET is not an error: the program simply is not run by systemd (or was started with
// `NOTIFY_SOCKET= prog` to opt out). Sending never throws: each send returns a std::error_code,
// which most programs may ignore, as sd_notify(3) recommends.
//
// Thread safety: the send functions (ready(), status(), send(), ...) may be called from any
// thread: each is one sendto() on a socket that does not change after construction. on_event()
// keeps the stop's bookkeeping and belongs to the thread that runs the controller's event hook
// (the loop thread).
//
// Async-signal safety: nothing here is meant for signal context. Signals reach this code as
// events on the loop thread.
#ifndef GRACEFULSTOP_SYSTEMD_NOTIFY_HPP
#define GRACEFULSTOP_SYSTEMD_NOTIFY_HPP

#include <gracefulstop/detail/config.hpp>
#include <gracefulstop/detail/fd.hpp>
#include <gracefulstop/event.hpp>
#include <gracefulstop/stop_controller.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <system_error>
#include <unistd.h>

namespace gracefulstop {

namespace detail {
/// CLOCK_MONOTONIC in microseconds: the clock systemd compares MONOTONIC_USEC= against.
/// std::chrono::steady_clock happens to be CLOCK_MONOTONIC in libstdc++ and libc++ on Linux, but
/// the standard does not say so, and the manager checks the value against its own reading.
inline std::uint64_t monotonic_usec() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

/// Parses a whole string of decimal digits; false for anything else (sign, spaces, overflow).
inline bool parse_decimal(std::string_view text, std::uint64_t &out) noexcept {
  if (text.empty()) return false;
  const char *end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
}
} // namespace detail

/// One notification: newline-separated assignments, built in place without allocating, so it can
/// be composed on the event-hook path where nothing may throw.
///
/// At most `capacity` bytes: systemd reads a notification into a PIPE_BUF-sized buffer (4096
/// bytes, NOTIFY_BUFFER_MAX in its source) and drops a longer datagram whole, so a message that
/// would not fit is refused here rather than sent to be discarded. STATUS= text alone is shortened
/// to fit (at a UTF-8 character boundary), since a cut status line is still worth showing.
///
/// A field that cannot be added (invalid name, negative time, no room) marks the message as
/// failed; error() says why and systemd_notifier::send() refuses it.
class notify_message {
public:
  static constexpr std::size_t capacity = 4096;

  /// READY=1: start-up, or a reload, is complete.
  notify_message &ready() noexcept { return add({"READY=1"}); }
  /// RELOADING=1 with MONOTONIC_USEC= now. Type=notify-reload (systemd 253 and later) requires the
  /// timestamp, to tell this reload from an earlier one; older managers ignore it.
  notify_message &reloading() noexcept { return reloading(detail::monotonic_usec()); }
  /// The same, with the CLOCK_MONOTONIC microseconds given by the caller.
  notify_message &reloading(std::uint64_t monotonic_usec) noexcept {
    char digits[24];
    add({"RELOADING=1"});
    return add({"MONOTONIC_USEC=", number(digits, monotonic_usec)});
  }
  /// STOPPING=1: the stop has begun (since systemd 259 this cannot be taken back).
  notify_message &stopping() noexcept { return add({"STOPPING=1"}); }
  /// WATCHDOG=1: the keep-alive for WatchdogSec=.
  notify_message &watchdog() noexcept { return add({"WATCHDOG=1"}); }
  /// STATUS=text, one line: control characters (a newline would begin a new assignment, a NUL
  /// makes systemd drop the datagram) become spaces. Shortened to fit; truncated() then says so.
  /// The text should be UTF-8: systemd ignores a status line that is not.
  notify_message &status(std::string_view text) noexcept { return add_status({text}); }
  /// EXTEND_TIMEOUT_USEC=: the service promises its next message within `window`. The manager
  /// then waits past TimeoutStartSec=/TimeoutStopSec= while such messages keep coming.
  notify_message &extend_timeout(std::chrono::microseconds window) noexcept {
    if (window.count() < 0) return fail(std::errc::invalid_argument);
    char digits[24];
    return add(
        {"EXTEND_TIMEOUT_USEC=", number(digits, static_cast<std::uint64_t>(window.count()))});
  }
  /// Any other assignment (MAINPID=, ERRNO=, X_MYAPP_...=). The name is letters, digits and '_',
  /// not starting with a digit; the value gets the same one-line treatment as STATUS=, but is
  /// never shortened.
  notify_message &field(std::string_view name, std::string_view value) noexcept {
    if (!valid_name(name)) return fail(std::errc::invalid_argument);
    const std::size_t mark = size_;
    if (!separate() || !append(name) || !append("=") || !append_line({value}, false)) {
      size_ = mark;
      return fail(std::errc::message_size);
    }
    return *this;
  }

  std::string_view text() const noexcept { return std::string_view(buffer_, size_); }
  bool empty() const noexcept { return size_ == 0; }
  /// Why a field was refused: invalid_argument or message_size; empty if all went in.
  std::error_code error() const noexcept {
    return error_ == std::errc() ? std::error_code() : std::make_error_code(error_);
  }
  /// True if STATUS= text was shortened to fit.
  bool truncated() const noexcept { return truncated_; }

private:
  friend class systemd_notifier;

  static std::string_view number(char (&digits)[24], std::uint64_t value) noexcept {
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    return std::string_view(digits, static_cast<std::size_t>(result.ptr - digits));
  }
  static bool valid_name(std::string_view name) noexcept {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name)
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
        return false;
    return true;
  }

  notify_message &fail(std::errc why) noexcept {
    if (error_ == std::errc()) error_ = why;
    return *this;
  }
  bool separate() noexcept { return size_ == 0 || append("\n"); }
  bool append(std::string_view s) noexcept {
    if (s.size() > capacity - size_) return false;
    std::memcpy(buffer_ + size_, s.data(), s.size());
    size_ += s.size();
    return true;
  }
  /// Appends the parts as one line. With `shorten`, stops at the last whole UTF-8 character that
  /// fits instead of failing.
  bool append_line(std::initializer_list<std::string_view> parts, bool shorten) noexcept {
    for (std::string_view part : parts) {
      for (std::size_t i = 0; i < part.size(); ++i) {
        if (size_ == capacity) {
          if (!shorten) return false;
          // Back up over a partial multi-byte character: a cut inside one is invalid UTF-8.
          std::size_t keep = size_;
          while (keep > 0 && (static_cast<unsigned char>(buffer_[keep - 1]) & 0xC0) == 0x80)
            --keep;
          if (keep > 0 && (static_cast<unsigned char>(buffer_[keep - 1]) & 0x80) != 0) {
            // buffer_[keep - 1] leads a sequence; keep it only if the sequence is complete.
            const unsigned char lead = static_cast<unsigned char>(buffer_[keep - 1]);
            const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (size_ - (keep - 1) < need) size_ = keep - 1;
          }
          truncated_ = true;
          return true;
        }
        const unsigned char c = static_cast<unsigned char>(part[i]);
        buffer_[size_++] = (c < 0x20 || c == 0x7F) ? ' ' : part[i];
      }
    }
    return true;
  }
  notify_message &add(std::initializer_list<std::string_view> parts) noexcept {
    const std::size_t mark = size_;
    bool ok = separate();
    for (std::string_view part : parts)
      ok = ok && append(part);
    if (!ok) {
      size_ = mark;
      return fail(std::errc::message_size);
    }
    return *this;
  }
  notify_message &add_status(std::initializer_list<std::string_view> parts) noexcept {
    const std::size_t mark = size_;
    if (!separate() || !append("STATUS=")) {
      size_ = mark;
      return fail(std::errc::message_size);
    }
    append_line(parts, true);
    return *this;
  }

  char buffer_[capacity];
  std::size_t size_ = 0;
  std::errc error_ = std::errc();
  bool truncated_ = false;
};

/// A client of the service manager's notification socket, and an adapter for the controller's
/// event hook. Movable, not copyable (it owns a socket).
class systemd_notifier {
public:
  using clock = std::chrono::steady_clock;

  struct options {
    /// How long one send may wait while the manager's receive queue is full. systemd raises that
    /// queue to 512 datagrams (net.unix.max_dgram_qlen), so waiting is rare; but the event hook
    /// runs on the loop thread, and a wedged manager must not stall a stop. Zero: never wait.
    std::chrono::milliseconds send_timeout{500};
    /// The window sent as EXTEND_TIMEOUT_USEC= on each step of a stop. Zero (the default): what
    /// the controller may still take, i.e. the stop's deadline + grace + watchdog_margin counted
    /// from the stop's start, minus the time elapsed since (at least one second).
    std::chrono::milliseconds extend_by{0};
    /// Copies of the controller's options::grace and options::watchdog_margin, for the window
    /// above; for_controller() fills them.
    std::chrono::milliseconds grace{5000};
    std::chrono::milliseconds watchdog_margin{1000};
    /// Send STATUS= lines for the stop's steps and for reloads. Off if the application owns its
    /// status line; STOPPING=, EXTEND_TIMEOUT_USEC=, RELOADING= and READY= are still sent.
    bool status_updates = true;
    /// Remove NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment once read, so a
    /// child process does not speak to the manager in the daemon's name (as sd_notify's
    /// unset_environment does). unsetenv() is not thread-safe: construct before starting threads.
    bool unset_environment = false;
    /// Test seam: the clock for EXTEND_TIMEOUT_USEC= windows. Defaults to steady_clock::now;
    /// give it the same clock as stop_controller::options::now.
    std::function<clock::time_point()> now;

    /// Options whose windows match a controller built with `controller`.
    static options for_controller(const stop_controller::options &controller) {
      options o;
      o.grace = controller.grace;
      o.watchdog_margin = controller.watchdog_margin;
      o.now = controller.now;
      return o;
    }
  };

  /// Reads $NOTIFY_SOCKET (and $WATCHDOG_USEC, $WATCHDOG_PID). Throws std::system_error for a
  /// malformed value or if the socket cannot be created.
  systemd_notifier() : systemd_notifier(options()) {}
  explicit systemd_notifier(options opts) : opts_(std::move(opts)) {
    std::string what;
    const std::error_code ec = open(what);
    if (ec) throw std::system_error(ec, what);
  }
  /// The same without exceptions: on an error the notifier stays disabled and `ec` says why.
  systemd_notifier(options opts, std::error_code &ec) noexcept : opts_(std::move(opts)) {
    std::string what;
    try {
      ec = open(what);
    } catch (...) { // only the message text allocates
      ec = std::make_error_code(std::errc::not_enough_memory);
    }
    if (ec) socket_.reset();
  }
  systemd_notifier(systemd_notifier &&) noexcept = default;
  systemd_notifier &operator=(systemd_notifier &&) noexcept = default;
  systemd_notifier(const systemd_notifier &) = delete;
  systemd_notifier &operator=(const systemd_notifier &) = delete;

  /// False when $NOTIFY_SOCKET was unset or empty: every send is then a no-op returning success.
  bool enabled() const noexcept { return static_cast<bool>(socket_); }
  /// The $NOTIFY_SOCKET value in use; empty when disabled.
  const std::string &address() const noexcept { return address_; }
  /// The keep-alive interval WatchdogSec= asked for ($WATCHDOG_USEC), when it is meant for this
  /// process ($WATCHDOG_PID unset or equal to getpid()) and the notifier is enabled. Send
  /// watchdog() at least twice per interval, as sd_watchdog_enabled(3) advises.
  std::optional<std::chrono::microseconds> watchdog_interval() const noexcept { return watchdog_; }

  std::error_code ready() noexcept { return send(notify_message().ready()); }
  std::error_code reloading() noexcept { return send(notify_message().reloading()); }
  std::error_code stopping() noexcept { return send(notify_message().stopping()); }
  std::error_code status(std::string_view text) noexcept {
    return send(notify_message().status(text));
  }
  std::error_code extend_timeout(std::chrono::microseconds window) noexcept {
    return send(notify_message().extend_timeout(window));
  }
  std::error_code watchdog() noexcept { return send(notify_message().watchdog()); }

  /// Sends several assignments as one datagram, e.g.
  /// `sd.send(gs::notify_message().ready().status("serving 10.0.0.0/24"))`.
  /// Returns the message's own error, the send's errno (EAGAIN: the manager's queue stayed full
  /// for send_timeout; ECONNREFUSED or ENOENT: nobody listens there), or success.
  std::error_code send(const notify_message &message) noexcept {
    if (!enabled()) return {};
    if (std::error_code ec = message.error()) return ec;
    if (message.empty()) return std::make_error_code(std::errc::invalid_argument);
    // MSG_NOSIGNAL: should a send ever meet a broken connection it must return EPIPE, not raise
    // SIGPIPE, whose default action would kill the daemon in the middle of its stop.
    const int flags = MSG_NOSIGNAL | (opts_.send_timeout.count() <= 0 ? MSG_DONTWAIT : 0);
    const std::string_view text = message.text();
    ssize_t n;
    do {
      n = ::sendto(socket_.get(), text.data(), text.size(), flags,
                   reinterpret_cast<const sockaddr *>(&address_storage_), address_length_);
    } while (n < 0 && errno == EINTR); // a signal before anything was queued: nothing was sent
    if (n < 0) return {errno, std::system_category()};
    return {};
  }

  /// The event-hook adapter. Never throws, never allocates; a failed send is dropped (a logging
  /// or notification failure must not disturb the stop).
  ///
  ///   stop_requested  STOPPING=1, STATUS=stopping: SIGTERM graceful, EXTEND_TIMEOUT_USEC=<window>
  ///   escalated       STATUS=stopping: SIGINT fast, EXTEND_TIMEOUT_USEC=<window>
  ///   stage_started   STATUS=stopping: stage <name>, EXTEND_TIMEOUT_USEC=<window>
  ///   stage_finished  EXTEND_TIMEOUT_USEC=<window>
  ///   deadline_passed STATUS=stopping: deadline passed, EXTEND_TIMEOUT_USEC=<window>
  ///   stopped         STATUS=stopped: exit status <n>  (or: stopped: re-raising <signal>)
  ///   reload          RELOADING=1, MONOTONIC_USEC=<now>; then, as a second datagram,
  ///                   READY=1 with STATUS=reloaded (<signal>) or STATUS=reload failed: <error>
  ///
  /// The window is re-sent on every step because EXTEND_TIMEOUT_USEC= is a promise to send again
  /// within it: a stop that makes progress keeps extending, a stop stuck in one stage for longer
  /// than the controller allows is SIGKILLed by the manager even if the controller's own watchdog
  /// could not act.
  ///
  /// The reload event arrives after the reload handler has run, so both datagrams go then: the
  /// manager's `systemctl reload` thus completes when the new configuration is in force, and
  /// MONOTONIC_USEC= is necessarily later than the manager's reload request. They are two
  /// datagrams because only recent managers read RELOADING=1 and READY=1 in one message as
  /// "reloaded at once" (src/core/service.c); sent in order, two messages mean the same to every
  /// version that knows Type=notify-reload (253 and later) and to Type=notify with ExecReload=.
  void on_event(const event &e) noexcept {
    if (!enabled()) return;
    try {
      notify_message m;
      switch (e.kind) {
      case event_kind::stop_requested:
        stop_started_ = current_time();
        stop_budget_ = e.deadline + opts_.grace + opts_.watchdog_margin;
        in_stop_ = true;
        m.stopping();
        if (opts_.status_updates)
          m.add_status({"stopping: ", cause_name(e.signal.signo), " ", to_string(e.act)});
        add_extension(m);
        break;
      case event_kind::escalated:
        if (opts_.status_updates)
          m.add_status({"stopping: ", cause_name(e.signal.signo), " ", to_string(e.act)});
        add_extension(m);
        break;
      case event_kind::stage_started:
        if (opts_.status_updates) m.add_status({"stopping: stage ", e.stage});
        add_extension(m);
        break;
      case event_kind::stage_finished:
        add_extension(m);
        break;
      case event_kind::deadline_passed:
        if (opts_.status_updates) m.add_status({"stopping: deadline passed"});
        add_extension(m);
        break;
      case event_kind::stopped:
        in_stop_ = false;
        if (opts_.status_updates) {
          char digits[24];
          if (e.status < 0)
            m.add_status({"stopped: re-raising ", signal_name(-e.status)});
          else
            m.add_status({"stopped: exit status ",
                          notify_message::number(digits, static_cast<std::uint64_t>(e.status))});
        }
        break;
      case event_kind::reload: {
        send(notify_message().reloading());
        m.ready();
        if (opts_.status_updates) {
          if (e.outcome == stage_outcome::done)
            m.add_status({"reloaded (", cause_name(e.signal.signo), ")"});
          else
            m.add_status({"reload failed: ", e.detail});
        }
        break;
      }
      default:
        return;
      }
      if (!m.empty()) send(m);
    } catch (...) {
      // Only the test clock (a std::function) can throw here; the stop goes on without us.
    }
  }

private:
  static const char *cause_name(int signo) noexcept {
    return signo > 0 ? signal_name(signo) : "requested";
  }

  clock::time_point current_time() const { return opts_.now ? opts_.now() : clock::now(); }

  void add_extension(notify_message &m) const {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    microseconds window = duration_cast<microseconds>(opts_.extend_by);
    if (opts_.extend_by.count() <= 0) {
      if (!in_stop_) return;
      window = duration_cast<microseconds>(stop_started_ + stop_budget_ - current_time());
      // Never less than a second: the manager must be given a window it can see met, and the
      // controller's watchdog ends the process on time anyway.
      if (window < std::chrono::seconds(1)) window = std::chrono::seconds(1);
    }
    m.extend_timeout(window);
  }

  /// Reads the environment and opens the socket. `what` gets the message for an exception.
  std::error_code open(std::string &what) {
    const char *value = std::getenv("NOTIFY_SOCKET");
    const char *watchdog_usec = std::getenv("WATCHDOG_USEC");
    const char *watchdog_pid = std::getenv("WATCHDOG_PID");
    const std::string notify_socket = value ? value : "";
    const std::string usec = watchdog_usec ? watchdog_usec : "";
    const std::string pid = watchdog_pid ? watchdog_pid : "";
    if (opts_.unset_environment) {
      ::unsetenv("NOTIFY_SOCKET");
      ::unsetenv("WATCHDOG_USEC");
      ::unsetenv("WATCHDOG_PID");
    }
    if (notify_socket.empty()) return {};

    const auto bad = [&](std::errc code, std::string why) {
      what = "gracefulstop: NOTIFY_SOCKET=\"" + notify_socket + "\" " + why;
      return std::make_error_code(code);
    };
    std::memset(&address_storage_, 0, sizeof address_storage_);
    address_storage_.sun_family = AF_UNIX;
    constexpr std::size_t path_room = sizeof address_storage_.sun_path;
    const std::size_t header = offsetof(sockaddr_un, sun_path);
    if (notify_socket[0] == '/') {
      // The terminating NUL must fit too: a path of exactly 108 bytes is not portable.
      if (notify_socket.size() >= path_room)
        return bad(std::errc::filename_too_long, "is longer than a unix socket path can be (" +
                                                     std::to_string(path_room - 1) + " bytes)");
      std::memcpy(address_storage_.sun_path, notify_socket.data(), notify_socket.size());
      address_length_ = static_cast<socklen_t>(header + notify_socket.size() + 1);
    } else if (notify_socket[0] == '@') {
      // Abstract namespace (Linux): sun_path starts with NUL, and the name is exactly the bytes
      // that follow, up to the given length, with no terminator.
      const std::string_view name = std::string_view(notify_socket).substr(1);
      if (name.empty()) return bad(std::errc::invalid_argument, "names an empty abstract socket");
      if (name.size() > path_room - 1)
        return bad(std::errc::filename_too_long, "is longer than an abstract socket name can be (" +
                                                     std::to_string(path_room - 1) + " bytes)");
      std::memcpy(address_storage_.sun_path + 1, name.data(), name.size());
      address_length_ = static_cast<socklen_t>(header + 1 + name.size());
    } else if (notify_socket.compare(0, 5, "vsock") == 0) {
      return bad(std::errc::address_family_not_supported,
                 "is an AF_VSOCK address, which gracefulstop::systemd_notifier does not support "
                 "(only /path and @abstract unix sockets)");
    } else {
      return bad(std::errc::invalid_argument,
                 "is neither an absolute socket path (/...) nor an abstract socket name (@...)");
    }

    if (!usec.empty()) {
      std::uint64_t interval = 0;
      if (!detail::parse_decimal(usec, interval) || interval == 0) {
        what = "gracefulstop: WATCHDOG_USEC=\"" + usec +
               "\" is not a positive whole number of microseconds";
        return std::make_error_code(std::errc::invalid_argument);
      }
      std::uint64_t owner = 0;
      if (!pid.empty() && !detail::parse_decimal(pid, owner)) {
        what = "gracefulstop: WATCHDOG_PID=\"" + pid + "\" is not a process id";
        return std::make_error_code(std::errc::invalid_argument);
      }
      // Another pid: the variables were inherited from the process the watchdog is for.
      if (pid.empty() || owner == static_cast<std::uint64_t>(::getpid()))
        watchdog_ = std::chrono::microseconds(static_cast<std::int64_t>(interval));
    }

    // SOCK_CLOEXEC: a program the daemon executes must not inherit a line to the manager.
    detail::unique_fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      const std::error_code ec(errno, std::system_category());
      what = "gracefulstop: socket(AF_UNIX, SOCK_DGRAM) for NOTIFY_SOCKET";
      return ec;
    }
    if (opts_.send_timeout.count() > 0) {
      // A blocking send waits for room in the receiver's queue; SO_SNDTIMEO bounds that wait
      // (unix datagram sends honour it, and then fail with EAGAIN).
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(opts_.send_timeout.count() / 1000);
      tv.tv_usec = static_cast<suseconds_t>((opts_.send_timeout.count() % 1000) * 1000);
      if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        const std::error_code ec(errno, std::system_category());
        what = "gracefulstop: setsockopt(SO_SNDTIMEO) for NOTIFY_SOCKET";
        return ec;
      }
    }
    address_ = notify_socket;
    socket_ = std::move(fd);
    return {};
  }

  options opts_;
  detail::unique_fd socket_;
  std::string address_;
  sockaddr_un address_storage_{};
  socklen_t address_length_ = 0;
  std::optional<std::chrono::microseconds> watchdog_;

  // The stop in progress, for EXTEND_TIMEOUT_USEC= windows. Loop thread only.
  bool in_stop_ = false;
  clock::time_point stop_started_{};
  std::chrono::milliseconds stop_budget_{0};
};

} // namespace gracefulstop

#endif // GRACEFULSTOP_SYSTEMD_NOTIFY_HPP
