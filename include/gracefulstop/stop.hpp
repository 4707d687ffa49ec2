// gracefulstop/stop.hpp
// ~~~~~~~~~~~~~~~~~~~~~
// The one include most programs need: turn SIGTERM, SIGINT and friends into event-loop
// notifications and run the application's stop stages under per-signal policies.
//
// Anatomy, from what you touch first to what you rarely need:
//   stop_controller.hpp  install, fd(), next_timeout_ms(), dispatch(), state, exit
//   stage.hpp            named stop steps, synchronous or asynchronous
//   policy.hpp           what each signal does: action, deadline, repeats, exit rule
//   event.hpp            what the controller reports, and its logfmt line
//   stop_token.hpp       stop tokens for worker threads (std::stop_token under C++20)
//   poll_loop.hpp        a tiny loop for daemons that have none
//   process.hpp          threads and child processes that behave
//   diagnostics.hpp      which threads would steal a signal
//   errors.hpp           the library's error codes
#ifndef GRACEFULSTOP_STOP_HPP
#define GRACEFULSTOP_STOP_HPP

#include <gracefulstop/diagnostics.hpp>
#include <gracefulstop/errors.hpp>
#include <gracefulstop/event.hpp>
#include <gracefulstop/policy.hpp>
#include <gracefulstop/poll_loop.hpp>
#include <gracefulstop/process.hpp>
#include <gracefulstop/signal_event.hpp>
#include <gracefulstop/stage.hpp>
#include <gracefulstop/stop_controller.hpp>
#include <gracefulstop/stop_token.hpp>
#include <gracefulstop/version.hpp>

#endif // GRACEFULSTOP_STOP_HPP
