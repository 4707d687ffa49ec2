// gracefulstop/stop_token.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A C++17 stop token for worker threads: poll stop_requested() or block in wait_for(). The
// controller requests the stop from the loop thread, never from the signal handler, because
// waking a condition variable takes a mutex, which a handler must not touch.
//
// Under C++20 the controller also feeds std::stop_source (see stop_controller::attach), so
// std::jthread workers stop with no extra code.
//
// Thread safety: every member may be called from any thread.
// Memory ordering: stop_requested() is an acquire load; whatever the requesting thread wrote
// before request_stop() is visible to a thread that sees true.
#ifndef GRACEFULSTOP_STOP_TOKEN_HPP
#define GRACEFULSTOP_STOP_TOKEN_HPP

#include <gracefulstop/detail/config.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

namespace gracefulstop {

namespace detail {
struct stop_state {
  std::atomic<bool> requested{false};
  std::mutex mutex;
  std::condition_variable changed;
};
} // namespace detail

class stop_token {
public:
  /// A token that can never be stopped.
  stop_token() noexcept = default;

  bool stop_possible() const noexcept { return state_ != nullptr; }
  bool stop_requested() const noexcept {
    return state_ && state_->requested.load(std::memory_order_acquire);
  }

  /// Blocks until a stop is requested. A token that can never be stopped returns at once: waiting
  /// on it is a bug, and hanging forever would hide it.
  void wait() const {
    if (!state_) return;
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->requested.load(std::memory_order_acquire); });
  }

  /// Blocks until a stop is requested or `timeout` passes; returns stop_requested().
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period> &timeout) const {
    if (!state_) return false;
    std::unique_lock<std::mutex> lock(state_->mutex);
    return state_->changed.wait_for(
        lock, timeout, [&] { return state_->requested.load(std::memory_order_acquire); });
  }

private:
  friend class stop_source;
  explicit stop_token(std::shared_ptr<detail::stop_state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::stop_state> state_;
};

class stop_source {
public:
  stop_source() : state_(std::make_shared<detail::stop_state>()) {}

  stop_token get_token() const noexcept { return stop_token(state_); }
  bool stop_requested() const noexcept { return state_->requested.load(std::memory_order_acquire); }

  /// Returns true for the call that made the request, false if it was already made.
  bool request_stop() {
    bool first;
    {
      // The store happens under the mutex so a waiter between its predicate check and its sleep
      // cannot miss the notification.
      std::lock_guard<std::mutex> lock(state_->mutex);
      first = !state_->requested.exchange(true, std::memory_order_acq_rel);
    }
    if (first) state_->changed.notify_all();
    return first;
  }

private:
  std::shared_ptr<detail::stop_state> state_;
};

} // namespace gracefulstop

#endif // GRACEFULSTOP_STOP_TOKEN_HPP
