# Install the headers and export the targets so that find_package(flas) works from another project.
include(CMakePackageConfigHelpers)
install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS flas flas_http EXPORT flasTargets)
install(EXPORT flasTargets NAMESPACE flas:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flas)
configure_package_config_file(cmake/flasConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/flasConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flas)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/flasConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/flasConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/flasConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flas)
