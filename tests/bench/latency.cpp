// Signal delivery latency: from kill() in another process to the moment the event loop's callback
// runs, for gracefulstop's two backends, the raw loops that are the floor of each backend, and
// the signal facilities of Boost.Asio, libuv, libevent and sd-event.
//
// One measurement: a receiver process (pinned to one CPU) sets up a mechanism for SIGUSR1 with a
// callback; a sender process (pinned to another CPU) repeatedly waits for the receiver's ack
// byte on a pipe, writes CLOCK_MONOTONIC into shared memory and calls kill(). The callback reads
// the clock, stores the difference and writes the ack. One signal is in flight at a time, so no
// signal is coalesced, and nothing ever sleeps.
//
// Shared machines drift: the samples of every mechanism are spread over R rounds, and in each
// round every mechanism runs once, in a rotated order, so slow periods hit all of them alike.
// Ratios to the floor of the same backend are computed from the same run.
#include "mechanisms.hpp"

#include <atomic>
#include <map>

namespace {

using namespace bench;

constexpr int latency_signal = SIGUSR1;

struct round_shared {
  std::atomic<std::uint64_t> send_ns{0};
  std::uint64_t recorded = 0;
  std::uint64_t extra_notifications = 0; ///< notifications standing for more than one delivery
  std::uint64_t syscalls = 0;            ///< receiver syscalls while the loop ran
  bool syscalls_counted = false;
  bool loop_split = true; ///< every sample had a wait-return time (our own loops only)
  char error[256] = {};
  // followed by the samples (nanoseconds): total latency, then the loop's part of each
};

class latency_receiver final : public receiver {
public:
  latency_receiver(round_shared &s, std::uint64_t *samples, std::uint64_t *loop_samples,
                   std::uint64_t warmup, std::uint64_t total, int ack_fd)
      : s_(s), samples_(samples), loop_samples_(loop_samples), warmup_(warmup), total_(total),
        ack_fd_(ack_fd) {}
  void on_signal(std::uint64_t deliveries) override {
    const std::uint64_t arrived = now_ns();
    const std::uint64_t sent = s_.send_ns.load(std::memory_order_acquire);
    if (seen_ >= warmup_ && seen_ - warmup_ < total_ - warmup_) {
      samples_[seen_ - warmup_] = arrived - sent;
      if (woke_ns != 0 && woke_ns >= sent)
        loop_samples_[seen_ - warmup_] = arrived - woke_ns;
      else
        s_.loop_split = false;
    }
    woke_ns = 0;
    if (deliveries != 1) s_.extra_notifications += 1;
    seen_ += deliveries;
    if (seen_ >= total_)
      stop = true; // no ack: the sender has sent its last and may be gone (the pipe would EPIPE)
    else
      write_byte(ack_fd_); // lets the sender send the next one
  }
  std::uint64_t seen() const { return seen_; }

private:
  round_shared &s_;
  std::uint64_t *samples_;
  std::uint64_t *loop_samples_;
  std::uint64_t warmup_, total_;
  std::uint64_t seen_ = 0;
  int ack_fd_;
};

struct result {
  const mechanism_info *info = nullptr;
  std::vector<std::uint64_t> samples;     // all rounds, unsorted until summarised
  std::vector<std::uint64_t> loop_part;   // wait returns -> callback, per sample
  std::vector<std::uint64_t> kernel_part; // kill() -> wait returns, per sample
  bool loop_split = true;
  std::vector<double> round_medians;       // per round, nanoseconds
  std::uint64_t syscalls = 0, signals = 0; // receiver-side, summed over rounds
  bool syscalls_counted = true;
  std::uint64_t extra_notifications = 0;
  std::string error;
};

/// One round of one mechanism: fork receiver and sender, wait for both (bounded), collect.
void run_round(result &res, std::uint64_t samples, std::uint64_t warmup, bool pin) {
  const std::uint64_t total = warmup + samples;
  shared<round_shared> s(2 * sizeof(std::uint64_t) * samples);
  std::uint64_t *sample_area = s.tail<std::uint64_t>();
  std::uint64_t *loop_area = sample_area + samples;
  pipe_pair ack, life;

  const pid_t receiver_pid = fork_child([&] {
    life.close_read();
    ack.close_read();
    try {
      if (pin) pin_to_cpu(0);
      latency_receiver r(*s, sample_area, loop_area, warmup, total, ack.write);
      std::unique_ptr<mechanism> m = res.info->make();
      m->setup(latency_signal, -1, r);
      std::string why_not;
      std::optional<tracepoint_counter> syscalls =
          tracepoint_counter::open("raw_syscalls/sys_enter", "", why_not);
      if (syscalls) syscalls->reset_and_enable();
      write_byte(ack.write, 'r'); // ready: the first "ack"
      m->run();
      if (syscalls) {
        syscalls->disable();
        s->syscalls = syscalls->value();
        s->syscalls_counted = true;
      }
      s->recorded = r.seen() > warmup ? r.seen() - warmup : 0;
    } catch (const std::exception &e) {
      set_text(s->error, e.what());
      throw;
    }
  });
  const pid_t sender_pid = fork_child([&] {
    life.close_read();
    ack.close_write();
    if (pin) pin_to_cpu(1);
    for (std::uint64_t i = 0; i < total; ++i) {
      if (!read_byte(ack.read)) return; // the receiver is gone; the parent reports why
      s->send_ns.store(now_ns(), std::memory_order_release);
      if (::kill(receiver_pid, latency_signal) != 0) fail_errno("kill");
    }
  });
  life.close_write();
  ack.close_read();
  ack.close_write();

  // Generous: a healthy round takes well under 100 us per signal even on a loaded machine.
  const int timeout_ms = 20000 + static_cast<int>(total / 10);
  const std::optional<std::vector<int>> statuses =
      wait_children({receiver_pid, sender_pid}, life.read, timeout_ms);
  if (!statuses) {
    res.error = "timed out after " + std::to_string(timeout_ms) + " ms";
    return;
  }
  if (!exited_cleanly((*statuses)[0]) || !exited_cleanly((*statuses)[1])) {
    res.error = s->error[0] ? std::string(s->error)
                            : "receiver " + describe_status((*statuses)[0]) + ", sender " +
                                  describe_status((*statuses)[1]);
    return;
  }
  if (s->recorded != samples) {
    res.error = "receiver recorded " + std::to_string(s->recorded) + " of " +
                std::to_string(samples) + " samples";
    return;
  }
  std::vector<std::uint64_t> round(sample_area, sample_area + samples);
  res.samples.insert(res.samples.end(), round.begin(), round.end());
  res.loop_split = res.loop_split && s->loop_split;
  if (res.loop_split)
    for (std::uint64_t i = 0; i < samples; ++i) {
      res.loop_part.push_back(loop_area[i]);
      res.kernel_part.push_back(sample_area[i] - loop_area[i]);
    }
  std::sort(round.begin(), round.end());
  res.round_medians.push_back(static_cast<double>(percentile(round, 50)));
  res.syscalls += s->syscalls;
  res.signals += total;
  res.syscalls_counted = res.syscalls_counted && s->syscalls_counted;
  res.extra_notifications += s->extra_notifications;
}

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

} // namespace

