// A TCP echo server on a libevent event_base, stopped gracefully by gracefulstop.
//
//   gs_example_libevent [PORT [DRAIN_BUDGET_MS]]
//
// Same behaviour as the epoll example: on SIGTERM stop accepting, keep echoing for the open
// connections until their clients close (at most DRAIN_BUDGET_MS, default 5000), close the rest,
// exit 0; SIGINT the same under the default ^C policy, ending in death by SIGINT.
//
// The glue: event_new(base, ctl.fd(), EV_READ | EV_PERSIST, ...) and a timer event for
// ctl.next_timeout_ms(), both calling ctl.dispatch(). No evsignal_new: gracefulstop owns the
// signals.
#include <gracefulstop/stop.hpp>

#include "example_support.hpp" // the command line and the logfmt event hook

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <cstdio>
#include <map>
#include <netinet/in.h>
#include <optional>
#include <sys/socket.h>

namespace gs = gracefulstop;

namespace {

struct connection;

// Everything the callbacks reach through their void * argument.
struct server {
  event_base *base = nullptr;
  evconnlistener *listener = nullptr;
  gs::stop_controller *ctl = nullptr;
  event *ctl_readable = nullptr;
  event *ctl_timer = nullptr;
  std::map<unsigned, connection *> connections;
  unsigned last_id = 0;
  std::optional<gs::stage_completion> drained; // set while the drain waits for the last client
};

struct connection {
  bufferevent *bev;
  unsigned id;
  server *srv;
};

// ---- controller glue ---------------------------------------------------------------------

void on_controller(evutil_socket_t, short, void *arg) {
  server *srv = static_cast<server *>(arg);
  srv->ctl->dispatch();
  if (srv->ctl->state() == gs::controller_state::stopped) {
    event_del(srv->ctl_readable); // the fd belongs to the controller, which closes it on exit
    event_del(srv->ctl_timer);
    event_base_loopbreak(srv->base);
    return;
  }
  // A stop in progress has deadlines (stage budgets, the stop's own); -1 means none pending.
  const int ms = srv->ctl->next_timeout_ms();
  if (ms < 0) {
    event_del(srv->ctl_timer);
  } else {
    const timeval tv{ms / 1000, (ms % 1000) * 1000};
    event_add(srv->ctl_timer, &tv); // re-adding a pending timer reschedules it
  }
}

// ---- the echo server ---------------------------------------------------------------------

void close_connection(connection *c, const char *reason) {
  server *srv = c->srv;
  bufferevent_free(c->bev); // BEV_OPT_CLOSE_ON_FREE: closes the socket too
  std::fprintf(stderr, "event=closed conn=%u reason=%s\n", c->id, reason);
  srv->connections.erase(c->id);
  delete c;
  if (srv->connections.empty() && srv->drained) {
    srv->drained->done();
    srv->drained.reset();
  }
}

void on_read(bufferevent *bev, void *arg) {
  connection *c = static_cast<connection *>(arg);
  evbuffer *input = bufferevent_get_input(bev);
  const std::size_t n = evbuffer_get_length(input);
  evbuffer_add_buffer(bufferevent_get_output(bev), input); // moves, does not copy
  std::fprintf(stderr, "event=echoed conn=%u bytes=%zu\n", c->id, n);
}

// Called once the output buffer is empty, for a client that has already closed its side.
void on_flushed(bufferevent *, void *arg) {
  close_connection(static_cast<connection *>(arg), "peer");
}

void on_event(bufferevent *bev, short what, void *arg) {
  connection *c = static_cast<connection *>(arg);
  if (what & BEV_EVENT_ERROR) return close_connection(c, "error");
  if (what & BEV_EVENT_EOF) {
    // What the client sent before it closed is still echoed in full: close once it is written.
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) return close_connection(c, "peer");
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, nullptr, on_flushed, on_event, c);
  }
}

void on_accept(evconnlistener *, evutil_socket_t fd, sockaddr *, int, void *arg) {
  server *srv = static_cast<server *>(arg);
  bufferevent *bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (bev == nullptr) {
    evutil_closesocket(fd);
    return;
  }
  auto *c = new connection{bev, ++srv->last_id, srv};
  srv->connections.emplace(c->id, c);
  bufferevent_setcb(bev, on_read, nullptr, on_event, c);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  std::fprintf(stderr, "event=accepted conn=%u\n", c->id);
}

} // namespace

int main(int argc, char **argv) try {
  const example::echo_server_arguments args(argc, argv, "gs_example_libevent");

  gs::stop_controller::options options;
  options.on_event = example::log_event;
  gs::stop_controller ctl(options);
  // bufferevents write with writev(2), so a client that vanishes raises SIGPIPE. It is ignored
  // through the controller (the write then fails with EPIPE), not with a sigaction of our own.
  ctl.set_policy(SIGPIPE, gs::signal_policy::ignore());
  ctl.install();

  server srv;
  srv.ctl = &ctl;
  srv.base = event_base_new();
  if (srv.base == nullptr) {
    std::fprintf(stderr, "event=error call=event_base_new\n");
    return 1;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(args.port);
  srv.listener = evconnlistener_new_bind(
      srv.base, on_accept, &srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
      -1, reinterpret_cast<sockaddr *>(&address), sizeof address);
  if (srv.listener == nullptr) {
    std::fprintf(stderr, "event=error call=bind port=%u error=\"%s\"\n", args.port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(evconnlistener_get_fd(srv.listener), reinterpret_cast<sockaddr *>(&address), &length);

  ctl.add_stage({"stop-accepting", gs::stage_kind::stop_accepting, [&](gs::stage_context &) {
                   evconnlistener_free(srv.listener); // LEV_OPT_CLOSE_ON_FREE: closes the socket
                   srv.listener = nullptr;
                 }});
  ctl.add_stage({"drain", gs::stage_kind::drain,
                 [&](gs::stage_context &stage) {
                   if (srv.connections.empty()) return gs::stage_status::done;
                   srv.drained = stage.defer(); // completed by close_connection for the last one
                   return gs::stage_status::pending;
                 },
                 args.drain_budget});
  ctl.add_stage({"close", gs::stage_kind::close, [&](gs::stage_context &) {
                   srv.drained.reset(); // timed out or cancelled: nobody waits for it any more
                   while (!srv.connections.empty())
                     close_connection(srv.connections.begin()->second, "stop");
                 }});

  srv.ctl_readable = event_new(srv.base, ctl.fd(), EV_READ | EV_PERSIST, on_controller, &srv);
  srv.ctl_timer = evtimer_new(srv.base, on_controller, &srv);
  if (srv.ctl_readable == nullptr || srv.ctl_timer == nullptr ||
      event_add(srv.ctl_readable, nullptr) != 0) {
    std::fprintf(stderr, "event=error call=event_add\n");
    return 1;
  }

  std::fprintf(stderr, "event=ready example=libevent port=%u\n", ntohs(address.sin_port));
  event_base_dispatch(srv.base);
  ctl.exit_process(); // 0 for SIGTERM; for SIGINT, dies of SIGINT
} catch (const std::exception &e) {
  std::fprintf(stderr, "event=error error=\"%s\"\n", e.what());
  return 1;
}
