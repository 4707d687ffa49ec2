// gracefulstop/stop_controller.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The controller: installs the handled signals, hands the loop one fd to poll, and when a signal
// arrives runs the application's stages under that signal's policy.
//
//   gracefulstop::stop_controller ctl;               // SIGTERM and SIGINT get default policies
//   ctl.add_stage({"drain", stage_kind::drain, [&](stage_context &) { server.drain(); }});
//   ctl.install();                                   // throws std::system_error
//   while (ctl.state() != controller_state::stopped) {
//     poll({ctl.fd(), POLLIN} + your fds, timeout = ctl.next_timeout_ms());
//     if (ctl.fd() was readable || ctl.next_timeout_ms() == 0)
//       ctl.dispatch();                              // non-blocking; costs nothing otherwise
//   }
//   ctl.exit_process();                              // exit status, or die of the signal
//
// Thread safety: state(), stop_requested(), get_token() and fd() may be called from any thread.
// Everything else belongs to the loop thread (the first one to call dispatch()); dispatch() from
// another thread is an error. Stage completion handles may be completed from any thread.
//
// Async-signal safety: nothing here runs in signal context. The handler (detail/handler.hpp)
// only counts and writes a byte; all decisions are made in dispatch(), on the loop thread.
//
// Memory ordering: the handler increments a per-signal counter with release semantics before it
// writes the wakeup byte; dispatch() drains the pipe first and then loads the counters with
// acquire, so every delivery that caused a wakeup is seen by that dispatch() or the next.
#ifndef GRACEFULSTOP_STOP_CONTROLLER_HPP
#define GRACEFULSTOP_STOP_CONTROLLER_HPP

#include <gracefulstop/detail/config.hpp>
#include <gracefulstop/detail/global_state.hpp>
#include <gracefulstop/detail/handler.hpp>
#include <gracefulstop/detail/self_pipe.hpp>
#include <gracefulstop/detail/signalfd.hpp>
#include <gracefulstop/detail/sys.hpp>
#include <gracefulstop/diagnostics.hpp>
#include <gracefulstop/errors.hpp>
#include <gracefulstop/event.hpp>
#include <gracefulstop/policy.hpp>
#include <gracefulstop/signal_event.hpp>
#include <gracefulstop/stage.hpp>
#include <gracefulstop/stop_token.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
#include <stop_token>
#endif

namespace gracefulstop {

enum class backend {
  automatic, ///< signalfd where it exists and no policy needs EINTR, else the self-pipe
  self_pipe, ///< any POSIX system: a handler writes a byte to a pipe
  signalfd,  ///< Linux: the signals are blocked and read from a signalfd
};

inline const char *to_string(backend b) noexcept {
  switch (b) {
  case backend::automatic:
    return "automatic";
  case backend::self_pipe:
    return "self-pipe";
  case backend::signalfd:
    return "signalfd";
  }
  return "?";
}

namespace detail {
/// Starts a thread with every signal blocked, so it never runs a handler nor steals a delivery
/// meant for the signalfd. The mask is inherited at creation, hence the block-create-restore.
template <class F>
std::thread start_thread_all_blocked(F &&fn) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t;
  try {
    t = std::thread(std::forward<F>(fn));
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

inline constexpr const char *state_env = "GRACEFULSTOP_ACTIVE_STATE";

/// The bookkeeping of one stop in progress.
struct stop_run {
  using clock = std::chrono::steady_clock;
  signal_event cause;
  action mode = action::graceful_stop;
  exit_rule exit = exit_rule::with_status(0);
  std::chrono::milliseconds window{0};
  std::vector<escalation> repeats;
  clock::time_point started, deadline, hard_end;
  std::vector<std::size_t> plan;
  std::size_t next = 0;
  bool stage_running = false;
  clock::time_point stage_started, stage_end;
  std::shared_ptr<detail::completion_state> completion;
  bool deadline_reported = false;
  bool must_run_failed = false;
  unsigned repeat_count = 1;
  clock::time_point last_delivery;
};
} // namespace detail

class stop_controller {
public:
  using clock = std::chrono::steady_clock;

  struct options {
    backend which = backend::automatic;
    /// Called on the loop thread for every event. Exceptions from it are caught and dropped
    /// (a logging failure must not stop a stop).
    std::function<void(const event &)> on_event;
    /// Start with SIGTERM and SIGINT policies (see default_policies()).
    bool default_policies = true;
    /// How long past the deadline must-run stages may still take, all together.
    std::chrono::milliseconds grace{5000};
    /// If the loop thread itself is stuck (a stage that never returns), a watchdog thread ends
    /// the process this long after deadline + grace. Zero disables the watchdog.
    std::chrono::milliseconds watchdog_margin{1000};
    /// SIGHUP and SIGINT that were SIG_IGN at install (nohup, a background job of a script) are
    /// left ignored, as POSIX shells intend.
    bool keep_inherited_ignore = true;
    /// Test seam: the clock for deadlines. Defaults to steady_clock::now.
    std::function<clock::time_point()> now;
  };

