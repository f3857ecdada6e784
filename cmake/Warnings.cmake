# Picky warnings and hardening for every target of the project.
add_compile_options(
    -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith
    -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
    -fstack-protector-strong)
if(TS_WERROR)
    add_compile_options(-Werror)
endif()
if(NOT TS_SANITIZE AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
    add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
add_link_options(-Wl,-z,relro,-z,now,-z,noexecstack)

if(TS_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

if(TS_FUZZ)
    # Coverage instrumentation for the libraries; the targets add -fsanitize=fuzzer themselves.
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()
