// The signal mechanisms under comparison, each behind one small interface so the latency and the
// burst benchmarks drive them identically: set up for one signal (and optionally one extra fd to
// watch, the burst's "done" marker), run the mechanism's own loop until the receiver says stop,
// and run single non-blocking iterations to drain what is left.
//
// Every mechanism runs in a fresh process (the benchmark forks one per measurement), so handlers,
// masks and the one-controller-per-process rule of gracefulstop never meet another mechanism.
//
// Each loop is written the way that library's documentation shows, with no tuning: the point is
// what a user gets.
#ifndef GRACEFULSTOP_BENCH_MECHANISMS_HPP
#define GRACEFULSTOP_BENCH_MECHANISMS_HPP

#include "bench_common.hpp"

#include <gracefulstop/stop.hpp>

#include <memory>
#include <string>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <vector>

#if GSB_HAVE_ASIO
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#endif
#if GSB_HAVE_LIBUV
#include <uv.h>
#endif
#if GSB_HAVE_LIBEVENT
#include <event2/event.h>
#endif
#if GSB_HAVE_SDEVENT
#include <systemd/sd-event.h>
#endif

namespace bench {

/// What a mechanism reports to.
struct receiver {
  virtual ~receiver() = default;
  /// One notification of the signal, standing for `deliveries` kernel deliveries (always 1 for
  /// mechanisms that have no count; gracefulstop passes signal_event::count).
  virtual void on_signal(std::uint64_t deliveries) = 0;
  /// The extra fd became readable; must consume what made it readable.
  virtual void on_extra() {}
  /// Set by on_signal/on_extra; the mechanism's run() returns soon after.
  bool stop = false;
  /// When the loop's wait last returned with something ready (now_ns()), for the loops this
  /// benchmark writes itself (gracefulstop's, the floors, the ablations); 0 for the libraries,
  /// whose loops have no such hook. Splits latency into the kernel's part and the loop's.
  std::uint64_t woke_ns = 0;
};

class mechanism {
public:
  virtual ~mechanism() = default;
  /// Installs the mechanism for `signo`; `extra_fd` (or -1) is watched for readability. Throws.
  virtual void setup(int signo, int extra_fd, receiver &r) = 0;
  /// Runs the mechanism's loop until the receiver sets stop.
  virtual void run() = 0;
  /// One loop iteration that does not wait.
  virtual void run_nonblocking() = 0;
};

enum class mechanism_kind {
  floor,        ///< the least a hand-written loop can do with that backend
  gracefulstop, ///< the product
  library,      ///< what users compare us with
  ablation,     ///< a raw loop that adds one of gracefulstop's costs at a time, to explain a gap
};

struct mechanism_info {
  const char *name;  ///< as on the command line and in the tables
  const char *label; ///< for humans
  const char *backend;
  const char *floor; ///< the raw loop of the same backend
  mechanism_kind kind;
  std::unique_ptr<mechanism> (*make)();
};

// ---- gracefulstop -----------------------------------------------------------------------------

/// The loop from stop_controller.hpp's own sketch: poll ctl.fd() (and the application's fds) with
/// ctl.next_timeout_ms(), dispatch when it is readable.
class gracefulstop_mechanism final : public mechanism {
public:
  explicit gracefulstop_mechanism(gracefulstop::backend b) : backend_(b) {}
  void setup(int signo, int extra_fd, receiver &r) override {
    namespace gs = gracefulstop;
    r_ = &r;
    extra_fd_ = extra_fd;
    gs::stop_controller::options o;
    o.which = backend_;
    o.default_policies = false; // SIGTERM/SIGINT keep their defaults, so the harness can end us
    ctl_ = std::make_unique<gs::stop_controller>(o);
    ctl_->set_policy(signo, gs::signal_policy::callback(
                                [this](const gs::signal_event &ev) { r_->on_signal(ev.count); }));
    ctl_->install();
    if (ctl_->active_backend() != backend_) fail("gracefulstop chose another backend");
  }
  void run() override {
    while (!r_->stop)
      iterate(ctl_->next_timeout_ms());
  }
  void run_nonblocking() override { iterate(0); }

private:
  void iterate(int timeout_ms) {
    pollfd fds[2] = {{ctl_->fd(), POLLIN, 0}, {extra_fd_, POLLIN, 0}};
    const int n = ::poll(fds, extra_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return; // self-pipe: the handler ran; its byte is in the pipe
      fail_errno("poll");
    }
    if (n > 0) r_->woke_ns = now_ns();
    if (fds[0].revents != 0 || n == 0) ctl_->dispatch();
    if (extra_fd_ >= 0 && fds[1].revents != 0) r_->on_extra();
  }

