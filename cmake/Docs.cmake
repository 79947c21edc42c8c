# SPDX-License-Identifier: MIT
# The `docs` target: the HTML API reference in ${CMAKE_BINARY_DIR}/docs/html, made by Doxygen
# from the public headers (docs/reference/README.md). Never part of `all`; there only when CMake
# finds Doxygen (scripts/bootstrap.sh ci installs it) and SOCKSERV_BUILD_DOCS is on. Any
# Doxygen warning fails the target.
if(NOT SOCKSERV_BUILD_DOCS)
  return()
endif()
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "sockserv: Doxygen not found, no docs target (scripts/bootstrap.sh ci)")
  return()
endif()
set(SOCKSERV_DOCS_SOURCE_DIR ${PROJECT_SOURCE_DIR})
set(SOCKSERV_DOCS_OUTPUT_DIR ${CMAKE_BINARY_DIR}/docs)
set(SOCKSERV_DOCS_VERSION ${PROJECT_VERSION})
configure_file(${PROJECT_SOURCE_DIR}/docs/reference/Doxyfile.in ${CMAKE_BINARY_DIR}/Doxyfile
               @ONLY)
add_custom_target(docs
  COMMAND ${DOXYGEN_EXECUTABLE} ${CMAKE_BINARY_DIR}/Doxyfile
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "API reference: ${SOCKSERV_DOCS_OUTPUT_DIR}/html/index.html"
  VERBATIM)