  stop_controller() : stop_controller(options()) {}
  explicit stop_controller(options opts)
      : opts_(std::move(opts)), wake_(std::make_shared<detail::wake_channel>()) {
    sigemptyset(&handled_);
    sigemptyset(&mask_before_install_);
    sigemptyset(&leaks_reported_);
    if (opts_.default_policies)
      for (auto &entry : default_policies()) {
        sigaddset(&handled_, entry.first);
        policies_[entry.first] = std::move(entry.second);
      }
  }
  stop_controller(const stop_controller &) = delete;
  stop_controller &operator=(const stop_controller &) = delete;
  ~stop_controller() { uninstall(); }

  // ---- setup -----------------------------------------------------------------------------

  /// Registers a stage; stages run in registration order.
  void add_stage(stage s) { throw_if(add_stage(std::move(s), ec_sink())); }
  std::error_code add_stage(stage s, std::error_code &ec) noexcept {
    ec.clear();
    if (state() == controller_state::stopping || state() == controller_state::stopped)
      return ec = make_error_code(errc::stage_after_stop);
    if (s.name.empty() || !s.run) return ec = std::make_error_code(std::errc::invalid_argument);
    for (const stage &existing : stages_)
      if (existing.name == s.name) return ec = make_error_code(errc::duplicate_stage);
    try {
      stages_.push_back(std::move(s));
    } catch (...) {
      ec = std::make_error_code(std::errc::not_enough_memory);
    }
    return ec;
  }

  /// Sets the policy for `signo`. Before install() only: dispositions are fixed then.
  void set_policy(int signo, signal_policy p) {
    throw_if(set_policy(signo, std::move(p), ec_sink()));
  }
  std::error_code set_policy(int signo, signal_policy p, std::error_code &ec) noexcept {
    ec = check_signal(signo);
    if (!ec) ec = check_policy(p);
    if (!ec && installed_) ec = make_error_code(errc::already_installed);
    if (!ec) {
      policies_[signo] = std::move(p);
      sigaddset(&handled_, signo);
    }
    return ec;
  }
  /// Leaves `signo` alone (e.g. drop a default policy).
  void clear_policy(int signo) noexcept {
    if (installed_ || signo <= 0 || signo >= detail::max_signal) return;
    policies_[signo].reset();
    sigdelset(&handled_, signo);
  }
  const signal_policy *policy(int signo) const noexcept {
    return (signo > 0 && signo < detail::max_signal && policies_[signo]) ? &*policies_[signo]
                                                                         : nullptr;
  }

  /// Installs the handlers (and for signalfd, blocks the signals in the calling thread: call it
  /// before starting threads, or start them with spawn_thread()). Throws std::system_error.
  void install() { throw_if(install(ec_sink())); }
  std::error_code install(std::error_code &ec) noexcept;

  /// Restores the previous dispositions and the installing thread's mask, closes the fds. Called
  /// by the destructor; call it from the thread that installed.
  void uninstall() noexcept;

  // ---- loop integration ------------------------------------------------------------------

  /// Poll this for POLLIN (epoll: EPOLLIN). -1 before install().
  int fd() const noexcept { return fd_.load(std::memory_order_relaxed); }

  /// Milliseconds until dispatch() must run again for a deadline, or -1 for "only when fd() is
  /// readable". Rounded up, so a loop that sleeps this long never wakes early for nothing.
  int next_timeout_ms() const noexcept;

  /// Reads pending signals, applies their policies, advances the stop. Never blocks.
  void dispatch() { throw_if(dispatch(ec_sink())); }
  std::error_code dispatch(std::error_code &ec) noexcept;

  /// Begins a stop as if a signal with `policy` had arrived (signal number 0). Loop thread only.
  void request_stop(signal_policy p = signal_policy::graceful(std::chrono::milliseconds(30000)));

  // ---- state -----------------------------------------------------------------------------

  controller_state state() const noexcept { return state_.load(std::memory_order_acquire); }
  /// Lock-free; true from the dispatch() that began the stop onwards.
  bool stop_requested() const noexcept { return stop_source_.stop_requested(); }
  /// Name of the stage running now, or empty. Loop thread only.
  std::string_view current_stage() const noexcept {
    return (run_ && run_->stage_running)
               ? std::string_view(stages_[run_->plan[run_->next - 1]].name)
               : std::string_view();
  }
  backend active_backend() const noexcept { return active_; }
  /// The signals this controller handles: those with a policy, less any left ignored at
  /// install() (see options::keep_inherited_ignore). Valid before install too, so threads can be
  /// started with them blocked early.
  const sigset_t &handled_signals() const noexcept { return handled_; }
  /// The installing thread's mask before install(): what a child process should start with.
  const sigset_t &mask_before_install() const noexcept { return mask_before_install_; }

  /// The status main() should return once stopped (128 + n when re-raising).
  int exit_code() const noexcept { return exit_code_; }
  /// The signal to die of, or 0 for a plain exit.
  int reraise_signal() const noexcept { return reraise_signal_; }
  /// Ends the process by the stop's exit rule: flushes stdio, uninstalls, then std::exit() or
  /// dies of the signal with its default disposition.
  [[noreturn]] void exit_process() noexcept;