  gracefulstop::backend backend_;
  std::unique_ptr<gracefulstop::stop_controller> ctl_;
  receiver *r_ = nullptr;
  int extra_fd_ = -1;
};

// ---- raw floors --------------------------------------------------------------------------------

/// The least a program can do with signalfd: block, one signalfd, one epoll set, one read per
/// wakeup.
class raw_signalfd_mechanism final : public mechanism {
public:
  ~raw_signalfd_mechanism() override {
    if (sfd_ >= 0) ::close(sfd_);
    if (ep_ >= 0) ::close(ep_);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signo);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) fail_errno("sigprocmask");
    sfd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd_ < 0) fail_errno("signalfd");
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) fail_errno("epoll_create1");
    add(sfd_, 0);
    if (extra_fd >= 0) add(extra_fd, 1);
    extra_fd_ = extra_fd;
  }
  void run() override {
    while (!r_->stop)
      iterate(-1);
  }
  void run_nonblocking() override { iterate(0); }

private:
  void add(int fd, std::uint32_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) fail_errno("epoll_ctl");
  }
  void iterate(int timeout_ms) {
    epoll_event events[2];
    const int n = ::epoll_wait(ep_, events, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return;
      fail_errno("epoll_wait");
    }
    if (n > 0) r_->woke_ns = now_ns();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == 1) {
        r_->on_extra();
        continue;
      }
      signalfd_siginfo records[16];
      const ssize_t got = ::read(sfd_, records, sizeof records);
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        fail_errno("read signalfd");
      }
      for (ssize_t k = 0; k < got / static_cast<ssize_t>(sizeof(signalfd_siginfo)); ++k)
        r_->on_signal(1);
    }
  }
  receiver *r_ = nullptr;
  int sfd_ = -1;
  int ep_ = -1;
  int extra_fd_ = -1;
};

/// Ablation of gracefulstop's signalfd backend with no gracefulstop code: the loop poll()s an epoll
/// set that holds the signalfd (as ctl.fd() is), and with `with_pipe` the set also holds a pipe
/// that is drained (read, EAGAIN) before the signalfd is read, which is dispatch()'s exact system
/// call sequence. The steps floor -> nested -> nested+pipe -> gracefulstop split the gap into the
/// nesting, the extra read, and the library's own user-space work.
class signalfd_ablation_mechanism final : public mechanism {
public:
  explicit signalfd_ablation_mechanism(bool with_pipe) : with_pipe_(with_pipe) {}
  ~signalfd_ablation_mechanism() override {
    for (int fd : {sfd_, ep_, pipe_[0], pipe_[1]})
      if (fd >= 0) ::close(fd);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    extra_fd_ = extra_fd;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signo);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) fail_errno("sigprocmask");
    sfd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd_ < 0) fail_errno("signalfd");
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) fail_errno("epoll_create1");
    add(sfd_);
    if (with_pipe_) {
      if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) fail_errno("pipe2");
      add(pipe_[0]);
    }
  }
  void run() override {
    while (!r_->stop)
      iterate(-1);
  }
  void run_nonblocking() override { iterate(0); }

