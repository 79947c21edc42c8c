# Warnings are PRIVATE to our own targets: a consumer's build never inherits them, and -Werror is
# only switched on by CI (SOCKSERV_WERROR), never forced on people building the library.
function(sockserv_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast
                                           -Woverloaded-virtual -Wnon-virtual-dtor)
  if(SOCKSERV_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
