# Install rules: headers, exported INTERFACE target, config + version file, relocatable .pc.
install(TARGETS gracefulstop EXPORT gracefulstopTargets)
install(DIRECTORY include/gracefulstop TYPE INCLUDE)

set(GRACEFULSTOP_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/gracefulstop")
install(EXPORT gracefulstopTargets NAMESPACE gracefulstop:: DESTINATION "${GRACEFULSTOP_CMAKE_DIR}")

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/gracefulstopConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gracefulstopConfig.cmake
  INSTALL_DESTINATION "${GRACEFULSTOP_CMAKE_DIR}")
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gracefulstopConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/gracefulstopConfig.cmake
              ${PROJECT_BINARY_DIR}/gracefulstopConfigVersion.cmake
        DESTINATION "${GRACEFULSTOP_CMAKE_DIR}")

# The .pc computes its prefix from its own location, so the install tree can be moved.
file(RELATIVE_PATH GRACEFULSTOP_PC_TO_PREFIX
  "/prefix/${CMAKE_INSTALL_DATADIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/gracefulstop.pc.in
  ${PROJECT_BINARY_DIR}/gracefulstop.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/gracefulstop.pc DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
