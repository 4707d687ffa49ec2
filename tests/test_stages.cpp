// Stages: order, synchronous and asynchronous completion, budgets, the deadline, failures.
// Deadlines run on a fake clock, so no case depends on how fast the machine is.
#include "support.hpp"

#include <thread>

using namespace std::chrono_literals;
using test::event_log;

namespace {
struct rig {
  event_log log;
  test::fake_clock clock;
  std::vector<std::string> ran;
  std::unique_ptr<gs::stop_controller> ctl;

  explicit rig(gs::backend b = gs::backend::automatic) {
    auto o = test::options_for(b, log);
    o.now = clock.fn();
    o.grace = 2000ms;
    o.watchdog_margin = 0ms; // the watchdog measures real time; these cases run on fake time
    ctl = std::make_unique<gs::stop_controller>(o);
  }
  void sync_stage(const std::string &name, gs::stage_kind kind) {
    ctl->add_stage({name, kind, [this, name](gs::stage_context &) { ran.push_back(name); }});
  }
  void signal(int signo) {
    REQUIRE(::kill(::getpid(), signo) == 0);
    REQUIRE(test::wait_readable(ctl->fd(), 5000));
    ctl->dispatch();
  }
};
} // namespace

TEMPLATE_TEST_CASE("synchronous stages run in registration order and are reported", "[stages]",
                   test::self_pipe_backend, test::signalfd_backend) {
  rig r(TestType::value);
  r.sync_stage("stop-accepting", gs::stage_kind::stop_accepting);
  r.sync_stage("drain", gs::stage_kind::drain);
  r.sync_stage("flush", gs::stage_kind::flush);
  r.sync_stage("close", gs::stage_kind::close);
  r.ctl->install();
  r.signal(SIGTERM);
  CHECK(r.ran == std::vector<std::string>{"stop-accepting", "drain", "flush", "close"});
  CHECK(r.ctl->state() == gs::controller_state::stopped);
  CHECK(r.log.count(gs::event_kind::stage_finished) == 4);
  CHECK(r.log.has("event=stage stage=drain elapsed_ms=0 outcome=done"));
  CHECK(r.log.has("event=stopped elapsed_ms=0 status=0"));
}

TEMPLATE_TEST_CASE("an asynchronous stage completed from another thread wakes the loop", "[stages]",
                   test::self_pipe_backend, test::signalfd_backend) {
  rig r(TestType::value);
  std::thread worker;
  r.ctl->add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                      auto handle = ctx.defer();
                      worker = std::thread([handle]() mutable { handle.done(); });
                      return gs::stage_status::pending;
                    }});
  r.sync_stage("flush", gs::stage_kind::flush);
  r.ctl->install();
  r.signal(SIGTERM);
  // The completion may already have happened; either way the fd tells the loop when to look.
  while (r.ctl->state() != gs::controller_state::stopped) {
    REQUIRE(test::wait_readable(r.ctl->fd(), 5000));
    r.ctl->dispatch();
  }
  worker.join();
  CHECK(r.ran == std::vector<std::string>{"flush"});
  CHECK(r.log.has("event=stage stage=drain elapsed_ms=0 outcome=done"));
}

TEST_CASE("a stage that overruns its budget times out and the stop goes on", "[stages]") {
  rig r;
  gs::stage_completion held;
  r.ctl->add_stage({"drain", gs::stage_kind::drain,
                    [&](gs::stage_context &ctx) {
                      held = ctx.defer();
                      return gs::stage_status::pending;
                    },
                    300ms});
  r.sync_stage("flush", gs::stage_kind::flush);
  r.ctl->install();
  r.signal(SIGTERM);
  REQUIRE(r.ctl->current_stage() == "drain");
  CHECK(r.ctl->next_timeout_ms() == 300);
  r.clock.advance(299ms);
  r.ctl->dispatch();
  CHECK(r.ctl->current_stage() == "drain");
  r.clock.advance(1ms);
  r.ctl->dispatch();
  CHECK(r.log.has("event=stage stage=drain elapsed_ms=300 outcome=timed_out"));
  CHECK(held.cancelled()); // the work behind the handle is told to give up
  CHECK(r.ran == std::vector<std::string>{"flush"});
  CHECK(r.ctl->state() == gs::controller_state::stopped);
  CHECK(r.ctl->exit_code() == 0); // a skippable stage timing out is not a failure
}

TEST_CASE("past the deadline skippable stages are cancelled and must-run stages still run",
          "[stages]") {
  rig r;
  r.ctl->set_policy(SIGTERM, gs::signal_policy::graceful(1000ms));
  gs::stage_completion held;
  r.ctl->add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                      held = ctx.defer();
                      return gs::stage_status::pending;
                    }});
  r.sync_stage("drain-more", gs::stage_kind::drain);
  r.sync_stage("flush", gs::stage_kind::flush);
  r.ctl->install();
  r.signal(SIGTERM);
  CHECK(r.ctl->next_timeout_ms() == 1000);
  r.clock.advance(1000ms);
  r.ctl->dispatch();
  CHECK(r.log.has("event=deadline elapsed_ms=1000"));
  CHECK(r.log.has("event=stage stage=drain elapsed_ms=1000 outcome=timed_out"));
  CHECK(r.log.has("event=stage stage=drain-more elapsed_ms=0 outcome=skipped"));
  CHECK(r.ran == std::vector<std::string>{"flush"});
  CHECK(r.ctl->exit_code() == 0);
}

