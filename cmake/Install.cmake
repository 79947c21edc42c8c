# install() rules: headers, the library, an exported CMake package (find_package(sockserv CONFIG))
# and a pkg-config file.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/sockserv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS sockserv EXPORT sockservTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT sockservTargets NAMESPACE sockserv::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockserv)

# What sockservConfig.cmake.in and sockserv.pc.in need to know about this build.
if(BUILD_SHARED_LIBS)
  set(SOCKSERV_STATIC OFF)
  set(SOCKSERV_PC_REQUIRES_FIELD Requires.private)
else()
  set(SOCKSERV_STATIC ON)
  set(SOCKSERV_PC_REQUIRES_FIELD Requires)
endif()
configure_package_config_file(cmake/sockservConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/sockservConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockserv)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/sockservConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sockservConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/sockservConfigVersion.cmake
              cmake/FindLibUring.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockserv)

# The .pc file finds the prefix relative to itself (lib/pkgconfig or lib/<multiarch>/pkgconfig).
file(RELATIVE_PATH SOCKSERV_PC_PREFIX_FROM_PCDIR "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" SOCKSERV_PC_PREFIX_FROM_PCDIR "${SOCKSERV_PC_PREFIX_FROM_PCDIR}")
configure_file(cmake/sockserv.pc.in ${CMAKE_CURRENT_BINARY_DIR}/sockserv.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sockserv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
