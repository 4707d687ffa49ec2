// gracefulstop/stage.hpp
// ~~~~~~~~~~~~~~~~~~~~~~
// A stage is one named step of the stop (stop accepting, drain, flush, close), registered by the
// application and run in registration order on the loop thread. A stage is synchronous (returns
// stage_status::done) or asynchronous (calls ctx.defer(), returns stage_status::pending, and later
// completes the handle, from any thread).
#ifndef GRACEFULSTOP_STAGE_HPP
#define GRACEFULSTOP_STAGE_HPP

#include <gracefulstop/detail/global_state.hpp>
#include <gracefulstop/policy.hpp>
#include <gracefulstop/signal_event.hpp>
#include <gracefulstop/stop_token.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <utility>

namespace gracefulstop {

enum class stage_kind { stop_accepting, drain, flush, close, custom };

inline const char *to_string(stage_kind k) noexcept {
  switch (k) {
  case stage_kind::stop_accepting:
    return "stop-accepting";
  case stage_kind::drain:
    return "drain";
  case stage_kind::flush:
    return "flush";
  case stage_kind::close:
    return "close";
  case stage_kind::custom:
    return "custom";
  }
  return "?";
}

/// What a stage function returns.
enum class stage_status { done, pending };

/// How a stage ended, as reported through the event hook.
enum class stage_outcome {
  done,      ///< finished in time
  timed_out, ///< its budget or the stop's deadline ran out first
  failed,    ///< threw, or its completion handle reported failure
  cancelled, ///< a fast stop (repeat signal) cancelled it while it ran
  skipped,   ///< never started: skippable and the deadline had passed, or a fast stop
};

inline const char *to_string(stage_outcome o) noexcept {
  switch (o) {
  case stage_outcome::done:
    return "done";
  case stage_outcome::timed_out:
    return "timed_out";
  case stage_outcome::failed:
    return "failed";
  case stage_outcome::cancelled:
    return "cancelled";
  case stage_outcome::skipped:
    return "skipped";
  }
  return "?";
}

namespace detail {

/// Lets a completion wake the loop from any thread, and makes that a no-op once the controller is
/// gone (the mutex orders the write against the controller closing the descriptor).
struct wake_channel {
  std::mutex mutex;
  int fd = -1;
  void poke() noexcept {
    std::lock_guard<std::mutex> lock(mutex);
    if (fd >= 0) {
      // Byte 0 is "no signal, just wake up". A full pipe is already readable: EAGAIN is fine.
      const unsigned char zero = 0;
      [[maybe_unused]] const ssize_t ignored = ::write(fd, &zero, 1);
      state().wake_pending.store(true, std::memory_order_release); // after the write: see there
    }
  }
};

struct completion_state {
  enum : int { pending = 0, writing = 1, done = 2, failed = 3 };
  std::atomic<int> status{pending};
  std::string error; // written before status becomes `failed`, read after it is seen
  std::shared_ptr<wake_channel> wake;
  stop_source cancel;
};

} // namespace detail

/// Completes an asynchronous stage. Copyable; completing twice keeps the first result. May be
/// used from any thread (not from a signal handler: it takes a mutex to wake the loop).
class stage_completion {
public:
  stage_completion() = default;

  void done() noexcept { finish(detail::completion_state::done, {}); }
  void fail(std::string why) noexcept { finish(detail::completion_state::failed, std::move(why)); }

  /// Requested when the controller gives up on the stage (timed out or cancelled by a fast stop):
  /// the work behind the handle should stop; completing it afterwards is harmless.
  stop_token cancel_token() const noexcept {
    return state_ ? state_->cancel.get_token() : stop_token();
  }
  bool cancelled() const noexcept { return state_ && state_->cancel.stop_requested(); }

private:
  friend class stage_context;
  explicit stage_completion(std::shared_ptr<detail::completion_state> s) : state_(std::move(s)) {}

  void finish(int status, std::string why) noexcept {
    if (!state_) return;
    int expected = detail::completion_state::pending;
    if (!state_->status.compare_exchange_strong(expected, detail::completion_state::writing,
                                                std::memory_order_acq_rel))
      return;
    state_->error = std::move(why);
    state_->status.store(status, std::memory_order_release);
    if (state_->wake) state_->wake->poke();
  }

  std::shared_ptr<detail::completion_state> state_;
};

/// What a stage function is given.
class stage_context {
public:
  const signal_event &cause() const noexcept { return cause_; }
  /// graceful_stop or fast_stop: a stage may do less in a fast stop.
  action mode() const noexcept { return mode_; }
  /// When the controller stops waiting for this stage.
  std::chrono::steady_clock::time_point deadline() const noexcept { return deadline_; }
  /// Makes the stage asynchronous: return stage_status::pending and complete the handle later.
  stage_completion defer() {
    deferred_ = true;
    return stage_completion(state_);
  }

  // Constructed by the controller only.
  stage_context(const signal_event &cause, action mode,
                std::chrono::steady_clock::time_point deadline,
                std::shared_ptr<detail::completion_state> state)
      : cause_(cause), mode_(mode), deadline_(deadline), state_(std::move(state)) {}
  bool deferred() const noexcept { return deferred_; }

private:
  const signal_event &cause_;
  action mode_;
  std::chrono::steady_clock::time_point deadline_;
  std::shared_ptr<detail::completion_state> state_;
  bool deferred_ = false;
};

struct stage {
  std::string name;
  stage_kind kind = stage_kind::custom;
  std::function<stage_status(stage_context &)> run;
  /// The stage's own time limit; zero means "until the stop's deadline".
  std::chrono::milliseconds budget{0};
  /// Must-run stages run even after the deadline and in a fast stop; skippable ones are cancelled
  /// or skipped then. Defaults: drain and custom are skippable; stop-accepting, flush and close
  /// must run, since skipping them loses data or leaves the listener open.
  bool must_run = true;

  stage() = default;

  /// `fn` returns stage_status, or void for a synchronous stage.
  template <class F>
  stage(std::string stage_name, stage_kind stage_kind_, F &&fn,
        std::chrono::milliseconds stage_budget = std::chrono::milliseconds(0))
      : name(std::move(stage_name)), kind(stage_kind_), run(wrap(std::forward<F>(fn))),
        budget(stage_budget), must_run(kind != stage_kind::drain && kind != stage_kind::custom) {}

  stage &skippable(bool yes = true) {
    must_run = !yes;
    return *this;
  }

private:
  template <class F>
  static std::function<stage_status(stage_context &)> wrap(F &&fn) {
    if constexpr (std::is_void_v<std::invoke_result_t<F &, stage_context &>>) {
      return [f = std::forward<F>(fn)](stage_context &ctx) mutable {
        f(ctx);
        return stage_status::done;
      };
    } else {
      return std::function<stage_status(stage_context &)>(std::forward<F>(fn));
    }
  }
};

} // namespace gracefulstop

#endif // GRACEFULSTOP_STAGE_HPP
