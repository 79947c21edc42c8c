# SPDX-License-Identifier: MIT
# Finds liburing (the io_uring helper library, which ships a pkg-config file but no CMake package)
# and defines the imported target LibUring::LibUring. Used to build sockserv's io_uring backend,
# and installed next to sockservConfig.cmake, which finds it again for a consumer of a static
# libsockserv built with that backend.
#
#   LibUring_FOUND, LibUring_INCLUDE_DIR, LibUring_LIBRARY; target LibUring::LibUring
find_path(LibUring_INCLUDE_DIR liburing.h)
find_library(LibUring_LIBRARY uring)
mark_as_advanced(LibUring_INCLUDE_DIR LibUring_LIBRARY)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LibUring
  REQUIRED_VARS LibUring_LIBRARY LibUring_INCLUDE_DIR
  REASON_FAILURE_MESSAGE
    "liburing's development files are missing (Debian/Ubuntu: apt-get install liburing-dev).")

if(LibUring_FOUND AND NOT TARGET LibUring::LibUring)
  add_library(LibUring::LibUring UNKNOWN IMPORTED)
  set_target_properties(LibUring::LibUring PROPERTIES
    IMPORTED_LOCATION "${LibUring_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LibUring_INCLUDE_DIR}")
endif()
