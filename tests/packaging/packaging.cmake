# Packaging tests, run with `cmake -DSTEP=<step> ... -P packaging.cmake` (see CMakeLists.txt).
# Each step does what a user of the package would do, and fails with the command's output.
#
# Inputs: STEP, SOURCE_DIR, WORK_DIR, GENERATOR, CXX, CXX_FLAGS, EXPECTED_VERSION, PKG_CONFIG.
#
#   install         configure the source tree as a user would, `cmake --install --prefix` it, and
#                   check the installed files: every public header, the CMake package, the .pc,
#                   and nothing else (no test or example binaries)
#   find_package    build and run a consumer of find_package(gracefulstop 0.1)
#   reject_version  find_package(gracefulstop 1) and (gracefulstop 0.2) must be refused
#   subdirectory    build and run a consumer that add_subdirectory()s the source tree; the tree
#                   must add no target but the library, no test and no install rule
#   pkg_config      copy the installed prefix elsewhere, then build and run a consumer with the
#                   copy's pkg-config flags alone
cmake_minimum_required(VERSION 3.20)

foreach(input STEP SOURCE_DIR WORK_DIR GENERATOR CXX EXPECTED_VERSION)
  if(NOT DEFINED ${input} OR "${${input}}" STREQUAL "")
    message(FATAL_ERROR "packaging.cmake: ${input} is not set")
  endif()
endforeach()

set(installed "${WORK_DIR}/installed")
set(consumer_source "${CMAKE_CURRENT_LIST_DIR}/consumer")

