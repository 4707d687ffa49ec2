# Test plumbing shared by tests/ and examples/.
#
# Our own Catch2 main: the prebuilt Catch2WithMain installs SIGINT/SIGTERM handlers around every
# test case, which would hide or replace the dispositions these tests exist to check.
add_library(gracefulstop_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/main.cpp)
target_link_libraries(gracefulstop_catch_main PUBLIC Catch2::Catch2)
target_compile_features(gracefulstop_catch_main PUBLIC cxx_std_17)

# gracefulstop_add_catch_test(NAME src... [LIBS lib...])
# Builds a Catch2 test executable and registers each TEST_CASE as its own ctest test (so every
# case runs in a fresh process with pristine signal dispositions), with a timeout and a guard
# against silently empty runs.
function(gracefulstop_add_catch_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE gracefulstop::gracefulstop gracefulstop_catch_main ${ARG_LIBS})
  catch_discover_tests(${name}
    TEST_PREFIX "${name}: "
    PROPERTIES TIMEOUT ${ARG_TIMEOUT}
               FAIL_REGULAR_EXPRESSION "No tests ran"
               LABELS "${ARG_LABELS}")
endfunction()
