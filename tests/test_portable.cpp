// Built with GRACEFULSTOP_DISABLE_SIGNALFD: the portable configuration every POSIX system gets.
#include "support.hpp"

static_assert(GRACEFULSTOP_HAS_SIGNALFD == 0,
              "this file must be built with GRACEFULSTOP_DISABLE_SIGNALFD");

TEST_CASE("without signalfd, automatic picks the self-pipe and still stops on SIGTERM",
          "[portable]") {
  test::event_log log;
  gs::stop_controller ctl(test::options_for(gs::backend::automatic, log));
  ctl.install();
  CHECK(ctl.active_backend() == gs::backend::self_pipe);
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  test::run_until_stopped(ctl);
  CHECK(log.has("event=installed backend=self-pipe"));
}

TEST_CASE("without signalfd, asking for it is backend_unavailable", "[portable][errors]") {
  gs::stop_controller::options o;
  o.which = gs::backend::signalfd;
  gs::stop_controller ctl(o);
  std::error_code ec;
  ctl.install(ec);
  CHECK(ec == gs::errc::backend_unavailable);
  CHECK(ec == std::errc::function_not_supported);
  CHECK(gs::detail::state().owner.load() == 0);
}
