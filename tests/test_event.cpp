// The logfmt rendering: one line per event, values quoted only when they must be.
#include "support.hpp"

TEST_CASE("stage events render as logfmt", "[event]") {
  gs::event e;
  e.kind = gs::event_kind::stage_finished;
  e.stage = "drain";
  e.elapsed = std::chrono::milliseconds(3);
  e.outcome = gs::stage_outcome::done;
  CHECK(gs::to_logfmt(e) == "event=stage stage=drain elapsed_ms=3 outcome=done");
  e.outcome = gs::stage_outcome::failed;
  e.detail = "disk \"full\"\nretry";
  CHECK(gs::to_logfmt(e) ==
        "event=stage stage=drain elapsed_ms=3 outcome=failed error=\"disk \\\"full\\\"\\nretry\"");
}

TEST_CASE("the sender appears only when a process sent the signal", "[event]") {
  gs::event e;
  e.kind = gs::event_kind::stop_requested;
  e.signal.signo = SIGTERM;
  e.signal.sender_pid = 42;
  e.signal.sender_uid = 1000;
  e.signal.code = SI_USER;
  e.act = gs::action::graceful_stop;
  e.deadline = std::chrono::milliseconds(30000);
  CHECK(gs::to_logfmt(e) == "event=stop-requested signal=SIGTERM sender_pid=42 sender_uid=1000 "
                            "action=graceful deadline_ms=30000");
  e.signal.code = SI_KERNEL;
  CHECK(gs::to_logfmt(e) ==
        "event=stop-requested signal=SIGTERM action=graceful deadline_ms=30000");
}

TEST_CASE("signal names cover standard and real-time signals", "[event]") {
  CHECK(std::string(gs::signal_name(SIGTERM)) == "SIGTERM");
  CHECK(std::string(gs::signal_name(SIGRTMIN + 3)) == "SIGRTMIN+3");
  CHECK(std::string(gs::signal_name(SIGRTMIN + 12)) == "SIGRTMIN+12");
  CHECK(std::string(gs::signal_name(0)) == "SIG?");
}

TEST_CASE("a throwing event hook does not break the stop", "[event]") {
  gs::stop_controller::options o;
  o.on_event = [](const gs::event &) { throw std::runtime_error("log sink down"); };
  gs::stop_controller ctl(o);
  bool flushed = false;
  ctl.add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &) { flushed = true; }});
  ctl.install();
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  test::run_until_stopped(ctl);
  CHECK(flushed);
}

TEST_CASE("raise() and pthread_kill() senders (SI_TKILL) are shown too", "[event]") {
  gs::signal_event ev;
  ev.signo = SIGTERM;
  ev.code = SI_TKILL;
  CHECK(ev.from_process());
  ev.code = SI_KERNEL;
  CHECK_FALSE(ev.from_process());
}

TEST_CASE("a stop the application requested shows signal=none, reloads show their sender",
          "[event]") {
  gs::event e;
  e.kind = gs::event_kind::stop_requested;
  e.act = gs::action::graceful_stop;
  e.deadline = std::chrono::milliseconds(100);
  CHECK(gs::to_logfmt(e) == "event=stop-requested signal=none action=graceful deadline_ms=100");
  e.kind = gs::event_kind::reload;
  e.signal.signo = SIGHUP;
  e.signal.sender_pid = 7;
  e.signal.code = SI_USER;
  CHECK(gs::to_logfmt(e) == "event=reload signal=SIGHUP sender_pid=7 sender_uid=0 ok=true");
}
