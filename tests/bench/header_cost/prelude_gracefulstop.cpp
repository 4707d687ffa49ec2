// The same translation unit with gracefulstop.
#include "daemon_prelude.hpp"

#include <gracefulstop/stop.hpp>
