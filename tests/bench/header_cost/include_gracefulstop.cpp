// What every user of gracefulstop pays to compile: the one public include.
#include <gracefulstop/stop.hpp>
