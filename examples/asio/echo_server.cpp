// A TCP echo server on a Boost.Asio io_context, stopped gracefully by gracefulstop.
//
//   gs_example_asio [PORT [DRAIN_BUDGET_MS]]
//
// Same behaviour as the epoll example: on SIGTERM stop accepting, keep echoing for the open
// connections until their clients close (at most DRAIN_BUDGET_MS, default 5000), close the rest,
// exit 0; SIGINT the same under the default ^C policy, ending in death by SIGINT.
//
// The glue is the controller_watch class below: the controller's fd wrapped in a
// posix::stream_descriptor (async_wait(wait_read) -> dispatch) and a steady_timer for
// next_timeout_ms(). No asio::signal_set: gracefulstop owns the signals.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

namespace asio = boost::asio;
namespace gs = gracefulstop;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// Runs ctl.dispatch() whenever the controller's fd is readable or its next deadline comes, and
// stops the io_context once the stop is over.
class controller_watch {
public:
  controller_watch(asio::io_context &io, gs::stop_controller &ctl)
      : io_(io), ctl_(ctl), fd_(io, ctl.fd()), timer_(io) {
    wait_readable();
  }

private:
  void wait_readable() {
    // Re-armed from inside the handler, before the io_context polls again: asio registers
    // descriptors edge-triggered, and a wait queued late could miss the edge.
    fd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const error_code &ec) {
      if (ec) return; // cancelled: the stop is over
      dispatch();
      if (ctl_.state() != gs::controller_state::stopped) wait_readable();
    });
  }

  void dispatch() {
    ctl_.dispatch();
    if (ctl_.state() == gs::controller_state::stopped) {
      timer_.cancel();
      // The fd belongs to the controller: release() hands it back instead of closing it.
      fd_.release();
      io_.stop();
      return;
    }
    // A stop in progress has deadlines (stage budgets, the stop's own); -1 means none pending.
    const int ms = ctl_.next_timeout_ms();
    if (ms < 0) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(ms)); // cancels the previous wait
    timer_.async_wait([this](const error_code &ec) {
      if (!ec) dispatch();
    });
  }

  asio::io_context &io_;
  gs::stop_controller &ctl_;
  asio::posix::stream_descriptor fd_;
  asio::steady_timer timer_;
};

class echo_server {
public:
  echo_server(asio::io_context &io, unsigned short port)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), port)) {
    accept();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  // ---- the stages ----
  void stop_accepting() { acceptor_.close(); }
  gs::stage_status drain(gs::stage_context &stage) {
    if (sessions_.empty()) return gs::stage_status::done;
    drained_ = stage.defer(); // completed by forget() when the last client goes
    return gs::stage_status::pending;
  }
  void close_all() {
    drained_.reset(); // timed out or cancelled: nobody waits for it any more
    for (auto &[id, s] : sessions_) {
      error_code ignored;
      s->socket.close(ignored);
      std::fprintf(stderr, "event=closed conn=%u reason=stop\n", id);
    }
    sessions_.clear();
  }

private:
  struct session {
    explicit session(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::array<char, 16384> buffer;
  };

  void accept() {
    acceptor_.async_accept([this](const error_code &ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return; // the listener was closed: stop-accepting
      if (!ec) {
        const unsigned id = ++last_id_;
        auto s = std::make_shared<session>(std::move(socket));
        sessions_.emplace(id, s);
        std::fprintf(stderr, "event=accepted conn=%u\n", id);
        read(id, s);
      }
      accept();
    });
  }

  // Read, echo all of it, read again: the echo is finished before the next read can see EOF.
  void read(unsigned id, std::shared_ptr<session> s) {
    s->socket.async_read_some(
        asio::buffer(s->buffer), [this, id, s](const error_code &ec, std::size_t n) {
          if (ec) return forget(id, ec == asio::error::eof ? "peer" : "error");
          asio::async_write(s->socket, asio::buffer(s->buffer, n),
                            [this, id, s](const error_code &ec, std::size_t n) {
                              if (ec) return forget(id, "error");
                              std::fprintf(stderr, "event=echoed conn=%u bytes=%zu\n", id, n);
                              read(id, s);
                            });
        });
  }

  void forget(unsigned id, const char *reason) {
    if (sessions_.erase(id) == 0) return; // already closed by the close stage
    std::fprintf(stderr, "event=closed conn=%u reason=%s\n", id, reason);
    if (sessions_.empty() && drained_) {
      drained_->done();
      drained_.reset();
    }
  }

  tcp::acceptor acceptor_;
  std::map<unsigned, std::shared_ptr<session>> sessions_;
  unsigned last_id_ = 0;
  std::optional<gs::stage_completion> drained_;
};

} // namespace

int main(int argc, char **argv) try {
  const example::echo_server_arguments args(argc, argv, "gs_example_asio");

  gs::stop_controller::options options;
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);
  // Installed before the io_context exists: with the signalfd backend the signals are blocked in
  // this thread, and any thread started later inherits that.
  ctl.install();

  asio::io_context io;
  echo_server server(io, args.port);
  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting,
                 [&](gs::stage_context &) { server.stop_accepting(); }});
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &stage) { return server.drain(stage); }, args.drain_budget});
  ctl.add_stage({"close", gs::stage_kind::close, [&](gs::stage_context &) { server.close_all(); }});
  controller_watch watch(io, ctl);

  std::fprintf(stderr, "event=ready example=asio port=%u\n", server.port());
  io.run();
  ctl.exit_process(); // 0 for SIGTERM; for SIGINT, dies of SIGINT
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 1;
}
