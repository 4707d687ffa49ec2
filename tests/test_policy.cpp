// Policies and bad input: every misuse gets its own specific error; escalation on repeats.
#include "support.hpp"

#include <thread>

using namespace std::chrono_literals;
using test::event_log;

namespace {
template <class F>
std::error_code error_of(F &&f) {
  try {
    f();
  } catch (const std::system_error &e) {
    return e.code();
  }
  return {};
}
} // namespace

TEST_CASE("policies for SIGKILL, SIGSTOP and fault signals are rejected with forbidden_signal",
          "[policy][errors]") {
  gs::stop_controller ctl;
  for (int signo : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) {
    const std::error_code ec =
        error_of([&] { ctl.set_policy(signo, gs::signal_policy::graceful(1s)); });
    INFO(gs::signal_name(signo));
    CHECK(ec == gs::errc::forbidden_signal);
    CHECK(ec == std::errc::invalid_argument);
  }
  const std::error_code ec =
      error_of([&] { ctl.set_policy(SIGKILL, gs::signal_policy::graceful(1s)); });
  CHECK(ec.message().find("SIGKILL") != std::string::npos);
}

TEST_CASE("invalid signal numbers are rejected with invalid_signal", "[policy][errors]") {
  gs::stop_controller ctl;
  for (int signo : {0, -1, NSIG, 1000}) {
    std::error_code ec;
    ctl.set_policy(signo, gs::signal_policy::graceful(1s), ec);
    CHECK(ec == gs::errc::invalid_signal);
  }
}

TEST_CASE("self-contradicting policies are rejected with invalid_policy", "[policy][errors]") {
  gs::stop_controller ctl;
  gs::signal_policy no_handler;
  no_handler.what = gs::action::reload;
  CHECK(error_of([&] { ctl.set_policy(SIGHUP, no_handler); }) == gs::errc::invalid_policy);
  CHECK(error_of([&] {
          ctl.set_policy(SIGINT,
                         gs::signal_policy::graceful(1s).on_repeat(1, gs::action::fast_stop));
        }) == gs::errc::invalid_policy);
  CHECK(error_of([&] {
          ctl.set_policy(SIGINT, gs::signal_policy::graceful(1s).on_repeat(2, gs::action::reload));
        }) == gs::errc::invalid_policy);
  CHECK(error_of([&] { ctl.set_policy(SIGTERM, gs::signal_policy::graceful(-1ms)); }) ==
        gs::errc::invalid_policy);
}

TEST_CASE("EINTR mode with the signalfd backend is rejected at install", "[policy][errors]") {
  gs::stop_controller::options o;
  o.which = gs::backend::signalfd;
  gs::stop_controller ctl(o);
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(1s).without_restart());
  CHECK(error_of([&] { ctl.install(); }) == gs::errc::invalid_policy);
  CHECK(ctl.state() == gs::controller_state::idle);
}

TEST_CASE("automatic backend picks the self-pipe when a policy wants EINTR", "[policy]") {
  gs::stop_controller ctl;
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(1s).without_restart());
  ctl.install();
  CHECK(ctl.active_backend() == gs::backend::self_pipe);
  struct sigaction act {};
  ::sigaction(SIGTERM, nullptr, &act);
  CHECK((act.sa_flags & SA_RESTART) == 0);
  ::sigaction(SIGINT, nullptr, &act);
  CHECK((act.sa_flags & SA_RESTART) != 0); // only the policy that asked
}

TEST_CASE("duplicate stage names, nameless stages and stages after the stop began are rejected",
          "[policy][errors]") {
  gs::stop_controller ctl;
  ctl.add_stage({"flush", gs::stage_kind::flush, [](gs::stage_context &) {}});
  CHECK(error_of([&] {
          ctl.add_stage({"flush", gs::stage_kind::close, [](gs::stage_context &) {}});
        }) == gs::errc::duplicate_stage);
  CHECK(error_of([&] {
          ctl.add_stage({"", gs::stage_kind::close, [](gs::stage_context &) {}});
        }) == std::errc::invalid_argument);
  ctl.install();
  ctl.request_stop();
  CHECK(error_of([&] {
          ctl.add_stage({"late", gs::stage_kind::close, [](gs::stage_context &) {}});
        }) == gs::errc::stage_after_stop);
}

TEST_CASE("a policy naming an unknown stage is rejected at install", "[policy][errors]") {
  gs::stop_controller ctl;
  ctl.set_policy(SIGTERM, gs::signal_policy::graceful(1s).run_stages({"nope"}));
  CHECK(error_of([&] { ctl.install(); }) == gs::errc::unknown_stage);
}

TEST_CASE("policies cannot change after install", "[policy][errors]") {
  gs::stop_controller ctl;
  ctl.install();
  CHECK(error_of([&] { ctl.set_policy(SIGHUP, gs::signal_policy::ignore()); }) ==
        gs::errc::already_installed);
  CHECK(error_of([&] { ctl.install(); }) == gs::errc::already_installed);
}

TEST_CASE("a second controller in the process is rejected with already_active",
          "[policy][errors]") {
  gs::stop_controller first;
  first.install();
  gs::stop_controller second;
  std::error_code ec;
  second.install(ec);
  CHECK(ec == gs::errc::already_active);
  CHECK(ec == std::errc::device_or_resource_busy);
  first.uninstall();
  second.install(ec); // the slot is free again
  CHECK_FALSE(ec);
}

