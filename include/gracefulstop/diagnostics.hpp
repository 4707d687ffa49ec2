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
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

namespace gracefulstop {

struct thread_mask_leak {
  pid_t tid = 0;
  std::vector<int> signals; ///< handled signals this thread does not block
};

/// Threads of this process that do not block some signal of `signals`. Empty where /proc is not
/// available (not Linux): the audit then cannot speak, and says nothing.
///
/// A thread that glibc is still starting runs with every signal blocked until it takes its
/// creator's mask, so it can look safe for a moment; the controller audits again at the first
/// dispatch() for that reason.
inline std::vector<thread_mask_leak> audit_thread_masks(const sigset_t &signals) {
  std::vector<thread_mask_leak> leaks;
  DIR *dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return leaks;
  while (dirent *entry = ::readdir(dir)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    // Plain open/read: the status file is small, and <fstream> would cost every user of the
    // library its compile time.
    const std::string path = std::string("/proc/self/task/") + entry->d_name + "/status";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue; // the thread has exited meanwhile
    char text[4096];
    const ssize_t n = ::read(fd, text, sizeof text - 1);
    ::close(fd);
    if (n <= 0) continue;
    text[n] = '\0';
    const char *line = std::strstr(text, "\nSigBlk:");
    if (line == nullptr) continue;
    // A hex mask; bit (n - 1) stands for signal n.
    const std::uint64_t blocked = std::strtoull(line + 8, nullptr, 16);
    thread_mask_leak leak;
    leak.tid = static_cast<pid_t>(std::atoi(entry->d_name));
    for (int signo = 1; signo < 64 && signo < NSIG; ++signo)
      if (sigismember(&signals, signo) == 1 && (blocked & (std::uint64_t{1} << (signo - 1))) == 0)
        leak.signals.push_back(signo);
    if (!leak.signals.empty()) leaks.push_back(std::move(leak));
  }
  ::closedir(dir);
  return leaks;
}

} // namespace gracefulstop

#endif // GRACEFULSTOP_DIAGNOSTICS_HPP
