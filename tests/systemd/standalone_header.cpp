// Compiled on its own by ctest under each compiler and standard: the optional header must not
// depend on anything a program happened to include before it.
#include <gracefulstop/systemd_notify.hpp>