private:
  void add(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) fail_errno("epoll_ctl");
  }
  void iterate(int timeout_ms) {
    pollfd fds[2] = {{ep_, POLLIN, 0}, {extra_fd_, POLLIN, 0}};
    const int n = ::poll(fds, extra_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return;
      fail_errno("poll");
    }
    if (n > 0) r_->woke_ns = now_ns();
    if (fds[0].revents != 0) {
      if (with_pipe_) {
        unsigned char buffer[256];
        while (::read(pipe_[0], buffer, sizeof buffer) > 0) {
        }
      }
      signalfd_siginfo records[16];
      const ssize_t got = ::read(sfd_, records, sizeof records);
      for (ssize_t k = 0; k < got / static_cast<ssize_t>(sizeof(signalfd_siginfo)); ++k)
        r_->on_signal(1);
    }
    if (extra_fd_ >= 0 && fds[1].revents != 0) r_->on_extra();
  }
  bool with_pipe_;
  receiver *r_ = nullptr;
  int sfd_ = -1, ep_ = -1, extra_fd_ = -1;
  int pipe_[2] = {-1, -1};
};

namespace raw_self_pipe_detail {
inline int write_fd = -1;
extern "C" inline void on_signal_write_byte(int signo) {
  // Async-signal-safe: one write() to a non-blocking pipe, errno preserved.
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  [[maybe_unused]] const ssize_t ignored = ::write(write_fd, &byte, 1);
  errno = saved;
}
extern "C" inline void on_signal_info_write_byte(int signo, siginfo_t *, void *) {
  on_signal_write_byte(signo);
}
} // namespace raw_self_pipe_detail

/// How the raw self-pipe loop installs its handler.
enum class raw_handler {
  plain,             ///< sa_handler, empty mask: the classic
  like_gracefulstop, ///< SA_SIGINFO and a full mask, as gracefulstop installs its handler
  gracefulstop ///< gracefulstop's own handler (detail/handler.hpp: counters, then the wake byte)
};

/// The classic self-pipe: sigaction handler writes a byte, poll() watches the read end, one read
/// per wakeup, one callback per byte. With `like_gracefulstop` the handler is installed the way
/// gracefulstop installs its own (SA_SIGINFO, every signal blocked while it runs): an ablation
/// that separates the kernel's cost of that setup from the library's user-space work.
class raw_self_pipe_mechanism final : public mechanism {
public:
  explicit raw_self_pipe_mechanism(raw_handler how = raw_handler::plain) : how_(how) {}
  ~raw_self_pipe_mechanism() override {
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    extra_fd_ = extra_fd;
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) fail_errno("pipe2");
    read_fd_ = fds[0];
    raw_self_pipe_detail::write_fd = fds[1];
    struct sigaction act {};
    if (how_ == raw_handler::gracefulstop) {
      // An ablation only: the library's handler with the library's wake fd, and no controller.
      gracefulstop::detail::state().wake_fd.store(fds[1], std::memory_order_release);
      act.sa_sigaction = &gracefulstop_signal_handler;
      sigfillset(&act.sa_mask);
      act.sa_flags = SA_SIGINFO | SA_RESTART;
    } else if (how_ == raw_handler::like_gracefulstop) {
      act.sa_sigaction = &raw_self_pipe_detail::on_signal_info_write_byte;
      sigfillset(&act.sa_mask);
      act.sa_flags = SA_SIGINFO | SA_RESTART;
    } else {
      act.sa_handler = &raw_self_pipe_detail::on_signal_write_byte;
      sigemptyset(&act.sa_mask);
      act.sa_flags = SA_RESTART;
    }
    if (::sigaction(signo, &act, nullptr) != 0) fail_errno("sigaction");
  }
  void run() override {
    while (!r_->stop)
      iterate(-1);
  }
  void run_nonblocking() override { iterate(0); }

private:
  void iterate(int timeout_ms) {
    pollfd fds[2] = {{read_fd_, POLLIN, 0}, {extra_fd_, POLLIN, 0}};
    const int n = ::poll(fds, extra_fd_ >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return;
      fail_errno("poll");
    }
    if (n > 0) r_->woke_ns = now_ns();
    if (fds[0].revents != 0) {
      unsigned char buffer[256];
      const ssize_t got = ::read(read_fd_, buffer, sizeof buffer);
      for (ssize_t k = 0; k < got; ++k)
        r_->on_signal(1);
    }
    if (extra_fd_ >= 0 && fds[1].revents != 0) r_->on_extra();
  }
  raw_handler how_;
  receiver *r_ = nullptr;
  int read_fd_ = -1;
  int extra_fd_ = -1;
};

// ---- libraries ---------------------------------------------------------------------------------

