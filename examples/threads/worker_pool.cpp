// A worker pool stopped through the stop token.
//
//   gs_example_threads [WORKERS [ITEM_MS | -]]
//
// WORKERS threads (default 3) take items one after another; an item takes ITEM_MS (default 500)
// and, once begun, is finished. With "-" for ITEM_MS an item instead lasts until a byte arrives on
// standard input (Enter at a terminal, or a byte from whatever drives the pool), so the caller
// decides when each item ends; at the end of the input the workers take no more items.
//
// On SIGTERM the controller requests the workers' token, so no worker begins another item, and
// the drain stage waits until every worker has finished the item it was on. The drain is
// asynchronous: the last worker to finish completes it, from its own thread. Then the process
// exits 0 (SIGINT: the same, then it dies of SIGINT).
//
// The same file builds as C++17 (threads from gs::spawn_thread polling ctl.get_token()) and as
// C++20 (std::jthread from gs::spawn_jthread, polling its own std::stop_token, which the
// controller requests). The main thread has no loop of its own, so it runs gs::poll_loop.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unistd.h>
#include <vector>

namespace gs = gracefulstop;

namespace {

// Counts the workers still running; the drain stage waits for none. The mutex makes "check, then
// defer" in the stage and "decrement, then complete" in the last worker one step each, so the
// completion can neither be missed nor come before there is a handle to complete.
class pool_tracker {
public:
  explicit pool_tracker(unsigned workers) : running_(workers) {}

  gs::stage_status wait_idle(gs::stage_context &stage) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_ == 0) return gs::stage_status::done;
    idle_ = stage.defer();
    return gs::stage_status::pending;
  }
  void worker_exited() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0 && idle_) idle_->done(); // wakes the loop from this thread
  }

private:
  std::mutex mutex_;
  unsigned running_;
  std::optional<gs::stage_completion> idle_;
};

// One item of work. Neither kind can be interrupted, which is the point: the stop has to wait for
// the item in hand, not cut it off.
struct item_work {
  std::chrono::milliseconds duration; // used when !from_input
  bool from_input;                    // ITEM_MS "-"

  /// Does one item; false if it ended because the input did (no more items will come).
  bool run() const {
    if (!from_input) {
      std::this_thread::sleep_for(duration); // stands for the work itself
      return true;
    }
    char byte;
    ssize_t n;
    while ((n = ::read(STDIN_FILENO, &byte, 1)) < 0 && errno == EINTR) {
    }
    return n == 1;
  }
};

// The worker, written once for both kinds of token: `stop_requested` is the only thing it asks.
template <class StopRequested>
void work(unsigned worker, item_work items, StopRequested stop_requested, pool_tracker &pool) {
  static std::atomic<unsigned long> last_item{0};
  bool more = true;
  while (more && !stop_requested()) {
    const unsigned long item = ++last_item;
    std::fprintf(stderr, "event=item-start worker=%u item=%lu\n", worker, item);
    more = items.run();
    std::fprintf(stderr, "event=item-done worker=%u item=%lu stopping=%s\n", worker, item,
                 stop_requested() ? "true" : "false");
  }
  std::fprintf(stderr, "event=worker-exit worker=%u reason=%s\n", worker,
               more ? "stop" : "end-of-input");
  pool.worker_exited();
}

} // namespace

int main(int argc, char **argv) try {
  const example::command_line args(argc, argv, "gs_example_threads", "[WORKERS [ITEM_MS | -]]", 2);
  const auto workers = static_cast<unsigned>(args.number(1, "WORKERS", 1, 64, 3));
  item_work items{std::chrono::milliseconds(500), false};
  if (std::strcmp(args.text(2, ""), "-") == 0)
    items.from_input = true;
  else
    items.duration = std::chrono::milliseconds(args.number(2, "ITEM_MS", 1, 60000, 500));

  gs::stop_controller::options options;
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);
  pool_tracker pool(workers);
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &stage) { return pool.wait_idle(stage); }});
  ctl.install();

  // spawn_thread / spawn_jthread start each thread with the handled signals blocked, so none of
  // them takes a SIGTERM meant for the controller.
#if GRACEFULSTOP_HAS_STD_STOP_TOKEN
  const char *token_kind = "std";
  std::vector<std::jthread> threads;
  for (unsigned id = 1; id <= workers; ++id)
    threads.push_back(gs::spawn_jthread(
        ctl,
        [&pool, items](std::stop_token token, unsigned worker) {
          work(
              worker, items, [&token] { return token.stop_requested(); }, pool);
        },
        id));
#else
  const char *token_kind = "gracefulstop";
  std::vector<std::thread> threads;
  for (unsigned id = 1; id <= workers; ++id)
    threads.push_back(gs::spawn_thread(
        ctl,
        [&pool, items, token = ctl.get_token()](unsigned worker) {
          work(
              worker, items, [&token] { return token.stop_requested(); }, pool);
        },
        id));
#endif
  std::fprintf(stderr, "event=ready example=threads workers=%u token=%s\n", workers, token_kind);

  gs::poll_loop loop;
  loop.run(ctl);
  // A drain that ran to the end waited for every worker to leave its loop, so these joins return
  // at once; after a fast stop (a second ^C cancels the drain) they wait out the items in hand.
  for (auto &t : threads)
    t.join();
  ctl.exit_process(); // 0 for SIGTERM; for SIGINT, dies of SIGINT
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 1;
}
