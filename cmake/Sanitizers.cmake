# One switch for the sanitizer builds (presets asan and tsan set it). It applies to every target
# of the tree, the library included, because a sanitizer only sees what it instruments.
if(SOCKSERV_SANITIZE)
  add_compile_options(-fsanitize=${SOCKSERV_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${SOCKSERV_SANITIZE})
  if(SOCKSERV_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