#if GSB_HAVE_ASIO
/// Boost.Asio: a signal_set with a re-armed async_wait on an io_context.
class asio_mechanism final : public mechanism {
public:
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    signals_ = std::make_unique<boost::asio::signal_set>(io_, signo);
    arm();
    if (extra_fd >= 0) {
      const int copy = ::dup(extra_fd); // stream_descriptor owns (and closes) its fd
      if (copy < 0) fail_errno("dup");
      extra_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, copy);
      extra_->async_wait(boost::asio::posix::descriptor_base::wait_read,
                         [this](const boost::system::error_code &ec) {
                           if (ec) return;
                           const bool was = r_->stop;
                           r_->on_extra();
                           if (!was && r_->stop) io_.stop();
                         });
    }
  }
  void run() override {
    io_.restart();
    io_.run();
  }
  void run_nonblocking() override {
    io_.restart();
    io_.poll();
  }

private:
  void arm() {
    signals_->async_wait([this](const boost::system::error_code &ec, int) {
      if (ec) return;
      const bool was = r_->stop;
      r_->on_signal(1);
      arm();
      if (!was && r_->stop) io_.stop();
    });
  }
  receiver *r_ = nullptr;
  boost::asio::io_context io_{1};
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> extra_;
};
#endif

#if GSB_HAVE_LIBUV
/// libuv: uv_signal_start on a private loop.
class libuv_mechanism final : public mechanism {
public:
  ~libuv_mechanism() override {
    if (!initialised_) return;
    uv_signal_stop(&signal_);
    uv_close(reinterpret_cast<uv_handle_t *>(&signal_), nullptr);
    if (extra_fd_ >= 0) uv_close(reinterpret_cast<uv_handle_t *>(&extra_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT); // runs the close callbacks
    uv_loop_close(&loop_);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    extra_fd_ = extra_fd;
    check(uv_loop_init(&loop_), "uv_loop_init");
    initialised_ = true;
    check(uv_signal_init(&loop_, &signal_), "uv_signal_init");
    signal_.data = this;
    check(uv_signal_start(
              &signal_,
              [](uv_signal_t *h, int) {
                auto *self = static_cast<libuv_mechanism *>(h->data);
                const bool was = self->r_->stop;
                self->r_->on_signal(1);
                if (!was && self->r_->stop) uv_stop(&self->loop_);
              },
              signo),
          "uv_signal_start");
    if (extra_fd >= 0) {
      check(uv_poll_init(&loop_, &extra_, extra_fd), "uv_poll_init");
      extra_.data = this;
      check(uv_poll_start(&extra_, UV_READABLE,
                          [](uv_poll_t *h, int, int) {
                            auto *self = static_cast<libuv_mechanism *>(h->data);
                            uv_poll_stop(h);
                            const bool was = self->r_->stop;
                            self->r_->on_extra();
                            if (!was && self->r_->stop) uv_stop(&self->loop_);
                          }),
            "uv_poll_start");
    }
  }
  void run() override { uv_run(&loop_, UV_RUN_DEFAULT); }
  void run_nonblocking() override { uv_run(&loop_, UV_RUN_NOWAIT); }

private:
  static void check(int rc, const char *what) {
    if (rc != 0) fail(std::string(what) + ": " + uv_strerror(rc));
  }
  receiver *r_ = nullptr;
  bool initialised_ = false;
  int extra_fd_ = -1;
  uv_loop_t loop_{};
  uv_signal_t signal_{};
  uv_poll_t extra_{};
};
#endif

#if GSB_HAVE_LIBEVENT
/// libevent: evsignal_new on an event_base.
class libevent_mechanism final : public mechanism {
public:
  ~libevent_mechanism() override {
    if (signal_ != nullptr) event_free(signal_);
    if (extra_ != nullptr) event_free(extra_);
    if (base_ != nullptr) event_base_free(base_);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    base_ = event_base_new();
    if (base_ == nullptr) fail("event_base_new failed");
    signal_ = evsignal_new(
        base_, signo,
        [](evutil_socket_t, short, void *arg) {
          auto *self = static_cast<libevent_mechanism *>(arg);
          const bool was = self->r_->stop;
          self->r_->on_signal(1);
          // Break only on the transition: libevent calls this once per counted delivery, and a
          // break between those calls would drop the rest of them.
          if (!was && self->r_->stop) event_base_loopbreak(self->base_);
        },
        this);
    if (signal_ == nullptr || event_add(signal_, nullptr) != 0)
      fail("evsignal_new/event_add failed");
    if (extra_fd >= 0) {
      extra_ = event_new(
          base_, extra_fd, EV_READ,
          [](evutil_socket_t, short, void *arg) {
            auto *self = static_cast<libevent_mechanism *>(arg);
            const bool was = self->r_->stop;
            self->r_->on_extra();
            if (!was && self->r_->stop) event_base_loopbreak(self->base_);
          },
          this);
      if (extra_ == nullptr || event_add(extra_, nullptr) != 0) fail("event_new/event_add failed");
    }
  }
  void run() override {
    if (event_base_loop(base_, 0) < 0) fail("event_base_loop failed");
  }
  void run_nonblocking() override {
    if (event_base_loop(base_, EVLOOP_NONBLOCK) < 0) fail("event_base_loop failed");
  }

private:
  receiver *r_ = nullptr;
  event_base *base_ = nullptr;
  event *signal_ = nullptr;
  event *extra_ = nullptr;
};
#endif

#if GSB_HAVE_SDEVENT
/// systemd sd-event: sd_event_add_signal (signalfd inside), driven with sd_event_run.
class sdevent_mechanism final : public mechanism {
public:
  ~sdevent_mechanism() override {
    sd_event_source_unref(signal_);
    sd_event_source_unref(extra_);
    sd_event_unref(event_);
  }
  void setup(int signo, int extra_fd, receiver &r) override {
    r_ = &r;
    check(sd_event_new(&event_), "sd_event_new");
    // sd-event reads the signal from a signalfd, so the signal must be blocked (it refuses with
    // EBUSY otherwise).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signo);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) fail_errno("sigprocmask");
    check(sd_event_add_signal(
              event_, &signal_, signo,
              [](sd_event_source *, const signalfd_siginfo *, void *arg) {
                static_cast<sdevent_mechanism *>(arg)->r_->on_signal(1);
                return 0;
              },
              this),
          "sd_event_add_signal");
    if (extra_fd >= 0)
      check(sd_event_add_io(
                event_, &extra_, extra_fd, EPOLLIN,
                [](sd_event_source *s, int, std::uint32_t, void *arg) {
                  sd_event_source_set_enabled(s, SD_EVENT_OFF);
                  static_cast<sdevent_mechanism *>(arg)->r_->on_extra();
                  return 0;
                },
                this),
            "sd_event_add_io");
  }
  // sd_event_loop() ends with sd_event_exit(), after which the loop cannot run again; driving
  // sd_event_run() by hand lets the burst benchmark drain afterwards.
  void run() override {
    while (!r_->stop)
      check(sd_event_run(event_, UINT64_MAX), "sd_event_run");
  }
  void run_nonblocking() override { check(sd_event_run(event_, 0), "sd_event_run"); }

private:
  static void check(int rc, const char *what) {
    if (rc < 0) fail(std::string(what) + ": " + std::strerror(-rc));
  }
  receiver *r_ = nullptr;
  sd_event *event_ = nullptr;
  sd_event_source *signal_ = nullptr;
  sd_event_source *extra_ = nullptr;
};
#endif

/// Every mechanism compiled in, in table order: each floor first, then what is compared to it.
inline const std::vector<mechanism_info> &all_mechanisms() {
  using kind = mechanism_kind;
  static const std::vector<mechanism_info> list = [] {
    std::vector<mechanism_info> v;
    v.push_back({"raw-signalfd", "raw signalfd + epoll_wait (floor)", "signalfd", "raw-signalfd",
                 kind::floor,
                 [] { return std::unique_ptr<mechanism>(new raw_signalfd_mechanism); }});
    v.push_back({"gracefulstop-signalfd", "gracefulstop (signalfd)", "signalfd", "raw-signalfd",
                 kind::gracefulstop, [] {
                   return std::unique_ptr<mechanism>(
                       new gracefulstop_mechanism(gracefulstop::backend::signalfd));
                 }});
#if GSB_HAVE_SDEVENT
    v.push_back({"sd-event", "sd-event sd_event_add_signal", "signalfd", "raw-signalfd",
                 kind::library, [] { return std::unique_ptr<mechanism>(new sdevent_mechanism); }});
#endif
    v.push_back({"raw-self-pipe", "raw self-pipe + poll (floor)", "self-pipe", "raw-self-pipe",
                 kind::floor,
                 [] { return std::unique_ptr<mechanism>(new raw_self_pipe_mechanism); }});
    v.push_back({"gracefulstop-self-pipe", "gracefulstop (self-pipe)", "self-pipe", "raw-self-pipe",
                 kind::gracefulstop, [] {
                   return std::unique_ptr<mechanism>(
                       new gracefulstop_mechanism(gracefulstop::backend::self_pipe));
                 }});
#if GSB_HAVE_ASIO
    v.push_back({"asio", "Boost.Asio signal_set", "self-pipe", "raw-self-pipe", kind::library,
                 [] { return std::unique_ptr<mechanism>(new asio_mechanism); }});
#endif
#if GSB_HAVE_LIBUV
    v.push_back({"libuv", "libuv uv_signal", "self-pipe", "raw-self-pipe", kind::library,
                 [] { return std::unique_ptr<mechanism>(new libuv_mechanism); }});
#endif
#if GSB_HAVE_LIBEVENT
    v.push_back({"libevent", "libevent evsignal", "self-pipe", "raw-self-pipe", kind::library,
                 [] { return std::unique_ptr<mechanism>(new libevent_mechanism); }});
#endif
    v.push_back({"ablation-signalfd-nested", "raw signalfd in an epoll set, poll()ed", "signalfd",
                 "raw-signalfd", kind::ablation, [] {
                   return std::unique_ptr<mechanism>(new signalfd_ablation_mechanism(false));
                 }});
    v.push_back({"ablation-signalfd-nested-pipe",
                 "raw signalfd + pipe in an epoll set, poll()ed, pipe drained first", "signalfd",
                 "raw-signalfd", kind::ablation,
                 [] { return std::unique_ptr<mechanism>(new signalfd_ablation_mechanism(true)); }});
    v.push_back({"ablation-self-pipe-siginfo",
                 "raw self-pipe, handler installed as gracefulstop's (SA_SIGINFO, full mask)",
                 "self-pipe", "raw-self-pipe", kind::ablation, [] {
                   return std::unique_ptr<mechanism>(
                       new raw_self_pipe_mechanism(raw_handler::like_gracefulstop));
                 }});
    v.push_back({"ablation-self-pipe-gs-handler",
                 "raw self-pipe loop with gracefulstop's own signal handler", "self-pipe",
                 "raw-self-pipe", kind::ablation, [] {
                   return std::unique_ptr<mechanism>(
                       new raw_self_pipe_mechanism(raw_handler::gracefulstop));
                 }});
    return v;
  }();
  return list;
}

inline bool is_gracefulstop(const mechanism_info &m) {
  return m.kind == mechanism_kind::gracefulstop;
}
inline bool is_floor(const mechanism_info &m) {
  return m.kind == mechanism_kind::floor;
}
inline bool is_library(const mechanism_info &m) {
  return m.kind == mechanism_kind::library;
}

/// The mechanisms named in a comma-separated list ("" = all). Unknown names are an error.
inline std::vector<mechanism_info> select_mechanisms(const std::string &list) {
  if (list.empty()) return all_mechanisms();
  std::vector<mechanism_info> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    bool found = false;
    for (const mechanism_info &m : all_mechanisms())
      if (name == m.name) {
        out.push_back(m);
        found = true;
      }
    if (!found) {
      std::string known;
      for (const mechanism_info &m : all_mechanisms())
        known += std::string(known.empty() ? "" : ", ") + m.name;
      fail("unknown mechanism '" + name + "' (this build has: " + known + ")");
    }
    start = comma + 1;
  }
  return out;
}

} // namespace bench

#endif // GRACEFULSTOP_BENCH_MECHANISMS_HPP