# run(<command...> [OUTPUT <var>] [EXPECT_FAILURE]): runs the command, fails the test unless it
# exits 0 (or, with EXPECT_FAILURE, unless it does not), and hands back stdout + stderr.
function(run)
  cmake_parse_arguments(ARG "EXPECT_FAILURE" "OUTPUT" "" ${ARGN})
  execute_process(COMMAND ${ARG_UNPARSED_ARGUMENTS}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(REPLACE ";" " " shown "${ARG_UNPARSED_ARGUMENTS}")
  if(ARG_EXPECT_FAILURE AND rc EQUAL 0)
    message(FATAL_ERROR "succeeded but should have failed: ${shown}\n${out}")
  elseif(NOT ARG_EXPECT_FAILURE AND NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${shown}\n${out}")
  endif()
  if(ARG_OUTPUT)
    set(${ARG_OUTPUT} "${out}" PARENT_SCOPE)
  endif()
endfunction()

# Configures a consumer project with the same compiler and flags as the tree under test.
function(configure_consumer source build)
  file(REMOVE_RECURSE "${build}")
  run(${CMAKE_COMMAND} -S "${source}" -B "${build}" -G "${GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" ${ARGN} OUTPUT out)
endfunction()

# Runs a consumer program the way the tests expect it to run: without a service manager to talk to.
function(run_consumer program)
  run(${CMAKE_COMMAND} -E env --unset=NOTIFY_SOCKET "${program}" OUTPUT out)
  if(NOT out MATCHES "consumer: stopped by SIGTERM, exit status 0, gracefulstop ${EXPECTED_VERSION}")
    message(FATAL_ERROR "the consumer did not report a clean stop:\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()

if(STEP STREQUAL "install")
  set(build "${WORK_DIR}/install-build")
  file(REMOVE_RECURSE "${build}" "${installed}")
  # A user's install: tests and examples off (they need Catch2 and take time); the install rules
  # are on by default because this is the top-level project. Installing with --prefix somewhere
  # other than CMAKE_INSTALL_PREFIX also proves the installed files do not hard-code the prefix.
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
      "-DCMAKE_CXX_COMPILER=${CXX}" -DGRACEFULSTOP_BUILD_TESTS=OFF
      -DGRACEFULSTOP_BUILD_EXAMPLES=OFF "-DCMAKE_INSTALL_PREFIX=${WORK_DIR}/not-the-prefix")
  run(${CMAKE_COMMAND} --build "${build}")
  run(${CMAKE_COMMAND} --install "${build}" --prefix "${installed}")

  file(GLOB_RECURSE source_headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/*.hpp")
  file(GLOB_RECURSE installed_files RELATIVE "${installed}" "${installed}/*")
  set(problems "")
  foreach(header IN LISTS source_headers)
    if(NOT EXISTS "${installed}/include/${header}")
      string(APPEND problems "  missing: include/${header}\n")
    endif()
  endforeach()
  foreach(file share/cmake/gracefulstop/gracefulstopConfig.cmake
               share/cmake/gracefulstop/gracefulstopConfigVersion.cmake
               share/cmake/gracefulstop/gracefulstopTargets.cmake share/pkgconfig/gracefulstop.pc)
    if(NOT EXISTS "${installed}/${file}")
      string(APPEND problems "  missing: ${file}\n")
    endif()
  endforeach()
  foreach(file IN LISTS installed_files)
    if(NOT file MATCHES "^(include/gracefulstop/|share/cmake/gracefulstop/|share/pkgconfig/gracefulstop\\.pc$|share/doc/gracefulstop/)")
      string(APPEND problems "  not part of the package: ${file}\n")
    endif()
  endforeach()
  if(problems)
    message(FATAL_ERROR "the installed tree in ${installed} is wrong:\n${problems}")
  endif()
  list(LENGTH installed_files count)
  message(STATUS "installed ${count} files into ${installed}")

elseif(STEP STREQUAL "find_package")
  set(build "${WORK_DIR}/find-package-consumer")
  configure_consumer("${consumer_source}" "${build}" "-DCMAKE_PREFIX_PATH=${installed}"
                     "-DEXPECT_PREFIX=${installed}")
  run(${CMAKE_COMMAND} --build "${build}")
  run_consumer("${build}/bin/consumer")

elseif(STEP STREQUAL "reject_version")
  # SameMajorVersion: 0.1.x satisfies a request for 0.1 (checked by find_package above), but not
  # one for another major version, nor for a newer minor than the one installed.
  foreach(request 1 0.2)
    set(build "${WORK_DIR}/reject-${request}")
    file(REMOVE_RECURSE "${build}")
    run(${CMAKE_COMMAND} -S "${consumer_source}" -B "${build}" -G "${GENERATOR}"
        "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_PREFIX_PATH=${installed}"
        "-DGRACEFULSTOP_REQUEST=${request}" EXPECT_FAILURE OUTPUT out)
    # Refused for its version, not for being absent: CMake lists the file it considered.
    string(REPLACE "\n" " " flat "${out}")
    string(REGEX REPLACE "[ \t]+" " " flat "${flat}")
    if(NOT flat MATCHES "gracefulstopConfig\\.cmake, version: ${EXPECTED_VERSION}")
      message(FATAL_ERROR "find_package(gracefulstop ${request}) failed, but not because the "
                          "installed ${EXPECTED_VERSION} was refused:\n${out}")
    endif()
    message(STATUS "find_package(gracefulstop ${request}) refused ${EXPECTED_VERSION}")
  endforeach()

elseif(STEP STREQUAL "subdirectory")
  set(build "${WORK_DIR}/subdirectory-consumer")
  configure_consumer("${CMAKE_CURRENT_LIST_DIR}/subdirectory_consumer" "${build}"
                     "-DGRACEFULSTOP_SOURCE_DIR=${SOURCE_DIR}"
                     "-DGRACEFULSTOP_EXPECTED_VERSION=${EXPECTED_VERSION}")
  run(${CMAKE_COMMAND} --build "${build}")
  # The consumer's one test, and none of the vendored tree's.
  run(${CMAKE_CTEST_COMMAND} --test-dir "${build}" -N OUTPUT listing)
  if(NOT listing MATCHES "Total Tests: 1[^0-9]")
    message(FATAL_ERROR "the vendored tree added tests to its parent:\n${listing}")
  endif()
  run(${CMAKE_COMMAND} -E env --unset=NOTIFY_SOCKET
      ${CMAKE_CTEST_COMMAND} --test-dir "${build}" --output-on-failure OUTPUT out)
  # Installing the consumer must install nothing of the vendored library.
  set(staging "${WORK_DIR}/subdirectory-staging")
  file(REMOVE_RECURSE "${staging}")
  run(${CMAKE_COMMAND} --install "${build}" --prefix "${staging}")
  file(GLOB_RECURSE staged RELATIVE "${staging}" "${staging}/*")
  if(staged)
    message(FATAL_ERROR "the vendored tree installed files into its parent's prefix: ${staged}")
  endif()
  run_consumer("${build}/bin/consumer")

elseif(STEP STREQUAL "pkg_config")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "packaging.cmake: PKG_CONFIG is not set")
  endif()
  # Relocation: a copy of the prefix somewhere else must work on its own, so the .pc may not
  # name the directory it was installed to.
  set(relocated "${WORK_DIR}/relocated/opt/gracefulstop")
  file(REMOVE_RECURSE "${WORK_DIR}/relocated")
  file(MAKE_DIRECTORY "${relocated}")
  file(COPY "${installed}/" DESTINATION "${relocated}")
  set(pc_env ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${relocated}/share/pkgconfig")

  run(${pc_env} ${PKG_CONFIG} --modversion gracefulstop OUTPUT version)
  string(STRIP "${version}" version)
  if(NOT version STREQUAL EXPECTED_VERSION)
    message(FATAL_ERROR "gracefulstop.pc says version ${version}, CMake says ${EXPECTED_VERSION}")
  endif()
  run(${pc_env} ${PKG_CONFIG} --cflags gracefulstop OUTPUT cflags)
  run(${pc_env} ${PKG_CONFIG} --libs gracefulstop OUTPUT libs)
  string(STRIP "${cflags}" cflags)
  string(STRIP "${libs}" libs)
  string(FIND "${cflags}" "${relocated}" at_relocated)
  string(FIND "${cflags}" "${installed}" at_installed)
  if(at_relocated EQUAL -1 OR NOT at_installed EQUAL -1)
    message(FATAL_ERROR "pkg-config flags do not follow the moved prefix ${relocated}: ${cflags}")
  endif()

  separate_arguments(cflags_list UNIX_COMMAND "${cflags}")
  separate_arguments(libs_list UNIX_COMMAND "${libs}")
  separate_arguments(flags_list UNIX_COMMAND "${CXX_FLAGS}")
  set(program "${WORK_DIR}/pkg-config-consumer")
  file(REMOVE "${program}")
  # -std=c++17: a pkg-config user chooses the language standard (the .pc does not impose one).
  run(${CXX} ${flags_list} -std=c++17 ${cflags_list}
      "-DGRACEFULSTOP_EXPECTED_VERSION=\"${version}\"" "${consumer_source}/main.cpp"
      -o "${program}" ${libs_list})
  run_consumer("${program}")

else()
  message(FATAL_ERROR "packaging.cmake: unknown STEP '${STEP}'")
endif()
