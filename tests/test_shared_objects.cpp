// One global state per process even when two shared objects each compile the headers: a signal
// installed through one must be seen by the other.
#include "support.hpp"

extern "C" void *gracefulstop_test_state_a();
extern "C" void *gracefulstop_test_state_b();

TEST_CASE("two shared objects and the executable share one global state", "[global]") {
  void *here = &gs::detail::state();
  CHECK(gracefulstop_test_state_a() == here);
  CHECK(gracefulstop_test_state_b() == here);
}
