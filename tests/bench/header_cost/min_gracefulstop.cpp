// The smallest complete gracefulstop program: SIGTERM and SIGINT with the default policies, the
// built-in loop, and the exit the policy asks for.
#include <gracefulstop/stop.hpp>

int main() {
  gracefulstop::stop_controller ctl;
  ctl.install();
  gracefulstop::poll_loop loop;
  loop.run(ctl);
  ctl.exit_process();
}
