// A program that uses gracefulstop the way a packaged user does: through the package's target or
// its pkg-config flags, never the source tree. It installs a controller, sends itself a real
// SIGTERM, runs its loop until the controller has stopped, and checks the stop ran its stage.
#include <gracefulstop/stop.hpp>
#include <gracefulstop/systemd_notify.hpp> // optional header: installed with the rest
#include <gracefulstop/version.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <poll.h>

#ifndef GRACEFULSTOP_EXPECTED_VERSION
#error "build with -DGRACEFULSTOP_EXPECTED_VERSION=\"x.y.z\": the version the package claims"
#endif

int main() {
  namespace gs = gracefulstop;
  // The header and the package metadata (CMake version file, .pc) must tell the same version.
  if (std::strcmp(GRACEFULSTOP_VERSION_STRING, GRACEFULSTOP_EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "consumer: version.hpp says %s, the package says %s\n",
                 GRACEFULSTOP_VERSION_STRING, GRACEFULSTOP_EXPECTED_VERSION);
    return 2;
  }

  gs::systemd_notifier sd; // the test runs us without NOTIFY_SOCKET: a no-op
  gs::stop_controller::options opts;
  opts.on_event = [&](const gs::event &e) {
    std::fprintf(stderr, "%s\n", gs::to_logfmt(e).c_str());
    sd.on_event(e);
  };
  gs::stop_controller ctl(opts);
  bool flushed = false;
  ctl.add_stage({"flush", gs::stage_kind::flush, [&](gs::stage_context &) { flushed = true; }});
  ctl.install();

  std::raise(SIGTERM);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ctl.state() != gs::controller_state::stopped &&
         std::chrono::steady_clock::now() < give_up) {
    pollfd p{ctl.fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    ctl.dispatch();
  }
  if (ctl.state() != gs::controller_state::stopped || !flushed || ctl.exit_code() != 0) {
    std::fprintf(stderr, "consumer: state=%s flushed=%d exit_code=%d\n", gs::to_string(ctl.state()),
                 flushed ? 1 : 0, ctl.exit_code());
    return 1;
  }
  std::printf("consumer: stopped by SIGTERM, exit status %d, gracefulstop %s\n", ctl.exit_code(),
              GRACEFULSTOP_VERSION_STRING);
  return 0;
}
