// gracefulstop/event.hpp
// ~~~~~~~~~~~~~~~~~~~~~~
// What the controller reports through its event hook, and a logfmt rendering of it
// (`event=stage stage=drain elapsed_ms=3 outcome=done`), one line per event.
#ifndef GRACEFULSTOP_EVENT_HPP
#define GRACEFULSTOP_EVENT_HPP

#include <gracefulstop/policy.hpp>
#include <gracefulstop/signal_event.hpp>
#include <gracefulstop/stage.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace gracefulstop {

enum class controller_state {
  idle,     ///< constructed, not installed
  running,  ///< installed, no stop requested
  stopping, ///< a stop is running its stages
  stopped,  ///< the stop is over; exit_status() is final
};

inline const char *to_string(controller_state s) noexcept {
  switch (s) {
  case controller_state::idle:
    return "idle";
  case controller_state::running:
    return "running";
  case controller_state::stopping:
    return "stopping";
  case controller_state::stopped:
    return "stopped";
  }
  return "?";
}

enum class event_kind {
  installed,        ///< detail: backend name
  uninstalled,      ///<
  signal,           ///< a signal was read (every one, before its policy acts)
  stop_requested,   ///< a stop began; act, deadline
  escalated,        ///< a repeat or a stronger signal changed the running stop; act
  stage_started,    ///< stage
  stage_finished,   ///< stage, outcome, elapsed, detail (error)
  deadline_passed,  ///< the stop's deadline passed; skippable stages are being cancelled
  reload,           ///< a reload handler ran; outcome done or failed, detail (error)
  callback,         ///< a callback handler ran; outcome done or failed, detail (error)
  ignored,          ///< a signal had no effect; detail says why
  stopped,          ///< the stop is over; status, elapsed
  safety_net,       ///< signalfd backend: a thread that did not block the signal caught it
  mask_leak,        ///< signalfd backend: threads whose mask lets a handled signal through; detail
  inherited_ignore, ///< a signal was SIG_IGN at install and is left so (nohup, background job)
};

inline const char *to_string(event_kind k) noexcept {
  switch (k) {
  case event_kind::installed:
    return "installed";
  case event_kind::uninstalled:
    return "uninstalled";
  case event_kind::signal:
    return "signal";
  case event_kind::stop_requested:
    return "stop-requested";
  case event_kind::escalated:
    return "escalated";
  case event_kind::stage_started:
    return "stage-start";
  case event_kind::stage_finished:
    return "stage";
  case event_kind::deadline_passed:
    return "deadline";
  case event_kind::reload:
    return "reload";
  case event_kind::callback:
    return "callback";
  case event_kind::ignored:
    return "ignored";
  case event_kind::stopped:
    return "stopped";
  case event_kind::safety_net:
    return "safety-net";
  case event_kind::mask_leak:
    return "mask-leak";
  case event_kind::inherited_ignore:
    return "inherited-ignore";
  }
  return "?";
}

/// One report. The string_views are valid only during the hook call.
struct event {
  event_kind kind = event_kind::signal;
  controller_state state = controller_state::idle;
  signal_event signal;                  ///< for signal-related kinds
  action act = action::ignore;          ///< stop_requested, escalated
  std::chrono::milliseconds deadline{}; ///< stop_requested
  std::string_view stage;               ///< stage_started, stage_finished
  stage_outcome outcome = stage_outcome::done;
  std::chrono::milliseconds elapsed{}; ///< stage time, or stop time for stopped
  std::string_view detail;             ///< error text or diagnostic
  int status = 0;                      ///< stopped: exit status, or -signal when re-raising
};

namespace detail {
inline void append_value(std::string &out, std::string_view v) {
  bool plain = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      plain = false;
  if (plain) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
}
inline void append_field(std::string &out, const char *key, std::string_view v) {
  out.push_back(' ');
  out.append(key);
  out.push_back('=');
  append_value(out, v);
}
inline void append_field(std::string &out, const char *key, long long v) {
  append_field(out, key, std::string_view(std::to_string(v)));
}
} // namespace detail

/// One logfmt line, without the newline.
inline std::string to_logfmt(const event &e) {
  using detail::append_field;
  std::string out = "event=";
  out.append(to_string(e.kind));
  const auto sig = [&] {
    // Signal 0 is a stop the application requested itself (stop_controller::request_stop).
    append_field(out, "signal", e.signal.signo == 0 ? "none" : signal_name(e.signal.signo));
    if (e.signal.from_process()) {
      append_field(out, "sender_pid", static_cast<long long>(e.signal.sender_pid));
      append_field(out, "sender_uid", static_cast<long long>(e.signal.sender_uid));
    }
  };
  switch (e.kind) {
  case event_kind::installed:
    append_field(out, "backend", e.detail);
    break;
  case event_kind::uninstalled:
    break;
  case event_kind::signal:
    sig();
    append_field(out, "count", static_cast<long long>(e.signal.count));
    break;
  case event_kind::stop_requested:
    sig();
    append_field(out, "action", to_string(e.act));
    append_field(out, "deadline_ms", static_cast<long long>(e.deadline.count()));
    break;
  case event_kind::escalated:
    append_field(out, "signal", signal_name(e.signal.signo));
    append_field(out, "action", to_string(e.act));
    break;
  case event_kind::stage_started:
    append_field(out, "stage", e.stage);
    break;
  case event_kind::stage_finished:
    append_field(out, "stage", e.stage);
    append_field(out, "elapsed_ms", static_cast<long long>(e.elapsed.count()));
    append_field(out, "outcome", to_string(e.outcome));
    if (!e.detail.empty()) append_field(out, "error", e.detail);
    break;
  case event_kind::deadline_passed:
    append_field(out, "elapsed_ms", static_cast<long long>(e.elapsed.count()));
    break;
  case event_kind::reload:
  case event_kind::callback:
    sig();
    append_field(out, "ok", e.outcome == stage_outcome::done ? "true" : "false");
    if (!e.detail.empty()) append_field(out, "error", e.detail);
    break;
  case event_kind::stopped:
    append_field(out, "elapsed_ms", static_cast<long long>(e.elapsed.count()));
    if (e.status < 0)
      append_field(out, "reraise", signal_name(-e.status));
    else
      append_field(out, "status", static_cast<long long>(e.status));
    break;
  case event_kind::ignored:
  case event_kind::safety_net:
  case event_kind::mask_leak:
  case event_kind::inherited_ignore:
    append_field(out, "signal", signal_name(e.signal.signo));
    if (!e.detail.empty()) append_field(out, "detail", e.detail);
    break;
  }
  return out;
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_EVENT_HPP
