// Catch2 entry point for every test binary.
//
// CATCH_CONFIG_NO_POSIX_SIGNALS: Catch2's default main installs its own SIGINT/SIGTERM handlers
// and an alternate signal stack around each test case. This project's tests install, inspect and
// restore signal dispositions, so the harness must leave them alone.
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
