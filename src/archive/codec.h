// SPDX-License-Identifier: BSD-2-Clause
// Member compression: zstd and xz, whole buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mmar/archive.h"

namespace mmar::codec {

// Members at least this large are compressed with the codec's own
// multi-threaded mode; output does not depend on the number of threads.
inline constexpr size_t kLargeMember = size_t{8} << 20;

int default_level(Codec codec);

// Compress `in`. Returns nullopt when the result would not be smaller than
// the input (the caller stores the member raw).
Result<std::optional<std::vector<std::byte>>> compress(Codec codec, int level, std::span<const std::byte> in,
                                                       unsigned threads);

// The most bytes `stored` bytes of `codec` can inflate to, from the codec's
// maximum ratio (see codec.cpp and docs/FORMAT.md); saturates at UINT64_MAX.
uint64_t max_inflated_size(Codec codec, uint64_t stored);

// Inflate exactly `size` bytes; anything else (short output, trailing data,
// output that would exceed `size`, a `size` above max_inflated_size) is an
// Errc::malformed error. Memory grows with the output the stream really
// produces, never on `size` or a frame header's word alone.
Result<std::vector<std::byte>> decompress(Codec codec, std::span<const std::byte> in, uint64_t size);

// One frame of a frame stream (docs/FORMAT.md "Frame streams"): compress
// `in` into `out` (resized to fit). false, with `out` unspecified, when the
// result would not be smaller than `in` (the frame is stored raw). `bare`
// (frame table v2): a zstd frame without magic and content size, its window
// no larger than `in`; xz frames are whole .xz streams either way. Contexts
// are per thread and reused; output is the same on every thread.
Result<bool> compress_frame(Codec codec, int level, bool bare, std::span<const std::byte> in,
                            std::vector<std::byte>& out);

// Inflate one frame into exactly `out` (at most 2^kMaxFrameLog2 bytes, the
// caller's buffer, sized from the frame table): a stream that declares or
// produces another size, ends early, has trailing bytes or (zstd) asks for
// a window above 2^kMaxFrameLog2 is an Errc::malformed error. `bare` as for
// compress_frame (frames::Table::bare_frames()).
Result<void> decompress_frame(Codec codec, bool bare, std::span<const std::byte> in, std::span<std::byte> out);

}  // namespace mmar::codec
