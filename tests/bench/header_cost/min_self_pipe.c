/* The same job as min_gracefulstop.cpp done by hand in C: SIGTERM and SIGINT through a self-pipe,
 * a poll() loop, exit 0 on SIGTERM and 130 on SIGINT. What a program costs with no library. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

static int wake[2];
static volatile sig_atomic_t caught;

static void on_signal(int signo) {
  const int saved = errno;
  const unsigned char byte = (unsigned char)signo;
  caught = signo;
  if (write(wake[1], &byte, 1) < 0) { /* a full pipe is already readable */
  }
  errno = saved;
}

int main(void) {
  if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) return 1;
  struct sigaction act = {0};
  act.sa_handler = on_signal;
  sigfillset(&act.sa_mask);
  act.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &act, 0) != 0 || sigaction(SIGINT, &act, 0) != 0) return 1;
  struct pollfd p = {wake[0], POLLIN, 0};
  while (!caught)
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return 1;
  return caught == SIGINT ? 130 : 0;
}