TEST_CASE("dispatch from a thread other than the loop thread is rejected", "[policy][errors]") {
  gs::stop_controller ctl;
  ctl.install();
  ctl.dispatch(); // this thread is the loop thread now
  std::error_code ec;
  std::thread other([&] { ctl.dispatch(ec); });
  other.join();
  CHECK(ec == gs::errc::wrong_thread);
}

TEST_CASE("dispatch before install is rejected with not_installed", "[policy][errors]") {
  gs::stop_controller ctl;
  std::error_code ec;
  ctl.dispatch(ec);
  CHECK(ec == gs::errc::not_installed);
}

TEMPLATE_TEST_CASE("a second SIGINT during a drain switches to a fast stop that still flushes",
                   "[policy][escalation]", test::self_pipe_backend, test::signalfd_backend) {
  event_log log;
  std::vector<std::string> ran;
  auto o = test::options_for(TestType::value, log);
  gs::stop_controller ctl(o);
  gs::stage_completion drain;
  ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                   drain = ctx.defer();
                   return gs::stage_status::pending;
                 }});
  ctl.add_stage(
      {"drain-2", gs::stage_kind::drain, [&](gs::stage_context &) { ran.push_back("drain-2"); }});
  ctl.add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &ctx) {
                   ran.push_back(ctx.mode() == gs::action::fast_stop ? "flush(fast)" : "flush");
                 }});
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  ctl.dispatch();
  REQUIRE(ctl.current_stage() == "drain");
  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  ctl.dispatch();
  CHECK(log.has("event=escalated signal=SIGINT action=fast"));
  CHECK(log.has("event=stage stage=drain elapsed_ms="));
  CHECK(log.has("outcome=cancelled"));
  CHECK(drain.cancelled());
  CHECK(log.has("event=stage stage=drain-2 elapsed_ms=0 outcome=skipped"));
  CHECK(ran == std::vector<std::string>{"flush(fast)"});
  CHECK(ctl.state() == gs::controller_state::stopped);
  CHECK(ctl.reraise_signal() == SIGINT); // the default SIGINT rule: die of the signal
  CHECK(ctl.exit_code() == 128 + SIGINT);
}

TEMPLATE_TEST_CASE("a stronger signal during a graceful stop escalates, a weaker one is reported",
                   "[policy][escalation]", test::self_pipe_backend, test::signalfd_backend) {
  event_log log;
  gs::stop_controller ctl(test::options_for(TestType::value, log));
  ctl.set_policy(SIGQUIT, gs::signal_policy::fast(1s));
  gs::stage_completion drain;
  ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                   drain = ctx.defer();
                   return gs::stage_status::pending;
                 }});
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  ctl.dispatch();
  REQUIRE(::kill(::getpid(), SIGINT) == 0); // graceful too: not stronger
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  ctl.dispatch();
  CHECK(log.has("event=ignored signal=SIGINT"));
  CHECK(ctl.state() == gs::controller_state::stopping);
  REQUIRE(::kill(::getpid(), SIGQUIT) == 0);
  REQUIRE(test::wait_readable(ctl.fd(), 5000));
  ctl.dispatch();
  CHECK(log.has("event=escalated signal=SIGQUIT action=fast"));
  CHECK(ctl.state() == gs::controller_state::stopped);
  CHECK(ctl.exit_code() == 0); // the exit rule of the signal that began the stop
}

TEST_CASE("with a repeat window, a slow repeat does not escalate", "[policy][escalation]") {
  event_log log;
  test::fake_clock clock;
  auto o = test::options_for(gs::backend::automatic, log);
  o.now = clock.fn();
  o.watchdog_margin = 0ms;
  gs::stop_controller ctl(o);
  ctl.set_policy(SIGINT,
                 gs::signal_policy::graceful(60s).on_repeat(2, gs::action::fast_stop).within(2s));
  gs::stage_completion drain;
  ctl.add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                   drain = ctx.defer();
                   return gs::stage_status::pending;
                 }});
  ctl.install();
  auto send = [&] {
    REQUIRE(::kill(::getpid(), SIGINT) == 0);
    REQUIRE(test::wait_readable(ctl.fd(), 5000));
    ctl.dispatch();
  };
  send();
  clock.advance(3s);
  send(); // 3 s later: outside the window, counts as a new first
  CHECK_FALSE(log.has("event=escalated"));
  clock.advance(1s);
  send(); // 1 s after the previous: a repeat
  CHECK(log.has("event=escalated signal=SIGINT action=fast"));
}

TEST_CASE("the default policies: SIGTERM graceful 30 s exit 0, SIGINT escalating and re-raising",
          "[policy]") {
  gs::stop_controller ctl;
  const gs::signal_policy *term = ctl.policy(SIGTERM);
  const gs::signal_policy *intr = ctl.policy(SIGINT);
  REQUIRE(term != nullptr);
  REQUIRE(intr != nullptr);
  CHECK(term->what == gs::action::graceful_stop);
  CHECK(term->deadline == 30s);
  CHECK(term->exit.what() == gs::exit_rule::kind::status);
  CHECK(term->exit.status() == 0);
  CHECK(intr->exit.what() == gs::exit_rule::kind::reraise);
  REQUIRE(intr->repeats.size() == 2);
  CHECK(intr->repeats[0].to == gs::action::fast_stop);
  CHECK(intr->repeats[1].to == gs::action::immediate_exit);
  CHECK(ctl.policy(SIGHUP) == nullptr); // opt-in
  CHECK(ctl.policy(SIGQUIT) == nullptr);
}
