# SPDX-License-Identifier: BSD-2-Clause
# Cross build with Debian's cross compiler for architecture MMAR_CROSS_ARCH
# (its GNU triplet MMAR_CROSS_TRIPLET, CMake processor
# MMAR_CROSS_PROCESSOR), tests run under qemu-user MMAR_CROSS_QEMU. Included
# by the per-architecture toolchain files (s390x.cmake, armhf.cmake); used by
# `./x cross [ARCH]`:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/s390x.cmake -DMMAR_CORE_ONLY=ON ...
#
# The compiler's own libc/libstdc++ are in /usr/TRIPLET (packages
# g++-TRIPLET, libc6-dev-ARCH-cross). The libraries mmar and its tests link
# (zstd, xz, xxhash, GoogleTest, libbpf) are that architecture's Debian
# packages unpacked into $MMAR_CROSS_LIBS (default build/ARCH-libs):
# installing them as multiarch packages needs the very version of the
# host's (Multi-Arch: same), and bookworm-security, which patched the host's
# libzstd1/liblzma5, no longer carries s390x.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${MMAR_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${MMAR_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MMAR_CROSS_TRIPLET}-g++)

if(DEFINED ENV{MMAR_CROSS_LIBS})
  set(_libs "$ENV{MMAR_CROSS_LIBS}")
else()
  get_filename_component(_libs "${CMAKE_CURRENT_LIST_DIR}/../build/${MMAR_CROSS_ARCH}-libs" ABSOLUTE)
endif()
set(_libdir "${_libs}/usr/lib/${MMAR_CROSS_TRIPLET}")
set(_rootlibdir "${_libs}/lib/${MMAR_CROSS_TRIPLET}")  # zlib1g's libz.so.1

set(CMAKE_FIND_ROOT_PATH /usr/${MMAR_CROSS_TRIPLET} "${_libs}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config answers for the unpacked packages only, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "${_libdir}/pkgconfig:${_libs}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_libs}")
set(CMAKE_C_FLAGS_INIT "-isystem ${_libs}/usr/include ${MMAR_CROSS_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "-isystem ${_libs}/usr/include ${MMAR_CROSS_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-L${_libdir} -Wl,-rpath-link,${_libdir}:${_rootlibdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-L${_libdir} -Wl,-rpath-link,${_libdir}:${_rootlibdir}")

# ctest (and gtest_discover_tests) run the target's binaries through
# qemu-user: -L for the dynamic loader and libc, -E for the unpacked libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR ${MMAR_CROSS_QEMU} -L /usr/${MMAR_CROSS_TRIPLET}
  -E "LD_LIBRARY_PATH=${_libdir}:${_rootlibdir}")
