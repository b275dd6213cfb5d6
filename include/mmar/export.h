// SPDX-License-Identifier: BSD-2-Clause
// MMAR_API marks what libmmar exports. The library is built with
// -fvisibility=hidden: only declarations in include/mmar/ carrying this
// macro are part of the shared library's ABI (libmmar.so.0); everything in
// src/ stays internal. Usable from C (mmar/elf_map.h's C interface).
#pragma once

#if defined(__cplusplus) && (defined(__GNUC__) || defined(__clang__))
// The standard attribute form: it may follow [[nodiscard]] on a class.
#define MMAR_API [[gnu::visibility("default")]]
// An exported class's private implementation (its Impl) stays internal.
#define MMAR_LOCAL [[gnu::visibility("hidden")]]
#elif defined(__GNUC__) || defined(__clang__)
#define MMAR_API __attribute__((visibility("default")))
#else
#define MMAR_API
#endif
#ifndef MMAR_LOCAL
#define MMAR_LOCAL
#endif