  /// Worker threads poll or wait on this token; it is requested when a stop begins.
  stop_token get_token() const noexcept { return stop_source_.get_token(); }
#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
  std::stop_token get_std_token() const noexcept {
    return std_source_.get_token();
  }
  /// Requests stop on `source` when a stop begins, e.g. a std::jthread's get_stop_source().
  void attach(std::stop_source source) {
    attached_.push_back(std::move(source));
  }
#endif

private:
  static std::error_code &ec_sink() noexcept {
    thread_local std::error_code ec;
    return ec;
  }
  static void throw_if(const std::error_code &ec) {
    if (ec) throw std::system_error(ec, "gracefulstop");
  }
  clock::time_point now() const {
    return opts_.now ? opts_.now() : clock::now();
  }

  void emit(event e) noexcept {
    if (!opts_.on_event) return;
    e.state = state();
    try {
      opts_.on_event(e);
    } catch (...) {
    }
  }

  /// Reports an event about one signal (ignored, safety net, mask leak, inherited ignore).
  void emit_about(event_kind kind, const signal_event &ev, std::string_view detail) noexcept {
    event e;
    e.kind = kind;
    e.signal = ev;
    e.detail = detail;
    emit(e);
  }
  /// Counts one more delivery of the signal that began the stop and applies the escalation
  /// step for that count, if any.
  void count_repeat(const signal_event &ev) noexcept {
    run_->repeat_count += 1;
    for (const escalation &step : run_->repeats)
      if (step.nth == run_->repeat_count) escalate(ev, step.to);
  }
  std::error_code rollback(std::error_code ec, int installed_upto) noexcept;
  bool read_signals(std::error_code &ec) noexcept;
  void handle(const signal_event &ev) noexcept;
  void begin_stop(const signal_event &cause, const signal_policy &p, action mode) noexcept;
  void escalate(const signal_event &ev, action to) noexcept;
  void advance() noexcept;
  void finish_stage(stage_outcome outcome, std::string_view error) noexcept;
  void finish_stop() noexcept;
  void start_watchdog() noexcept;
  void audit_masks() noexcept;
  void stop_watchdog() noexcept;
  int handler_exit_status(int signo, const exit_rule &rule) const noexcept {
    switch (rule.what()) {
    case exit_rule::kind::status:
      return rule.status();
    case exit_rule::kind::conventional:
      return 128 + signo;
    case exit_rule::kind::reraise:
      return signo > 0 ? -1 : 0;
    }
    return 0;
  }

  options opts_;
  std::vector<stage> stages_;
  std::optional<signal_policy> policies_[detail::max_signal];
  std::uint64_t consumed_[detail::max_signal] = {};

  detail::self_pipe pipe_;
#if GRACEFULSTOP_HAS_SIGNALFD
  detail::signalfd_source signalfd_;
#endif
  backend active_ = backend::automatic;
  std::atomic<int> fd_{-1};
  bool installed_ = false;
  pid_t installed_pid_ = 0;
  sigset_t handled_;
  sigset_t mask_before_install_;
  sigset_t leaks_reported_; // each leaking signal is reported once
  int handled_list_[detail::max_signal] = {};
  int handled_count_ = 0;
  std::shared_ptr<detail::wake_channel> wake_;

  std::atomic<controller_state> state_{controller_state::idle};
  std::optional<std::thread::id> loop_thread_;
  stop_source stop_source_;
#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
  std::stop_source std_source_;
  std::vector<std::stop_source> attached_;
#endif
  std::optional<detail::stop_run> run_;
  int exit_code_ = 0;
  int reraise_signal_ = 0;

  // Scratch for dispatch(), reserved at install so a dispatch allocates nothing.
  std::vector<int> order_;
  std::vector<signal_event> batch_;

  // The watchdog waits on its own mutex and flag only; it never touches the loop's state.
  struct watchdog_state {
    std::mutex mutex;
    std::condition_variable wake;
    bool done = false;
  };
  std::shared_ptr<watchdog_state> watchdog_state_;
  // Held through a pointer so a forked child can leak it: see uninstall().
  std::unique_ptr<std::thread> watchdog_;
};

// ---- install / uninstall ---------------------------------------------------------------------

inline std::error_code stop_controller::install(std::error_code &ec) noexcept {
  ec.clear();
  if (installed_ || state() != controller_state::idle)
    return ec = make_error_code(errc::already_installed);

  bool wants_eintr = false;
  // Recomputed: a previous install may have dropped inherited-ignored signals from the set.
  sigemptyset(&handled_);
  for (int signo = 1; signo < detail::max_signal; ++signo) {
    if (!policies_[signo]) continue;
    sigaddset(&handled_, signo);
    wants_eintr = wants_eintr || policies_[signo]->interrupt_blocking_calls;
    for (const std::string &name : policies_[signo]->stages) {
      const bool known = std::any_of(stages_.begin(), stages_.end(),
                                     [&](const stage &s) { return s.name == name; });
      if (!known) return ec = make_error_code(errc::unknown_stage);
    }
  }

  active_ = opts_.which;
  if (active_ == backend::automatic)
    active_ = (GRACEFULSTOP_HAS_SIGNALFD && !wants_eintr) ? backend::signalfd : backend::self_pipe;
#if !GRACEFULSTOP_HAS_SIGNALFD
  if (active_ == backend::signalfd) return ec = make_error_code(errc::backend_unavailable);
#endif
  // A blocked signal interrupts nothing, so "interrupt blocking calls" cannot work with signalfd.
  if (active_ == backend::signalfd && wants_eintr)
    return ec = make_error_code(errc::invalid_policy);

  // One controller per process: dispositions are process-wide.
  detail::global_state &g = detail::state();
  std::uintptr_t expected = 0;
  if (!g.owner.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(this),
                                       std::memory_order_acq_rel))
    return ec = make_error_code(errc::already_active);
  // A second copy of the global state (a shared object built with hidden visibility) would have
  // its own owner flag; the environment is the one thing every copy shares.
  char marker[64];
  std::snprintf(marker, sizeof marker, "%ld:%p", static_cast<long>(::getpid()),
                static_cast<void *>(&g));
  if (const char *seen = std::getenv(detail::state_env)) {
    long pid = 0;
    void *where = nullptr;
    if (std::sscanf(seen, "%ld:%p", &pid, &where) == 2 && pid == static_cast<long>(::getpid()) &&
        where != static_cast<void *>(&g)) {
      g.owner.store(0, std::memory_order_release);
      return ec = make_error_code(errc::second_copy);
    }
  }

