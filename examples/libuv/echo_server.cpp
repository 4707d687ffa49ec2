// A TCP echo server on a libuv loop, stopped gracefully by gracefulstop.
//
//   gs_example_libuv [PORT [DRAIN_BUDGET_MS]]
//
// Same behaviour as the epoll example: on SIGTERM stop accepting, keep echoing for the open
// connections until their clients close (at most DRAIN_BUDGET_MS, default 5000), close the rest,
// exit 0; SIGINT the same under the default ^C policy, ending in death by SIGINT.
//
// The glue: a uv_poll_t on ctl.fd() and a uv_timer_t for ctl.next_timeout_ms(), both calling
// ctl.dispatch(). No uv_signal_t: gracefulstop owns the signals.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <uv.h>

#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

namespace gs = gracefulstop;

namespace {

void check(int rc, const char *what) {
  if (rc < 0) {
    std::fprintf(stderr, "event=error call=%s error=\"%s\"\n", what, uv_strerror(rc));
    std::exit(1);
  }
}

struct client;

// Everything the callbacks reach through handle->data.
struct server {
  uv_loop_t *loop = nullptr;
  uv_tcp_t listener;
  gs::stop_controller *ctl = nullptr;
  uv_poll_t ctl_poll;
  uv_timer_t ctl_timer;
  std::map<unsigned, client *> clients;
  unsigned last_id = 0;
  // The drain and the close stage both wait for the last client handle to be closed.
  std::optional<gs::stage_completion> idle;
};

struct client {
  uv_tcp_t tcp; // first member: the handle pointer is the client pointer
  unsigned id;
  server *srv;
  const char *reason = "peer";
};

struct write_request {
  uv_write_t req;
  uv_buf_t buf;
};

// ---- controller glue ---------------------------------------------------------------------

void dispatch_controller(server *srv) {
  srv->ctl->dispatch();
  if (srv->ctl->state() == gs::controller_state::stopped) {
    uv_poll_stop(&srv->ctl_poll); // the fd belongs to the controller, which closes it on exit
    uv_timer_stop(&srv->ctl_timer);
    uv_stop(srv->loop);
    return;
  }
  // A stop in progress has deadlines (stage budgets, the stop's own); -1 means none pending.
  const int ms = srv->ctl->next_timeout_ms();
  if (ms < 0) {
    uv_timer_stop(&srv->ctl_timer);
  } else {
    uv_timer_start(
        &srv->ctl_timer, [](uv_timer_t *t) { dispatch_controller(static_cast<server *>(t->data)); },
        static_cast<std::uint64_t>(ms), 0);
  }
}

// ---- the echo server ---------------------------------------------------------------------

void on_client_closed(uv_handle_t *handle) {
  client *c = reinterpret_cast<client *>(handle);
  server *srv = c->srv;
  std::fprintf(stderr, "event=closed conn=%u reason=%s\n", c->id, c->reason);
  srv->clients.erase(c->id);
  delete c;
  if (srv->clients.empty() && srv->idle) {
    srv->idle->done();
    srv->idle.reset();
  }
}

void close_client(client *c, const char *reason) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t *>(&c->tcp))) return;
  c->reason = reason;
  uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp), on_client_closed);
}

void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  client *c = reinterpret_cast<client *>(stream);
  if (nread > 0) {
    // The read buffer becomes the write buffer; on_write frees it.
    auto *w = new write_request{};
    w->buf = uv_buf_init(buf->base, static_cast<unsigned>(nread));
    w->req.data = c;
    const int rc = uv_write(&w->req, stream, &w->buf, 1, [](uv_write_t *req, int status) {
      auto *done = reinterpret_cast<write_request *>(req);
      if (status == 0)
        std::fprintf(stderr, "event=echoed conn=%u bytes=%zu\n",
                     static_cast<client *>(req->data)->id, done->buf.len);
      delete[] done->buf.base;
      delete done;
    });
    if (rc < 0) {
      delete[] w->buf.base;
      delete w;
      close_client(c, "error");
    }
    return;
  }
  delete[] buf->base;
  if (nread == UV_EOF) {
    // Shut down our side once the queued echoes are written, then close: what the client sent
    // before it closed is still echoed in full.
    uv_read_stop(stream);
    auto *req = new uv_shutdown_t{};
    if (uv_shutdown(req, stream, [](uv_shutdown_t *r, int) {
          close_client(reinterpret_cast<client *>(r->handle), "peer");
          delete r;
        }) < 0) {
      delete req;
      close_client(c, "peer");
    }
  } else if (nread < 0) {
    close_client(c, "error");
  }
}