TEST_CASE("a must-run stage gets the grace period, and failing it makes the exit a failure",
          "[stages]") {
  rig r;
  r.ctl->set_policy(SIGTERM, gs::signal_policy::graceful(1000ms).exit_with(
                                 gs::exit_rule::with_status(0).on_failure(75)));
  gs::stage_completion held;
  r.ctl->add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &ctx) {
                      held = ctx.defer();
                      return gs::stage_status::pending;
                    }});
  r.sync_stage("close", gs::stage_kind::close);
  r.ctl->install();
  r.signal(SIGTERM);
  r.clock.advance(1000ms); // the deadline: flush is must-run, it keeps going
  r.ctl->dispatch();
  CHECK(r.ctl->current_stage() == "flush");
  CHECK(r.ctl->next_timeout_ms() == 2000); // the grace
  r.clock.advance(2000ms);
  r.ctl->dispatch();
  CHECK(r.log.has("event=stage stage=flush elapsed_ms=3000 outcome=timed_out"));
  // Past deadline + grace nothing more may run: the process must not hang on stop.
  CHECK(r.log.has("event=stage stage=close elapsed_ms=0 outcome=skipped"));
  CHECK(r.ctl->state() == gs::controller_state::stopped);
  CHECK(r.ctl->exit_code() == 75);
}

TEST_CASE("a stage that throws is reported as failed with its message", "[stages]") {
  rig r;
  r.ctl->add_stage({"flush", gs::stage_kind::flush, [](gs::stage_context &) -> gs::stage_status {
                      throw std::runtime_error("disk full");
                    }});
  r.sync_stage("close", gs::stage_kind::close);
  r.ctl->install();
  r.signal(SIGTERM);
  CHECK(r.log.has("event=stage stage=flush elapsed_ms=0 outcome=failed error=\"disk full\""));
  CHECK(r.ran == std::vector<std::string>{"close"});
  CHECK(r.ctl->exit_code() == 1); // default failure status
}

TEST_CASE("an asynchronous stage can fail through its handle", "[stages]") {
  rig r;
  gs::stage_completion held;
  r.ctl->add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                      held = ctx.defer();
                      return gs::stage_status::pending;
                    }});
  r.ctl->install();
  r.signal(SIGTERM);
  held.fail("peer reset");
  held.done(); // a second completion is ignored
  REQUIRE(test::wait_readable(r.ctl->fd(), 5000));
  r.ctl->dispatch();
  CHECK(r.log.has("outcome=failed error=\"peer reset\""));
  CHECK(r.ctl->exit_code() == 0); // drain is skippable: its failure is reported, not fatal
}

TEST_CASE("returning pending without defer() is a reported failure, not a hang", "[stages]") {
  rig r;
  r.ctl->add_stage({"drain", gs::stage_kind::drain,
                    [](gs::stage_context &) { return gs::stage_status::pending; }});
  r.ctl->install();
  r.signal(SIGTERM);
  CHECK(r.log.has("error=\"returned pending without calling defer()\""));
  CHECK(r.ctl->state() == gs::controller_state::stopped);
}

TEST_CASE("a policy runs only the stages it names", "[stages]") {
  rig r;
  r.sync_stage("drain", gs::stage_kind::drain);
  r.sync_stage("flush", gs::stage_kind::flush);
  r.ctl->set_policy(SIGQUIT, gs::signal_policy::graceful(1000ms).run_stages({"flush"}));
  r.ctl->install();
  r.signal(SIGQUIT);
  CHECK(r.ran == std::vector<std::string>{"flush"});
}

TEST_CASE("the stop token and current stage follow the stop", "[stages]") {
  rig r;
  gs::stop_token token = r.ctl->get_token();
  bool token_seen_in_stage = false;
  r.ctl->add_stage({"drain", gs::stage_kind::drain, [&](gs::stage_context &ctx) {
                      token_seen_in_stage = token.stop_requested();
                      CHECK(ctx.cause().signo == SIGTERM);
                      CHECK(ctx.mode() == gs::action::graceful_stop);
                      CHECK(r.ctl->current_stage() == "drain");
                    }});
  r.ctl->install();
  CHECK_FALSE(token.stop_requested());
  CHECK(r.ctl->current_stage().empty());
  r.signal(SIGTERM);
  CHECK(token_seen_in_stage);
  CHECK(token.stop_requested());
}

TEST_CASE("request_stop runs the stages without a signal", "[stages]") {
  rig r;
  r.sync_stage("flush", gs::stage_kind::flush);
  r.ctl->install();
  r.ctl->request_stop();
  CHECK(r.ran == std::vector<std::string>{"flush"});
  CHECK(r.ctl->state() == gs::controller_state::stopped);
  CHECK(r.ctl->exit_code() == 0);
}
