// gracefulstop/policy.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~
// What each signal means to the application: the action, its deadline, the stages it runs, what a
// repeat of the signal does, and how the process finally exits.
#ifndef GRACEFULSTOP_POLICY_HPP
#define GRACEFULSTOP_POLICY_HPP

#include <gracefulstop/errors.hpp>
#include <gracefulstop/signal_event.hpp>

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace gracefulstop {

enum class action {
  graceful_stop,  ///< run the stages in order; cancel skippable ones if the deadline passes
  fast_stop,      ///< run only must-run stages (flush, close): a repeat of ^C
  immediate_exit, ///< run no stage: exit now by the exit rule
  reload,         ///< call the policy's handler (re-read configuration); no stop
  callback,       ///< call the policy's handler; no stop
  ignore,         ///< report the signal and do nothing else
};

inline const char *to_string(action a) noexcept {
  switch (a) {
  case action::graceful_stop:
    return "graceful";
  case action::fast_stop:
    return "fast";
  case action::immediate_exit:
    return "immediate";
  case action::reload:
    return "reload";
  case action::callback:
    return "callback";
  case action::ignore:
    return "ignore";
  }
  return "?";
}

/// True for the actions that end the process.
constexpr bool is_stop(action a) noexcept {
  return a == action::graceful_stop || a == action::fast_stop || a == action::immediate_exit;
}

/// How the process exits once the stop is over.
class exit_rule {
public:
  enum class kind {
    status,       ///< exit(status)
    conventional, ///< exit(128 + signal), what a shell reports for a signal death
    reraise,      ///< die of the signal itself, so the parent sees WIFSIGNALED
  };

  static exit_rule with_status(int status) noexcept { return exit_rule(kind::status, status); }
  static exit_rule conventional() noexcept { return exit_rule(kind::conventional, 0); }
  static exit_rule reraise() noexcept { return exit_rule(kind::reraise, 0); }

  kind what() const noexcept { return kind_; }
  int status() const noexcept { return status_; }

  /// The status used instead when a must-run stage failed or timed out: the stop did not finish
  /// its work, and a supervisor should hear so rather than see a clean exit. Default 1.
  exit_rule &on_failure(int status) noexcept {
    failure_status_ = status;
    return *this;
  }
  int failure_status() const noexcept { return failure_status_; }

private:
  exit_rule(kind k, int status) noexcept : kind_(k), status_(status) {}
  kind kind_ = kind::status;
  int status_ = 0;
  int failure_status_ = 1;
};

/// One step of escalation: the nth delivery of the signal during a stop (the one that began the
/// stop is the 1st) switches to `to`.
struct escalation {
  unsigned nth = 2;
  action to = action::fast_stop;
};

struct signal_policy {
  action what = action::graceful_stop;
  /// The whole stop's deadline, from the signal to the last stage. Skippable stages still running
  /// then are cancelled; must-run stages still run, within stop_controller::options::grace.
  std::chrono::milliseconds deadline{30000};
  /// Names of the stages this signal runs, in registration order; empty means all of them.
  std::vector<std::string> stages;
  std::vector<escalation> repeats;
  /// A repeat counts only if it comes within this time of the previous delivery; zero means any
  /// repeat during the stop counts. With a window, escalation to immediate_exit is done by the
  /// loop, not the handler (the handler does not read clocks).
  std::chrono::milliseconds repeat_window{0};
  exit_rule exit = exit_rule::with_status(0);
  /// For reload and callback. Runs on the loop thread; an exception is reported, not swallowed,
  /// and the process keeps running.
  std::function<void(const signal_event &)> handler;
  /// Install without SA_RESTART, so a blocking read/recvfrom/select in a legacy loop returns EINTR
  /// and the loop gets to look at the controller. Needs the self-pipe backend: with signalfd the
  /// signal is blocked and interrupts nothing.
  ///
  /// The window this cannot close: a signal that arrives after the loop's last dispatch() and
  /// before it enters the blocking call interrupts nothing, so the loop blocks until the next
  /// datagram or signal. A loop that cannot accept that should wait in select()/poll() on its
  /// socket *and* the controller's fd (the pipe byte is never missed), or in pselect()/ppoll().
  bool interrupt_blocking_calls = false;

  static signal_policy graceful(std::chrono::milliseconds deadline) {
    signal_policy p;
    p.what = action::graceful_stop;
    p.deadline = deadline;
    return p;
  }
  static signal_policy fast(std::chrono::milliseconds deadline) {
    signal_policy p = graceful(deadline);
    p.what = action::fast_stop;
    return p;
  }
  static signal_policy immediate() {
    signal_policy p;
    p.what = action::immediate_exit;
    p.deadline = std::chrono::milliseconds(0);
    return p;
  }
  static signal_policy reload(std::function<void(const signal_event &)> fn) {
    signal_policy p;
    p.what = action::reload;
    p.handler = std::move(fn);
    return p;
  }
  static signal_policy callback(std::function<void(const signal_event &)> fn) {
    signal_policy p;
    p.what = action::callback;
    p.handler = std::move(fn);
    return p;
  }
  static signal_policy ignore() {
    signal_policy p;
    p.what = action::ignore;
    return p;
  }

  signal_policy &on_repeat(unsigned nth, action to) {
    repeats.push_back({nth, to});
    return *this;
  }
  signal_policy &within(std::chrono::milliseconds window) {
    repeat_window = window;
    return *this;
  }
  signal_policy &run_stages(std::vector<std::string> names) {
    stages = std::move(names);
    return *this;
  }
  signal_policy &exit_with(exit_rule rule) {
    exit = rule;
    return *this;
  }
  signal_policy &without_restart() {
    interrupt_blocking_calls = true;
    return *this;
  }
};

/// Checks that `signo` is a signal a policy may name. SIGKILL and SIGSTOP cannot be caught;
/// SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS report a fault in the very code that would
/// run the stop, so returning to the loop would only fault again.
inline std::error_code check_signal(int signo) noexcept {
  if (signo <= 0 || signo >= NSIG) return make_error_code(errc::invalid_signal);
  sigset_t probe;
  sigemptyset(&probe);
  if (sigaddset(&probe, signo) != 0) return make_error_code(errc::invalid_signal);
  switch (signo) {
  case SIGKILL:
  case SIGSTOP:
  case SIGSEGV:
  case SIGBUS:
  case SIGFPE:
  case SIGILL:
  case SIGTRAP:
  case SIGSYS:
    return make_error_code(errc::forbidden_signal);
  default:
    return {};
  }
}

/// Checks a policy on its own (stage names are checked by the controller, which knows them).
inline std::error_code check_policy(const signal_policy &p) noexcept {
  if ((p.what == action::reload || p.what == action::callback) && !p.handler)
    return make_error_code(errc::invalid_policy);
  if (p.deadline.count() < 0 || p.repeat_window.count() < 0)
    return make_error_code(errc::invalid_policy);
  for (const escalation &e : p.repeats)
    if (e.nth < 2 || !is_stop(e.to)) return make_error_code(errc::invalid_policy);
  return {};
}

/// The defaults a controller starts with: SIGTERM stops gracefully within 30 s and exits 0, as a
/// supervisor expects; SIGINT stops within 5 s, a second ^C skips to the must-run stages, a third
/// exits at once, and the process dies of SIGINT so an interactive shell or a script's loop sees
/// the interrupt. SIGHUP, SIGQUIT and SIGUSR1/2 keep their dispositions until given a policy.
inline std::vector<std::pair<int, signal_policy>> default_policies() {
  using std::chrono::milliseconds;
  std::vector<std::pair<int, signal_policy>> d;
  d.emplace_back(SIGTERM, signal_policy::graceful(milliseconds(30000)));
  d.emplace_back(SIGINT, signal_policy::graceful(milliseconds(5000))
                             .on_repeat(2, action::fast_stop)
                             .on_repeat(3, action::immediate_exit)
                             .exit_with(exit_rule::reraise()));
  return d;
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_POLICY_HPP