int main(int argc, char **argv) {
  args a(argc, argv,
         "gs_bench_latency [--samples N] [--rounds R] [--quick] [--mech a,b,...] [--md FILE] "
         "[--csv FILE] [--cdf-dir DIR] [--no-pin]");
  const bool quick = a.flag("--quick");
  const std::uint64_t samples = a.number("--samples", quick ? 400 : 20000, 10, 10000000);
  const std::uint64_t rounds_default = std::clamp<std::uint64_t>(samples / 1000, 1, 20);
  const std::uint64_t rounds = a.number("--rounds", quick ? 2 : rounds_default, 1, 1000);
  const std::string mech_list = a.value("--mech").value_or("");
  const std::string md_path = a.value("--md").value_or("");
  const std::string csv_path = a.value("--csv").value_or("");
  const std::string cdf_dir = a.value("--cdf-dir").value_or("");
  const bool no_pin = a.flag("--no-pin");
  a.done();
  if (samples < rounds) a.bad("--samples must be at least --rounds");

  try {
    const std::vector<mechanism_info> mechs = select_mechanisms(mech_list);
    const bool pin = !no_pin && usable_cpus() >= 2;
    const std::uint64_t warmup = quick ? 20 : 200;
    std::vector<result> results;
    for (const mechanism_info &m : mechs)
      results.emplace_back().info = &m;

    // Rounds: samples split evenly (the first rounds take the remainder); order rotated.
    for (std::uint64_t round = 0; round < rounds; ++round) {
      const std::uint64_t n = samples / rounds + (round < samples % rounds ? 1 : 0);
      for (std::size_t k = 0; k < results.size(); ++k) {
        result &r = results[(k + round) % results.size()];
        if (!r.error.empty()) continue;
        run_round(r, n, warmup, pin);
        if (!r.error.empty())
          std::fprintf(stderr, "latency: %s: %s\n", r.info->name, r.error.c_str());
      }
    }

    // ---- summarise ----
    std::map<std::string, double> median_of_mech;
    std::map<std::string, const result *> by_name;
    for (result &r : results) {
      std::sort(r.samples.begin(), r.samples.end());
      by_name[r.info->name] = &r;
      if (r.error.empty())
        median_of_mech[r.info->name] = static_cast<double>(percentile(r.samples, 50));
    }
    csv_sink csv(csv_path);
    const std::string table_head =
        "| Mechanism | Backend | Median µs | p90 µs | p99 µs | Max µs | Median / floor | "
        "Per-round ratio (min–max) | Syscalls per signal |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
    auto row_for = [&](const result &r, bool record) -> std::string {
      const mechanism_info &m = *r.info;
      if (!r.error.empty()) {
        if (!record) return {};
        csv.row("latency", m.name, "median", "n/a", "us");
        std::printf("bench=latency mechanism=%s error=\"%s\"\n", m.name, r.error.c_str());
        return std::string("| ") + m.label + " | " + m.backend + " | failed: " + r.error +
               " | | | | | | |\n";
      }
      const double med = median_of_mech.at(m.name);
      const std::uint64_t p90 = percentile(r.samples, 90), p99 = percentile(r.samples, 99),
                          mx = r.samples.back();
      std::string ratio = "n/a", range = "n/a", ratio_value;
      const result *floor_res = by_name.count(m.floor) ? by_name.at(m.floor) : nullptr;
      if (median_of_mech.count(m.floor)) {
        ratio_value = fmt(med / median_of_mech.at(m.floor), 4);
        ratio = fmt(med / median_of_mech.at(m.floor)) + "×";
        if (floor_res->round_medians.size() == r.round_medians.size()) {
          std::vector<double> per_round;
          for (std::size_t i = 0; i < r.round_medians.size(); ++i)
            per_round.push_back(r.round_medians[i] / floor_res->round_medians[i]);
          std::sort(per_round.begin(), per_round.end());
          range = fmt(per_round.front()) + "–" + fmt(per_round.back());
        }
      }
      if (is_floor(m)) ratio = "1.00× (floor)", range = "—";
      const std::string syscalls =
          r.syscalls_counted && r.signals > 0
              ? fmt(static_cast<double>(r.syscalls) / static_cast<double>(r.signals), 2)
              : "n/a";
      std::string row = std::string("| ") + m.label + " | " + m.backend + " | " +
                        fmt(med / 1000.0) + " | " + fmt(us(p90)) + " | " + fmt(us(p99)) + " | " +
                        fmt(us(mx)) + " | " + ratio + " | " + range + " | " + syscalls + " |\n";
      if (!record) return row;
      csv.row("latency", m.name, "median", fmt(med / 1000.0, 3), "us", m.floor, ratio_value);
      csv.row("latency", m.name, "p90", fmt(us(p90), 3), "us");
      csv.row("latency", m.name, "p99", fmt(us(p99), 3), "us");
      csv.row("latency", m.name, "max", fmt(us(mx), 3), "us");
      csv.row("latency", m.name, "samples", std::to_string(r.samples.size()), "count");
      csv.row("latency", m.name, "syscalls_per_signal", syscalls, "count");
      std::printf("bench=latency mechanism=%s backend=%s samples=%zu median_us=%s p90_us=%s "
                  "p99_us=%s max_us=%s floor=%s ratio_to_floor=%s syscalls_per_signal=%s\n",
                  m.name, m.backend, r.samples.size(), fmt(med / 1000.0, 3).c_str(),
                  fmt(us(p90), 3).c_str(), fmt(us(p99), 3).c_str(), fmt(us(mx), 3).c_str(), m.floor,
                  ratio_value.empty() ? "n/a" : ratio_value.c_str(), syscalls.c_str());
      if (!cdf_dir.empty() && m.kind != mechanism_kind::ablation) {
        // 1000 evenly spaced quantiles are plenty for a plot and keep the SVG small.
        std::string dat = "# latency_us cumulative_fraction (" + std::string(m.name) + ")\n";
        const std::size_t points = std::min<std::size_t>(1000, r.samples.size());
        for (std::size_t i = 1; i <= points; ++i) {
          const std::size_t idx = (i * r.samples.size()) / points - 1;
          dat += fmt(us(r.samples[idx]), 3) + " " +
                 fmt(static_cast<double>(idx + 1) / static_cast<double>(r.samples.size()), 5) +
                 "\n";
        }
        write_file(cdf_dir + "/latency-" + m.name + ".dat", dat);
      }
      if (r.extra_notifications > 0)
        std::fprintf(stderr, "latency: %s: %llu notifications stood for more than one delivery\n",
                     m.name, static_cast<unsigned long long>(r.extra_notifications));
      return row;
    };

    std::string md;
    md += "## Signal delivery latency\n\n";
    md += "`kill(SIGUSR1)` from another process to the loop's callback, CLOCK_MONOTONIC; " +
          std::to_string(samples) + " samples per mechanism in " + std::to_string(rounds) +
          " rounds (each round runs every mechanism once, in rotated order), after " +
          std::to_string(warmup) +
          " unrecorded warm-up signals per round. One signal in flight: the sender sends the next "
          "only after the callback's ack on a pipe, so nothing is coalesced and nothing sleeps. ";
    md += pin ? "Receiver pinned to the first CPU, sender to the second.\n\n"
              : "Not pinned (fewer than 2 CPUs, or --no-pin).\n\n";
    md += "gracefulstop runs the loop its header sketches: `poll(ctl.fd())` with "
          "`ctl.next_timeout_ms()`, then `ctl.dispatch()` once the fd is readable, with a "
          "`signal_policy::callback` for SIGUSR1. Each library runs its own loop as its "
          "documentation shows. Ratios are to the floor of the same backend, from this run.\n\n";
    md += table_head;
    bool any_ablation = false;
    for (const result &r : results) {
      const std::string row = row_for(r, true); // also records the CSV rows and the logfmt line
      if (r.info->kind == mechanism_kind::ablation)
        any_ablation = true;
      else
        md += row;
    }

    // ---- targets ----
    md += "\nTargets (medians of this run):\n\n";
    for (const result &r : results) {
      if (!is_gracefulstop(*r.info)) continue;
      const mechanism_info &m = *r.info;
      if (!r.error.empty() || !median_of_mech.count(m.floor)) {
        md += std::string("- ") + m.label + ": not measured.\n";
        continue;
      }
      const double med = median_of_mech.at(m.name);
      const double ratio = med / median_of_mech.at(m.floor);
      md += std::string("- ") + m.label + " within 1.15× of its floor (" +
            by_name.at(m.floor)->info->label + "): " + fmt(ratio) + "× — **" +
            (ratio <= 1.15 ? "met" : "missed") + "**.\n";
      std::string lower, lower_same_backend;
      for (const result &other : results) {
        if (!is_library(*other.info) || !median_of_mech.count(other.info->name)) continue;
        const double om = median_of_mech.at(other.info->name);
        if (om >= med) continue;
        const std::string what = std::string(other.info->label) + " " + fmt(om / 1000.0) + " µs, " +
                                 fmt((med / om - 1) * 100, 1) + " % below";
        lower += (lower.empty() ? "" : "; ") + what;
        if (std::string_view(other.info->backend) == m.backend)
          lower_same_backend += (lower_same_backend.empty() ? "" : "; ") + what;
      }
      md += std::string("- ") + m.label + " median " + fmt(med / 1000.0) +
            " µs at or below every library's: **" + (lower.empty() ? "met" : "missed") + "**" +
            (lower.empty() ? "" : " (" + lower + ")") + "; against the libraries on the same " +
            "backend only: **" + (lower_same_backend.empty() ? "met" : "missed") + "**.\n";
      csv.row("latency-target", m.name, "ratio_to_floor_max_1.15", fmt(ratio, 4), "ratio", m.floor,
              ratio <= 1.15 ? "met" : "missed");
      csv.row("latency-target", m.name, "at_or_below_every_library", lower.empty() ? "1" : "0",
              "bool", "", lower.empty() ? "met" : "missed");
    }
    md += "\nSyscalls per signal are the receiver's, counted with the `raw_syscalls:sys_enter` "
          "tracepoint over the whole loop (warm-up included) and divided by the signals sent; they "
          "include the benchmark's own ack `write()`. A handler-based mechanism also pays the "
          "interrupted `poll`/`epoll_wait` and `rt_sigreturn`. The tails (p99, max) are mostly the "
          "receiver waiting for its CPU on a shared machine; compare medians.\n\n";
    if (any_ablation) {
      md += "### Where the time goes\n\n"
            "The loops this benchmark writes itself (gracefulstop's, the floors and the "
            "ablations) also note when their `poll()`/`epoll_wait()` returned, which splits each "
            "sample into the kernel's part (`kill()` until the wait returns: signal generation, "
            "wakeup, scheduling, and for a handler the handler and the interrupted wait) and the "
            "loop's part (the wait returns until the callback runs: reading the fds and the "
            "library's own work). That note is one more clock read (tens of nanoseconds) in those "
            "loops only, floors and gracefulstop alike. The ablations are raw loops that add one "
            "of gracefulstop's costs at a time, as gracefulstop " GRACEFULSTOP_VERSION_STRING
            " works: for signalfd, `ctl.fd()` is an epoll set holding the signalfd and "
            "the wake pipe that the application `poll()`s (the ablation that also drains that "
            "pipe on every dispatch shows what gracefulstop no longer pays: it reads the pipe "
            "only when a wake byte was written); for the self-pipe, "
            "gracefulstop installs its handler with `SA_SIGINFO` and a full mask, and its handler "
            "counts the delivery in atomics before it writes the wake byte (the last ablation is "
            "the raw loop with that very handler, so what remains is `dispatch()`).\n\n";
      md += "| Mechanism | Median µs | Median / floor | Kernel part, median µs | Loop part, median "
            "µs | Syscalls per signal |\n|---|---:|---:|---:|---:|---:|\n";
      for (const char *backend : {"signalfd", "self-pipe"}) {
        for (mechanism_kind k :
             {mechanism_kind::floor, mechanism_kind::ablation, mechanism_kind::gracefulstop}) {
          for (result &r : results) {
            const mechanism_info &m = *r.info;
            if (m.kind != k || std::string_view(m.backend) != backend || !r.error.empty()) continue;
            const double med = median_of_mech.at(m.name);
            std::string kernel = "n/a", loop = "n/a";
            if (r.loop_split && !r.loop_part.empty()) {
              std::sort(r.loop_part.begin(), r.loop_part.end());
              std::sort(r.kernel_part.begin(), r.kernel_part.end());
              kernel = fmt(us(percentile(r.kernel_part, 50)));
              loop = fmt(us(percentile(r.loop_part, 50)));
              csv.row("latency-split", m.name, "kernel_part_median",
                      fmt(us(percentile(r.kernel_part, 50)), 3), "us");
              csv.row("latency-split", m.name, "loop_part_median",
                      fmt(us(percentile(r.loop_part, 50)), 3), "us");
            }
            const std::string ratio =
                median_of_mech.count(m.floor) ? fmt(med / median_of_mech.at(m.floor)) + "×" : "n/a";
            const std::string syscalls =
                r.syscalls_counted && r.signals > 0
                    ? fmt(static_cast<double>(r.syscalls) / static_cast<double>(r.signals), 2)
                    : "n/a";
            md += std::string("| ") + m.label + " | " + fmt(med / 1000.0) + " | " + ratio + " | " +
                  kernel + " | " + loop + " | " + syscalls + " |\n";
          }
        }
      }
      md += "\n";
    }
    write_file(md_path, md);

    bool ok = true;
    for (const result &r : results)
      ok = ok && r.error.empty();
    return ok ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "gs_bench_latency: %s\n", e.what());
    return 1;
  }
}
