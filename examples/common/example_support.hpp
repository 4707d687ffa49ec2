// What the examples share that has nothing to do with their loops: reading the command line and
// logging gracefulstop's events. Kept here so that each example's own file shows its loop and its
// stop, not this.
#ifndef GRACEFULSTOP_EXAMPLES_EXAMPLE_SUPPORT_HPP
#define GRACEFULSTOP_EXAMPLES_EXAMPLE_SUPPORT_HPP

#include <gracefulstop/event.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace example {

/// The event hook every example installs: one logfmt line per event on stderr, e.g.
/// `event=stage stage=drain elapsed_ms=3 outcome=done`.
inline void log_event(const gracefulstop::event &e) {
  std::fprintf(stderr, "%s\n", gracefulstop::to_logfmt(e).c_str());
}

/// Optional positional arguments. Bad input ends the process with status 2 and a message that
/// names the program, the argument, what it must be and what it was; -h or --help prints the
/// usage line on stdout and exits 0.
class command_line {
public:
  /// `synopsis` is what follows the program name in the usage line, e.g. "[PORT [STATE_FILE]]";
  /// more than `max_arguments` arguments is an error.
  command_line(int argc, char **argv, const char *program, const char *synopsis, int max_arguments)
      : argc_(argc), argv_(argv), program_(program) {
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
        std::printf("usage: %s %s\n", program, synopsis);
        std::exit(0);
      }
    }
    if (argc - 1 > max_arguments) {
      std::fprintf(stderr, "%s: expected at most %d arguments, got %d\nusage: %s %s\n", program,
                   max_arguments, argc - 1, program, synopsis);
      std::exit(2);
    }
  }

  /// Argument `position` (1 = the first), or `fallback` if it was not given.
  const char *text(int position, const char *fallback) const {
    return position < argc_ ? argv_[position] : fallback;
  }

  /// Argument `position` as a decimal integer in min..max, or `fallback` if it was not given.
  long number(int position, const char *name, long min, long max, long fallback) const {
    if (position >= argc_) return fallback;
    const char *text = argv_[position];
    char *end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
      std::fprintf(stderr, "%s: %s must be an integer in %ld..%ld, got \"%s\"\n", program_, name,
                   min, max, text);
      std::exit(2);
    }
    return value;
  }

private:
  int argc_;
  char **argv_;
  const char *program_;
};

/// The command line of the four TCP echo servers: [PORT [DRAIN_BUDGET_MS]].
struct echo_server_arguments {
  std::uint16_t port;                     ///< on 127.0.0.1; 0 lets the kernel choose
  std::chrono::milliseconds drain_budget; ///< how long the drain waits for open connections

  echo_server_arguments(int argc, char **argv, const char *program) {
    const command_line args(argc, argv, program, "[PORT [DRAIN_BUDGET_MS]]", 2);
    port = static_cast<std::uint16_t>(args.number(1, "PORT", 0, 65535, 0));
    drain_budget = std::chrono::milliseconds(args.number(2, "DRAIN_BUDGET_MS", 1, 3600000, 5000));
  }
};

} // namespace example

#endif // GRACEFULSTOP_EXAMPLES_EXAMPLE_SUPPORT_HPP
