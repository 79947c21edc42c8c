# install() rules: headers, the library, an exported CMake package (find_package(sockserv CONFIG))
# and a pkg-config file.
include(CMakePackageConfigHelpers)

# Everything here is the "dev" component: the libsockserv-dev package (packaging/).
#
# With SOCKSERV_PACKAGE the shared library is installed beside the static one. It is then the
# default, as Debian's -dev packages do: `-lsockserv` picks the .so, and sockserv::sockserv names
# it, while sockserv::sockserv_static names the archive.
set(installed_libraries sockserv)
if(TARGET sockserv_shared)
  list(APPEND installed_libraries sockserv_shared)
  set_target_properties(sockserv PROPERTIES EXPORT_NAME sockserv_static)
  set_target_properties(sockserv_shared PROPERTIES EXPORT_NAME sockserv)
endif()
install(DIRECTORY include/sockserv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(TARGETS ${installed_libraries} EXPORT sockservTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT sockservTargets NAMESPACE sockserv::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockserv COMPONENT dev)

# What sockservConfig.cmake.in and sockserv.pc.in need to know about this build. SOCKSERV_STATIC:
# a static library is exported, whose dependencies the consumer's link needs.
if(TARGET sockserv_shared)
  set(SOCKSERV_STATIC ON)
  set(SOCKSERV_PC_REQUIRES_FIELD Requires.private)
elseif(BUILD_SHARED_LIBS)
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
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/sockserv COMPONENT dev)

# The .pc file finds the prefix relative to itself (lib/pkgconfig or lib/<multiarch>/pkgconfig).
file(RELATIVE_PATH SOCKSERV_PC_PREFIX_FROM_PCDIR "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" SOCKSERV_PC_PREFIX_FROM_PCDIR "${SOCKSERV_PC_PREFIX_FROM_PCDIR}")
configure_file(cmake/sockserv.pc.in ${CMAKE_CURRENT_BINARY_DIR}/sockserv.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/sockserv.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)
