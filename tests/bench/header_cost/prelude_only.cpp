// A typical daemon translation unit without gracefulstop.
#include "daemon_prelude.hpp"
