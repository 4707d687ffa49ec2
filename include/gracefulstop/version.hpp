// gracefulstop/version.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~
// Version of the headers in use, for compile-time checks and for reports.
#ifndef GRACEFULSTOP_VERSION_HPP
#define GRACEFULSTOP_VERSION_HPP

#define GRACEFULSTOP_VERSION_MAJOR 0
#define GRACEFULSTOP_VERSION_MINOR 1
#define GRACEFULSTOP_VERSION_PATCH 0
/// One number that grows with every release: major * 10000 + minor * 100 + patch.
#define GRACEFULSTOP_VERSION                                                                       \
  (GRACEFULSTOP_VERSION_MAJOR * 10000 + GRACEFULSTOP_VERSION_MINOR * 100 +                         \
   GRACEFULSTOP_VERSION_PATCH)
#define GRACEFULSTOP_VERSION_STRING "0.1.0"

#endif // GRACEFULSTOP_VERSION_HPP
