// gracefulstop/diagnostics.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Which threads would receive a signal? With the signalfd backend every thread must block the
// handled signals; this reads each thread's mask from /proc/self/task/*/status (Linux) so a leak
// is named instead of discovered when a SIGTERM kills the process.
#ifndef GRACEFULSTOP_DIAGNOSTICS_HPP
#define GRACEFULSTOP_DIAGNOSTICS_HPP

#include <gracefulstop/detail/config.hpp>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <string>
#include <sys/types.h>
#include <vector>

namespace gracefulstop {

struct thread_mask_leak {
  pid_t tid = 0;
  std::vector<int> signals; ///< handled signals this thread does not block
};

/// Threads of this process that do not block some signal of `signals`. Empty where /proc is not
/// available (not Linux): the audit then cannot speak, and says nothing.
inline std::vector<thread_mask_leak> audit_thread_masks(const sigset_t &signals) {
  std::vector<thread_mask_leak> leaks;
  DIR *dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return leaks;
  while (dirent *entry = ::readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream status(std::string("/proc/self/task/") + entry->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.compare(0, 7, "SigBlk:") != 0) continue;
      // A hex mask; bit (n - 1) stands for signal n.
      const std::uint64_t blocked = std::strtoull(line.c_str() + 7, nullptr, 16);
      thread_mask_leak leak;
      leak.tid = static_cast<pid_t>(std::atoi(entry->d_name));
      for (int signo = 1; signo < 64 && signo < NSIG; ++signo)
        if (sigismember(&signals, signo) == 1 && (blocked & (std::uint64_t{1} << (signo - 1))) == 0)
          leak.signals.push_back(signo);
      if (!leak.signals.empty()) leaks.push_back(std::move(leak));
      break;
    }
  }
  ::closedir(dir);
  return leaks;
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_DIAGNOSTICS_HPP
