// Built into its own shared object: returns the address of the process-wide state as this copy
// of the headers sees it.
#include <gracefulstop/stop.hpp>
extern "C" void *gracefulstop_test_state_a() {
  return &gracefulstop::detail::state();
}