  try {
    order_.reserve(detail::max_signal);
    batch_.reserve(detail::max_signal);
  } catch (...) {
    g.owner.store(0, std::memory_order_release);
    return ec = std::make_error_code(std::errc::not_enough_memory);
  }

  if ((ec = pipe_.open())) return ec = rollback(ec, 0);
#if GRACEFULSTOP_HAS_SIGNALFD
  if (active_ == backend::signalfd && (ec = signalfd_.open(handled_, pipe_.read_fd())))
    return ec = rollback(ec, 0);
#endif
  {
    std::lock_guard<std::mutex> lock(wake_->mutex);
    wake_->fd = pipe_.write_fd();
  }
  // Published before any handler can run, so the first delivery already has a pipe to write to.
  g.wake_fd.store(pipe_.write_fd(), std::memory_order_release);
  for (int signo = 1; signo < detail::max_signal; ++signo)
    consumed_[signo] = g.slots[signo].deliveries.load(std::memory_order_acquire);

  // The handler goes in first, then the mask: a signal in between is caught by the handler,
  // never by the default disposition.
  for (int signo = 1; signo < detail::max_signal; ++signo) {
    if (!policies_[signo]) continue;
    struct sigaction previous {};
    if (detail::sys().sigaction(signo, nullptr, &previous) != 0)
      return ec = rollback({errno, std::system_category()}, signo);
    if (opts_.keep_inherited_ignore && previous.sa_handler == SIG_IGN &&
        (signo == SIGHUP || signo == SIGINT)) {
      sigdelset(&handled_, signo);
      signal_event ev;
      ev.signo = signo;
      emit_about(event_kind::inherited_ignore, ev,
                 "SIG_IGN at start is kept (keep_inherited_ignore)");
      continue;
    }
    struct sigaction act {};
    act.sa_sigaction = &gracefulstop_signal_handler;
    // Full mask: the handler never interrupts itself or another of ours, so its few steps stay in
    // order. SA_RESTART unless the policy wants blocking calls to return EINTR.
    sigfillset(&act.sa_mask);
    act.sa_flags = SA_SIGINFO | (policies_[signo]->interrupt_blocking_calls ? 0 : SA_RESTART);
    g.previous[signo] = previous;
    g.slots[signo].hard_exit_at.store(0, std::memory_order_relaxed);
    g.handled[signo].store(true, std::memory_order_relaxed);
    if (detail::sys().sigaction(signo, &act, nullptr) != 0) {
      g.handled[signo].store(false, std::memory_order_relaxed);
      return ec = rollback({errno, std::system_category()}, signo);
    }
  }

  sigemptyset(&g.blocked_by_us);
  if (detail::sys().pthread_sigmask(SIG_SETMASK, nullptr, &mask_before_install_) != 0)
    return ec = rollback({errno, std::system_category()}, detail::max_signal);
  if (active_ == backend::signalfd) {
    for (int signo = 1; signo < detail::max_signal; ++signo)
      if (sigismember(&handled_, signo) == 1 && sigismember(&mask_before_install_, signo) == 0)
        sigaddset(&g.blocked_by_us, signo);
    if (int rc = detail::sys().pthread_sigmask(SIG_BLOCK, &handled_, nullptr); rc != 0)
      return ec = rollback({rc, std::system_category()}, detail::max_signal);
  }

  // Fork hygiene: registered once per process (atfork handlers cannot be removed); it does
  // nothing unless a controller is installed.
  if (!g.atfork_registered.exchange(true))
    ::pthread_atfork(nullptr, nullptr, &gracefulstop_atfork_child);
  g.child_close_fds[0].store(pipe_.read_fd());
  g.child_close_fds[1].store(pipe_.write_fd());
#if GRACEFULSTOP_HAS_SIGNALFD
  g.child_close_fds[2].store(signalfd_.signal_fd());
  g.child_close_fds[3].store(signalfd_.poll_fd());
  fd_.store(active_ == backend::signalfd ? signalfd_.poll_fd() : pipe_.read_fd(),
            std::memory_order_relaxed);
#else
  fd_.store(pipe_.read_fd(), std::memory_order_relaxed);
#endif
  ::setenv(detail::state_env, marker, 1);

