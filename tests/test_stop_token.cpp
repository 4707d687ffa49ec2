// Worker threads learn of the stop through a token; under C++20 through std::stop_token and
// std::jthread too. This file is built as C++17 and as C++20.
#include "support.hpp"

#include <atomic>
#include <thread>

using namespace std::chrono_literals;

TEST_CASE("a worker waiting on the token wakes when a signal begins the stop", "[token]") {
  gs::stop_controller ctl;
  ctl.install();
  std::atomic<bool> woke{false};
  std::thread worker = gs::spawn_thread(ctl, [&, token = ctl.get_token()] {
    token.wait();
    woke = true;
  });
  CHECK_FALSE(ctl.get_token().wait_for(1ms));
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  test::run_until_stopped(ctl);
  worker.join();
  CHECK(woke);
}

TEST_CASE("spawn_thread starts the thread with the handled signals blocked", "[token]") {
  gs::stop_controller ctl;
  ctl.install();
  sigset_t seen;
  sigemptyset(&seen);
  std::thread t = gs::spawn_thread(ctl, [&] { ::pthread_sigmask(SIG_SETMASK, nullptr, &seen); });
  t.join();
  CHECK(sigismember(&seen, SIGTERM) == 1);
  CHECK(sigismember(&seen, SIGINT) == 1);
}

TEST_CASE("a default stop token never stops and never hangs", "[token]") {
  gs::stop_token none;
  CHECK_FALSE(none.stop_possible());
  CHECK_FALSE(none.stop_requested());
  none.wait();
  CHECK_FALSE(none.wait_for(1ms));
}

TEST_CASE("request_stop reports only the first request", "[token]") {
  gs::stop_source source;
  CHECK(source.request_stop());
  CHECK_FALSE(source.request_stop());
  CHECK(source.get_token().stop_requested());
}

#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
TEST_CASE("C++20: jthread workers stop through std::stop_token", "[token][cxx20]") {
  gs::stop_controller ctl;
  ctl.install();
  std::atomic<int> stopped{0};
  {
    std::vector<std::jthread> workers;
    for (int i = 0; i < 3; ++i)
      workers.push_back(gs::spawn_jthread(ctl, [&](std::stop_token st) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, st, [] { return false; }); // returns when a stop is requested
        ++stopped;
      }));
    std::stop_token standalone = ctl.get_std_token();
    CHECK_FALSE(standalone.stop_requested());
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
    test::run_until_stopped(ctl);
    CHECK(standalone.stop_requested());
  } // jthreads join here: they must have stopped, or this hangs and the ctest timeout fails it
  CHECK(stopped == 3);
}
#endif

TEST_CASE("spawn_thread before install blocks the signals that have policies", "[token]") {
  gs::stop_controller ctl;
  ctl.set_policy(SIGUSR1, gs::signal_policy::callback([](const gs::signal_event &) {}));
  ctl.clear_policy(SIGINT);
  sigset_t seen;
  sigemptyset(&seen);
  std::thread t = gs::spawn_thread(ctl, [&] { ::pthread_sigmask(SIG_SETMASK, nullptr, &seen); });
  t.join();
  CHECK(sigismember(&seen, SIGTERM) == 1);
  CHECK(sigismember(&seen, SIGUSR1) == 1);
  CHECK(sigismember(&seen, SIGINT) == 0);
}
