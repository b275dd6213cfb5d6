# SPDX-License-Identifier: BSD-2-Clause
# armhf: 32-bit (size_t and pointers of 32 bits, 64-bit off_t), little-endian,
# unsigned char. See debian-cross.cmake.
set(MMAR_CROSS_ARCH armhf)
set(MMAR_CROSS_TRIPLET arm-linux-gnueabihf)
set(MMAR_CROSS_PROCESSOR arm)
set(MMAR_CROSS_QEMU qemu-arm)
# GCC's notes that the ARM ABI for passing some structs changed in GCC 7.1:
# nothing of ours is linked against code built before it.
set(MMAR_CROSS_FLAGS -Wno-psabi)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