  // The handled signals as a list, so dispatch() visits only these (not all 64 with sigismember).
  handled_count_ = 0;
  for (int signo = 1; signo < detail::max_signal; ++signo)
    if (sigismember(&handled_, signo) == 1) handled_list_[handled_count_++] = signo;
  installed_ = true;
  installed_pid_ = ::getpid();
  state_.store(controller_state::running, std::memory_order_release);
  event e;
  e.kind = event_kind::installed;
  e.detail = to_string(active_);
  emit(e);

  audit_masks();
  return ec;
}

inline void stop_controller::audit_masks() noexcept {
  if (active_ != backend::signalfd) return;
  // Name the threads that would take a signal instead of the signalfd. The installing thread
  // blocks them; any other thread started earlier is reported. Run at install and again at the
  // first dispatch: glibc starts a new thread with every signal blocked until its start-up code
  // sets the creator's mask, so a thread created just before install() can look safe then.
  try {
    for (const thread_mask_leak &leak : audit_thread_masks(handled_)) {
      std::string tids = "tid=" + std::to_string(leak.tid) + " does not block it";
      for (int signo : leak.signals) {
        if (sigismember(&leaks_reported_, signo) == 1) continue;
        sigaddset(&leaks_reported_, signo);
        signal_event ev;
        ev.signo = signo;
        emit_about(event_kind::mask_leak, ev, tids);
      }
    }
  } catch (...) {
  }
}

inline std::error_code stop_controller::rollback(std::error_code ec, int installed_upto) noexcept {
  detail::global_state &g = detail::state();
  for (int signo = 1; signo < installed_upto && signo < detail::max_signal; ++signo) {
    if (!g.handled[signo].load(std::memory_order_relaxed)) continue;
    ::sigaction(signo, &g.previous[signo], nullptr);
    g.handled[signo].store(false, std::memory_order_relaxed);
  }
  g.wake_fd.store(-1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(wake_->mutex);
    wake_->fd = -1;
  }
  pipe_ = detail::self_pipe();
#if GRACEFULSTOP_HAS_SIGNALFD
  signalfd_ = detail::signalfd_source();
#endif
  g.owner.store(0, std::memory_order_release);
  return ec;
}

inline void stop_controller::uninstall() noexcept {
  if (installed_ && ::getpid() != installed_pid_) {
    // A forked child. Threads do not survive fork, so the watchdog is not running here and its
    // mutex may have been held at the moment of the fork: neither join nor lock, just let go.
    // The handle names a thread of the parent; joining or detaching it here is undefined (TSan
    // aborts on it). Leak the handle on purpose: a few bytes, once, in a child.
    static_cast<void>(watchdog_.release());
    watchdog_state_.reset();
    installed_ = false;
    // The fork hook already restored everything and closed these descriptor numbers, which may
    // belong to something else by now.
    pipe_.abandon();
#if GRACEFULSTOP_HAS_SIGNALFD
    signalfd_.abandon();
#endif
    fd_.store(-1);
    return;
  }
  stop_watchdog();
  if (!installed_) return;
  installed_ = false;
  detail::global_state &g = detail::state();
  for (int signo = 1; signo < detail::max_signal; ++signo) {
    if (!g.handled[signo].load(std::memory_order_relaxed)) continue;
    g.slots[signo].hard_exit_at.store(0, std::memory_order_relaxed);
    ::sigaction(signo, &g.previous[signo], nullptr);
    g.handled[signo].store(false, std::memory_order_relaxed);
  }
  // Unblocking lets a signal still queued on the signalfd take its restored disposition, which
  // is what "uninstalled" means.
  ::pthread_sigmask(SIG_UNBLOCK, &g.blocked_by_us, nullptr);
  sigemptyset(&g.blocked_by_us);
  g.wake_fd.store(-1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(wake_->mutex);
    wake_->fd = -1;
  }
  for (auto &slot : g.child_close_fds)
    slot.store(-1);
  fd_.store(-1);
  pipe_ = detail::self_pipe();
#if GRACEFULSTOP_HAS_SIGNALFD
  signalfd_ = detail::signalfd_source();
#endif
  ::unsetenv(detail::state_env);
  g.owner.store(0, std::memory_order_release);
  if (state() == controller_state::running)
    state_.store(controller_state::idle, std::memory_order_release);
  event e;
  e.kind = event_kind::uninstalled;
  emit(e);
}

// ---- dispatch ----------------------------------------------------------------------------------

inline int stop_controller::next_timeout_ms() const noexcept {
  if (!run_ || state() != controller_state::stopping) return -1;
  clock::time_point next = run_->hard_end;
  if (!run_->deadline_reported) next = std::min(next, run_->deadline);
  if (run_->stage_running) next = std::min(next, run_->stage_end);
  const auto left = next - now();
  if (left <= clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

inline bool stop_controller::read_signals(std::error_code &ec) noexcept {
  detail::global_state &g = detail::state();
  order_.clear();
  batch_.clear();
  bool seen[detail::max_signal] = {};
  // Drain first, then look at the counters: a delivery after the drain leaves a byte behind, so
  // it is picked up by the next wakeup rather than lost between the two steps. With signalfd the
  // pipe carries only safety-net and completion wakeups: read it only when one was written.
  const bool drain =
      active_ == backend::self_pipe || g.wake_pending.exchange(false, std::memory_order_acq_rel);
  if (drain && !pipe_.drain(order_, seen)) {
    ec.assign(errno, std::system_category());
    return false;
  }
  const clock::time_point received = now();
  auto entry_for = [&](int signo) -> signal_event & {
    for (signal_event &ev : batch_)
      if (ev.signo == signo) return ev;
    signal_event ev;
    ev.signo = signo;
    ev.count = 0;
    ev.received = received;
    batch_.push_back(ev); // capacity reserved at install: no allocation
    return batch_.back();
  };

#if GRACEFULSTOP_HAS_SIGNALFD
  if (active_ == backend::signalfd) {
    signalfd_siginfo records[16];
    for (;;) {
      const int n = signalfd_.read(records, 16);
      if (n < 0) {
        ec.assign(errno, std::system_category());
        return false;
      }
      for (int i = 0; i < n; ++i) {
        const int signo = static_cast<int>(records[i].ssi_signo);
        if (signo <= 0 || signo >= detail::max_signal) continue;
        signal_event &ev = entry_for(signo);
        ev.count += 1;
        ev.sender_pid = static_cast<pid_t>(records[i].ssi_pid);
        ev.sender_uid = static_cast<uid_t>(records[i].ssi_uid);
        ev.code = records[i].ssi_code;
      }
      if (n < 16) break;
    }
  }
#endif
  // Counters: every handler delivery (all of them with the self-pipe; the safety net's with
  // signalfd), in arrival order where the pipe told us, then any whose byte was dropped.
  auto take_counter = [&](int signo) {
    const std::uint64_t total = g.slots[signo].deliveries.load(std::memory_order_acquire);
    const std::uint64_t fresh = total - consumed_[signo];
    if (fresh == 0) return;
    consumed_[signo] = total;
    signal_event &ev = entry_for(signo);
    ev.count += fresh;
    ev.sender_pid = static_cast<pid_t>(g.slots[signo].last_pid.load(std::memory_order_relaxed));
    ev.sender_uid = static_cast<uid_t>(g.slots[signo].last_uid.load(std::memory_order_relaxed));
    ev.code = g.slots[signo].last_code.load(std::memory_order_relaxed);
    if (active_ == backend::signalfd)
      emit_about(event_kind::safety_net, ev,
                 "delivered to a thread that does not block it; caught by the handler");
  };
  for (int signo : order_)
    take_counter(signo);
  for (int i = 0; i < handled_count_; ++i)
    if (!seen[handled_list_[i]]) take_counter(handled_list_[i]);
  return true;
}

inline std::error_code stop_controller::dispatch(std::error_code &ec) noexcept {
  ec.clear();
  if (!installed_) return ec = make_error_code(errc::not_installed);
  const std::thread::id self = std::this_thread::get_id();
  if (!loop_thread_) {
    loop_thread_ = self;
    audit_masks();
  }
  if (*loop_thread_ != self) return ec = make_error_code(errc::wrong_thread);

  if (!read_signals(ec)) return ec;
  for (const signal_event &ev : batch_) {
    event e;
    e.kind = event_kind::signal;
    e.signal = ev;
    emit(e);
    handle(ev);
  }
  advance();
  return ec;
}

inline void stop_controller::request_stop(signal_policy p) {
  if (state() != controller_state::running) return;
  signal_event cause;
  cause.received = now();
  cause.count = 1;
  begin_stop(cause, p, p.what == action::fast_stop ? action::fast_stop : action::graceful_stop);
  advance();
}

// ---- policies ------------------------------------------------------------------------------

inline void stop_controller::handle(const signal_event &ev) noexcept {
  const signal_policy *p = policy(ev.signo);
  if (p == nullptr) return;
  const controller_state s = state();
  if (s == controller_state::running) {
    if (is_stop(p->what)) {
      begin_stop(ev, *p, p->what);
      // Deliveries counted into this one are repeats of it: with the self-pipe, two ^C before the
      // loop woke are a first and a second ^C. (With signalfd the kernel itself merges a second
      // standard signal that arrives while the first is still queued, so only real-time signals
      // are counted one by one there; see README, Limitations.)
      for (std::uint64_t i = 1; i < ev.count && state() == controller_state::stopping; ++i)
        count_repeat(ev);
      return;
    }
    if (p->what == action::reload || p->what == action::callback) {
      event e;
      e.kind = p->what == action::reload ? event_kind::reload : event_kind::callback;
      e.signal = ev;
      std::string error;
      try {
        p->handler(ev);
      } catch (const std::exception &ex) {
        error = ex.what();
        if (error.empty()) error = "exception";
      } catch (...) {
        error = "unknown exception";
      }
      e.outcome = error.empty() ? stage_outcome::done : stage_outcome::failed;
      e.detail = error;
      emit(e);
      return;
    }
    emit_about(event_kind::ignored, ev, "policy is ignore");
    return;
  }
  if (s == controller_state::stopping && run_) {
    if (ev.signo == run_->cause.signo) {
      for (std::uint64_t i = 0; i < ev.count && state() == controller_state::stopping; ++i) {
        const bool in_window =
            run_->window.count() == 0 || ev.received - run_->last_delivery <= run_->window;
        if (!in_window) run_->repeat_count = 0; // a slow repeat starts the count again
        run_->last_delivery = ev.received;
        count_repeat(ev);
      }
      return;
    }
    // Another signal during a stop: a stronger action escalates; anything else waits.
    const auto strength = [](action a) {
      return a == action::immediate_exit ? 3 : a == action::fast_stop ? 2 : 1;
    };
    if (is_stop(p->what) && strength(p->what) > strength(run_->mode)) {
      escalate(ev, p->what);
      return;
    }
  }
  emit_about(event_kind::ignored, ev,
             s == controller_state::stopped ? "already stopped" : "stop in progress");
}

inline void stop_controller::begin_stop(const signal_event &cause, const signal_policy &p,
                                        action mode) noexcept {
  try {
    run_.emplace();
    run_->plan.reserve(stages_.size());
    for (std::size_t i = 0; i < stages_.size(); ++i)
      if (p.stages.empty() ||
          std::find(p.stages.begin(), p.stages.end(), stages_[i].name) != p.stages.end())
        run_->plan.push_back(i);
    run_->repeats = p.repeats;
  } catch (...) {
    // Out of memory while starting the stop: run no stages rather than none of the stop.
    if (run_) run_->plan.clear();
  }
  run_->cause = cause;
  run_->mode = mode == action::immediate_exit ? action::fast_stop : mode;
  run_->exit = p.exit;
  run_->window = p.repeat_window;
  run_->started = now();
  run_->deadline = run_->started + p.deadline;
  run_->hard_end = run_->deadline + opts_.grace;
  run_->last_delivery = cause.received;
  state_.store(controller_state::stopping, std::memory_order_release);

  event e;
  e.kind = event_kind::stop_requested;
  e.signal = cause;
  e.act = mode;
  e.deadline = p.deadline;
  emit(e);

  try {
    stop_source_.request_stop();
#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
    std_source_.request_stop();
    for (std::stop_source &s : attached_)
      s.request_stop();
#endif
  } catch (...) {
  }

  // Handler-side escalation: if the Nth delivery must end the process, the handler does it,
  // because a loop stuck inside a stage would never see the repeat. Not with a repeat window:
  // the handler does not read clocks.
  if (cause.signo > 0 && p.repeat_window.count() == 0) {
    for (const escalation &step : p.repeats) {
      if (step.to != action::immediate_exit) continue;
      detail::signal_slot &slot = detail::state().slots[cause.signo];
      // consumed_ counts every delivery read so far, the cause's coalesced ones included.
      const std::uint64_t first = consumed_[cause.signo] - (cause.count - 1);
      if (active_ == backend::self_pipe) {
        slot.hard_exit_status.store(handler_exit_status(cause.signo, p.exit),
                                    std::memory_order_relaxed);
        slot.hard_exit_at.store(first + step.nth - 1, std::memory_order_release);
      }
    }
  }

  start_watchdog();
  if (mode == action::immediate_exit) escalate(cause, action::immediate_exit);
}

inline void stop_controller::escalate(const signal_event &ev, action to) noexcept {
  if (!run_) return;
  event e;
  e.kind = event_kind::escalated;
  e.signal = ev;
  e.act = to;
  emit(e);
  if (to == action::immediate_exit) {
    // Nothing more runs: cancel what is pending and report the exit now.
    if (run_->stage_running) finish_stage(stage_outcome::cancelled, "immediate exit");
    run_->next = run_->plan.size();
    finish_stop();
    exit_process();
  }
  if (to == action::fast_stop && run_->mode == action::graceful_stop) {
    run_->mode = action::fast_stop;
    if (run_->stage_running && !stages_[run_->plan[run_->next - 1]].must_run)
      finish_stage(stage_outcome::cancelled, "fast stop");
  }
}

// ---- stages --------------------------------------------------------------------------------

inline void stop_controller::advance() noexcept {
  while (run_ && state() == controller_state::stopping) {
    clock::time_point t = now();
    if (run_->stage_running) {
      const stage &current = stages_[run_->plan[run_->next - 1]];
      const int status = run_->completion->status.load(std::memory_order_acquire);
      if (status == detail::completion_state::done) {
        finish_stage(stage_outcome::done, {});
      } else if (status == detail::completion_state::failed) {
        finish_stage(stage_outcome::failed, run_->completion->error);
      } else if (t >= run_->stage_end || (!current.must_run && t >= run_->deadline)) {
        finish_stage(stage_outcome::timed_out, {});
      } else {
        if (!run_->deadline_reported && t >= run_->deadline) {
          run_->deadline_reported = true;
          event e;
          e.kind = event_kind::deadline_passed;
          e.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(t - run_->started);
          emit(e);
        }
        return; // still waiting on an asynchronous stage
      }
    }
    if (!run_->deadline_reported && t >= run_->deadline) {
      run_->deadline_reported = true;
      event e;
      e.kind = event_kind::deadline_passed;
      e.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(t - run_->started);
      emit(e);
    }
    if (run_->next >= run_->plan.size()) {
      finish_stop();
      return;
    }
    const stage &s = stages_[run_->plan[run_->next++]];
    const bool late = t >= run_->deadline;
    if ((!s.must_run && (late || run_->mode == action::fast_stop)) || t >= run_->hard_end) {
      if (s.must_run) run_->must_run_failed = true;
      event e;
      e.kind = event_kind::stage_finished;
      e.stage = s.name;
      e.outcome = stage_outcome::skipped;
      emit(e);
      continue;
    }
    run_->stage_started = t;
    run_->stage_end = s.must_run ? run_->hard_end : run_->deadline;
    if (s.budget.count() > 0) run_->stage_end = std::min(run_->stage_end, t + s.budget);
    event started;
    started.kind = event_kind::stage_started;
    started.stage = s.name;
    emit(started);

    stage_status result = stage_status::done;
    std::string error;
    bool deferred = false;
    try {
      run_->completion = std::make_shared<detail::completion_state>();
      run_->completion->wake = wake_;
      stage_context ctx(run_->cause, run_->mode, run_->stage_end, run_->completion);
      run_->stage_running = true;
      result = s.run(ctx);
      deferred = ctx.deferred();
    } catch (const std::exception &ex) {
      error = ex.what();
      if (error.empty()) error = "exception";
    } catch (...) {
      error = "unknown exception";
    }
    if (!error.empty()) {
      finish_stage(stage_outcome::failed, error);
    } else if (result == stage_status::done) {
      finish_stage(stage_outcome::done, {});
    } else if (!deferred) {
      finish_stage(stage_outcome::failed, "returned pending without calling defer()");
    }
    // else: pending; the loop above checks its completion and time on the next pass
  }
}

inline void stop_controller::finish_stage(stage_outcome outcome, std::string_view error) noexcept {
  if (!run_ || !run_->stage_running) return;
  run_->stage_running = false;
  const stage &s = stages_[run_->plan[run_->next - 1]];
  if (outcome != stage_outcome::done && s.must_run) run_->must_run_failed = true;
  if (outcome == stage_outcome::timed_out || outcome == stage_outcome::cancelled) {
    try {
      run_->completion->cancel.request_stop();
    } catch (...) {
    }
  }
  event e;
  e.kind = event_kind::stage_finished;
  e.stage = s.name;
  e.outcome = outcome;
  e.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now() - run_->stage_started);
  e.detail = error;
  emit(e);
}

inline void stop_controller::finish_stop() noexcept {
  const int signo = run_->cause.signo;
  reraise_signal_ = 0;
  if (run_->must_run_failed) {
    exit_code_ = run_->exit.failure_status();
  } else {
    switch (run_->exit.what()) {
    case exit_rule::kind::status:
      exit_code_ = run_->exit.status();
      break;
    case exit_rule::kind::conventional:
      exit_code_ = signo > 0 ? 128 + signo : 0;
      break;
    case exit_rule::kind::reraise:
      exit_code_ = signo > 0 ? 128 + signo : 0;
      reraise_signal_ = signo;
      break;
    }
  }
  state_.store(controller_state::stopped, std::memory_order_release);
  stop_watchdog();
  event e;
  e.kind = event_kind::stopped;
  e.signal = run_->cause;
  e.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now() - run_->started);
  e.status = reraise_signal_ ? -reraise_signal_ : exit_code_;
  emit(e);
}

inline void stop_controller::exit_process() noexcept {
  std::fflush(nullptr);
  const int signo = reraise_signal_;
  const int code = exit_code_;
  // The application's last log line is its own: leaving no hook to report `uninstalled` after it.
  opts_.on_event = nullptr;
  uninstall();
  if (signo > 0) detail::hard_exit(signo, -1);
  std::exit(code);
}

// ---- watchdog ------------------------------------------------------------------------------

inline void stop_controller::start_watchdog() noexcept {
  if (opts_.watchdog_margin.count() <= 0 || watchdog_ || !run_) return;
  try {
    // The watchdog measures real time even under a test clock: it guards against a real hang.
    const auto fire_at = clock::now() + (run_->hard_end - now()) + opts_.watchdog_margin;
    const int signo = run_->cause.signo;
    const int status = run_->exit.what() == exit_rule::kind::reraise && signo > 0
                           ? -1
                           : run_->exit.failure_status();
    watchdog_state_ = std::make_shared<watchdog_state>();
    watchdog_ = std::make_unique<std::thread>(
        detail::start_thread_all_blocked([w = watchdog_state_, fire_at, signo, status] {
          std::unique_lock<std::mutex> lock(w->mutex);
          if (w->wake.wait_until(lock, fire_at, [&] { return w->done; })) return;
          static const char message[] =
              "event=watchdog detail=\"stop overran its deadline and grace; exiting\"\n";
          [[maybe_unused]] const ssize_t ignored =
              ::write(STDERR_FILENO, message, sizeof message - 1);
          detail::hard_exit(signo > 0 ? signo : SIGTERM, status);
        }));
  } catch (...) {
    // No thread: the stop still runs; only the guard against a stuck loop is missing.
  }
}

inline void stop_controller::stop_watchdog() noexcept {
  if (!watchdog_) return;
  {
    std::lock_guard<std::mutex> lock(watchdog_state_->mutex);
    watchdog_state_->done = true;
  }
  watchdog_state_->wake.notify_all();
  if (watchdog_->joinable()) watchdog_->join(); // the loop thread: never the watchdog itself
  watchdog_.reset();
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_STOP_CONTROLLER_HPP