void on_connection(uv_stream_t *listener, int status) {
  server *srv = static_cast<server *>(listener->data);
  if (status < 0) return;
  auto *c = new client{};
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t *>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp),
             [](uv_handle_t *h) { delete reinterpret_cast<client *>(h); });
    return;
  }
  c->id = ++srv->last_id;
  srv->clients.emplace(c->id, c);
  std::fprintf(stderr, "event=accepted conn=%u\n", c->id);
  uv_read_start(
      reinterpret_cast<uv_stream_t *>(&c->tcp),
      [](uv_handle_t *, std::size_t suggested, uv_buf_t *buf) {
        *buf = uv_buf_init(new char[suggested], static_cast<unsigned>(suggested));
      },
      on_read);
}

} // namespace

int main(int argc, char **argv) try {
  const example::echo_server_arguments args(argc, argv, "gs_example_libuv");

  gs::stop_controller::options options;
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);
  // libuv writes with write(2), so a client that vanishes raises SIGPIPE. It is ignored through
  // the controller (the write then fails with EPIPE), not with a sigaction of our own.
  ctl.set_policy(SIGPIPE, gs::signal_policy::ignore());
  // Installed before libuv starts any thread: with the signalfd backend the signals are blocked
  // in this thread, and threads started later inherit that.
  ctl.install();

  server srv;
  srv.loop = uv_default_loop();
  srv.ctl = &ctl;
  check(uv_tcp_init(srv.loop, &srv.listener), "uv_tcp_init");
  srv.listener.data = &srv;
  sockaddr_in address{};
  check(uv_ip4_addr("127.0.0.1", args.port, &address), "uv_ip4_addr");
  check(uv_tcp_bind(&srv.listener, reinterpret_cast<const sockaddr *>(&address), 0), "bind");
  check(uv_listen(reinterpret_cast<uv_stream_t *>(&srv.listener), SOMAXCONN, on_connection),
        "listen");
  int length = sizeof address;
  check(uv_tcp_getsockname(&srv.listener, reinterpret_cast<sockaddr *>(&address), &length),
        "getsockname");

  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [&](gs::stage_context &) {
                   uv_close(reinterpret_cast<uv_handle_t *>(&srv.listener), nullptr);
                 }});
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &stage) {
                   if (srv.clients.empty()) return gs::stage_status::done;
                   srv.idle = stage.defer(); // completed by on_client_closed for the last one
                   return gs::stage_status::pending;
                 },
                 args.drain_budget});
  // uv_close completes on a later loop turn, so this stage is asynchronous too.
  ctl.add_stage({"close", gs::stage_kind::close, [&](gs::stage_context &stage) {
                   if (srv.clients.empty()) return gs::stage_status::done;
                   srv.idle = stage.defer();
                   for (auto &[id, c] : srv.clients)
                     close_client(c, "stop");
                   return gs::stage_status::pending;
                 }});

  check(uv_poll_init(srv.loop, &srv.ctl_poll, ctl.fd()), "uv_poll_init");
  srv.ctl_poll.data = &srv;
  check(uv_poll_start(
            &srv.ctl_poll, UV_READABLE,
            [](uv_poll_t *p, int, int) { dispatch_controller(static_cast<server *>(p->data)); }),
        "uv_poll_start");
  check(uv_timer_init(srv.loop, &srv.ctl_timer), "uv_timer_init");
  srv.ctl_timer.data = &srv;

  std::fprintf(stderr, "event=ready example=libuv port=%u\n", ntohs(address.sin_port));
  uv_run(srv.loop, UV_RUN_DEFAULT);
  ctl.exit_process(); // 0 for SIGTERM; for SIGINT, dies of SIGINT
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 1;
}
