# Cross build for s390x (64-bit, big-endian) with Debian's cross compiler;
# the tests run under qemu-user. Used by `./x cross`:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/s390x.cmake -DMMAR_CORE_ONLY=ON ...
#
# The compiler's own libc/libstdc++ are in /usr/s390x-linux-gnu (packages
# g++-s390x-linux-gnu, libc6-dev-s390x-cross). The libraries mmar links
# (zstd, xz, xxhash, GoogleTest) are s390x Debian packages unpacked into
# MMAR_S390X_LIBS (default build/s390x-libs): installing them as multiarch
# packages needs the very version of the host's (Multi-Arch: same), and
# bookworm-security, which patched the host's libzstd1/liblzma5, no longer
# carries s390x.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(CMAKE_C_COMPILER s390x-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER s390x-linux-gnu-g++)

if(DEFINED ENV{MMAR_S390X_LIBS})
  set(_libs "$ENV{MMAR_S390X_LIBS}")
else()
  get_filename_component(_libs "${CMAKE_CURRENT_LIST_DIR}/../build/s390x-libs" ABSOLUTE)
endif()
set(_libdir "${_libs}/usr/lib/s390x-linux-gnu")
set(_rootlibdir "${_libs}/lib/s390x-linux-gnu")  # zlib1g's libz.so.1

set(CMAKE_FIND_ROOT_PATH /usr/s390x-linux-gnu "${_libs}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config answers for the unpacked packages only, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "${_libdir}/pkgconfig:${_libs}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_libs}")
set(CMAKE_C_FLAGS_INIT "-isystem ${_libs}/usr/include")
set(CMAKE_CXX_FLAGS_INIT "-isystem ${_libs}/usr/include")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-L${_libdir} -Wl,-rpath-link,${_libdir}:${_rootlibdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-L${_libdir} -Wl,-rpath-link,${_libdir}:${_rootlibdir}")

# ctest (and gtest_discover_tests) run the s390x binaries through qemu-user:
# -L for the dynamic loader and libc, -E for the unpacked libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-s390x -L /usr/s390x-linux-gnu -E "LD_LIBRARY_PATH=${_libdir}:${_rootlibdir}")
