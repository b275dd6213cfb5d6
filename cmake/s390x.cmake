# SPDX-License-Identifier: BSD-2-Clause
# s390x: 64-bit, big-endian (the format is little-endian: every on-disk
# integer is swapped here). See debian-cross.cmake.
set(MMAR_CROSS_ARCH s390x)
set(MMAR_CROSS_TRIPLET s390x-linux-gnu)
set(MMAR_CROSS_PROCESSOR s390x)
set(MMAR_CROSS_QEMU qemu-s390x)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
