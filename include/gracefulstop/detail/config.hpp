// gracefulstop/detail/config.hpp
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Capability macros. Every one can be forced from the command line, so a user can test the
// portable path on Linux or opt out of a feature.
#ifndef GRACEFULSTOP_DETAIL_CONFIG_HPP
#define GRACEFULSTOP_DETAIL_CONFIG_HPP

#include <gracefulstop/version.hpp>

#if __cplusplus < 201703L
#error "gracefulstop needs C++17 or later"
#endif

// signalfd exists only on Linux; GRACEFULSTOP_DISABLE_SIGNALFD leaves only the self-pipe.
#if !defined(GRACEFULSTOP_HAS_SIGNALFD)
#if defined(__linux__) && !defined(GRACEFULSTOP_DISABLE_SIGNALFD)
#define GRACEFULSTOP_HAS_SIGNALFD 1
#else
#define GRACEFULSTOP_HAS_SIGNALFD 0
#endif
#endif

// std::stop_token arrives with std::jthread in C++20's library.
#if !defined(GRACEFULSTOP_HAS_STD_STOP_TOKEN)
#if __has_include(<version>)
#include <version>
#endif
#if defined(__cpp_lib_jthread) && __cpp_lib_jthread >= 201911L
#define GRACEFULSTOP_HAS_STD_STOP_TOKEN 1
#else
#define GRACEFULSTOP_HAS_STD_STOP_TOKEN 0
#endif
#endif

// The process-wide state must be one object even when several shared objects each compile the
// headers. Default visibility lets the dynamic linker unify the inline function's static.
#if defined(__GNUC__) || defined(__clang__)
#define GRACEFULSTOP_VISIBLE __attribute__((visibility("default")))
#else
#define GRACEFULSTOP_VISIBLE
#endif

#endif // GRACEFULSTOP_DETAIL_CONFIG_HPP
