// version.hpp must agree with project(gracefulstop VERSION ...): the build passes the CMake
// version in, and this reports every macro that disagrees.
#include <gracefulstop/version.hpp>

#include <cstdio>
#include <cstring>

int main() {
  int wrong = 0;
  const auto check = [&](const char *what, long header, long cmake) {
    if (header == cmake) return;
    std::fprintf(stderr, "version.hpp %s is %ld, CMake's project version says %ld\n", what, header,
                 cmake);
    ++wrong;
  };
  check("GRACEFULSTOP_VERSION_MAJOR", GRACEFULSTOP_VERSION_MAJOR, CMAKE_VERSION_MAJOR);
  check("GRACEFULSTOP_VERSION_MINOR", GRACEFULSTOP_VERSION_MINOR, CMAKE_VERSION_MINOR);
  check("GRACEFULSTOP_VERSION_PATCH", GRACEFULSTOP_VERSION_PATCH, CMAKE_VERSION_PATCH);
  check("GRACEFULSTOP_VERSION", GRACEFULSTOP_VERSION,
        CMAKE_VERSION_MAJOR * 10000L + CMAKE_VERSION_MINOR * 100L + CMAKE_VERSION_PATCH);
  if (std::strcmp(GRACEFULSTOP_VERSION_STRING, CMAKE_VERSION_STRING) != 0) {
    std::fprintf(stderr, "version.hpp GRACEFULSTOP_VERSION_STRING is \"%s\", CMake says \"%s\"\n",
                 GRACEFULSTOP_VERSION_STRING, CMAKE_VERSION_STRING);
    ++wrong;
  }
  if (wrong == 0) std::printf("version.hpp matches CMake: %s\n", CMAKE_VERSION_STRING);
  return wrong == 0 ? 0 : 1;
}
