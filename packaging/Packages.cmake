# SPDX-License-Identifier: MIT
# CPack's Debian generator: one package per install component ("dev", "command"), versioned from
# project(), with dependencies computed by dpkg-shlibdeps (dpkg-dev) for the binaries and named
# here for the headers' build dependencies.
set(SOCKSERV_PACKAGE_MAINTAINER "sockserv maintainers <sockserv@example.invalid>" CACHE STRING
    "The Maintainer field of the Debian packages")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sockserv)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${SOCKSERV_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL dev command)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # name_version-release_arch.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libsockserv-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# A static libsockserv needs its optional dependencies at the consumer's link, and its CMake
# package finds them (cmake/sockservConfig.cmake.in): the ones this build has.
set(dev_depends "")
if(SOCKSERV_HAVE_TLS)
  list(APPEND dev_depends "libssl-dev (>= 3)")
endif()
if(SOCKSERV_HAVE_LIBURING)
  list(APPEND dev_depends liburing-dev)
endif()
list(JOIN dev_depends ", " CPACK_DEBIAN_DEV_PACKAGE_DEPENDS)
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "C++20 network servers after Python's socketserver (development files)
sockserv is Python's socketserver and the Socket Programming HOWTO in modern
C++: sockets, TCP/UDP/Unix servers with threading, pool and forking mixins,
coroutine event-loop servers (epoll, poll, io_uring), TLS on OpenSSL 3.
This package has the headers, the static and shared libraries, the CMake
package (find_package(sockserv)) and the pkg-config file (sockserv.pc).")

set(CPACK_DEBIAN_COMMAND_PACKAGE_NAME sockserv)
set(CPACK_DEBIAN_COMMAND_PACKAGE_SECTION net)
set(CPACK_DEBIAN_COMMAND_DESCRIPTION
    "network server and client command after Python's socketserver
sockserv serve runs a server (upper-case echo, echo, discard, daytime, ...)
over TCP, UDP or Unix sockets, threaded, pooled, forking or on event loops,
with TLS, limits, timeouts and Prometheus metrics; sockserv send talks to one
and sockserv bench measures one. The package has systemd socket and service
units for socket activation, installed but not enabled.")

include(CPack)
