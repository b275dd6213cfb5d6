// SPDX-License-Identifier: BSD-2-Clause
#include "archive/codec.h"

#include <lzma.h>
// The experimental parameters of v2 frames (ZSTD_c_format, ZSTD_d_format,
// ZSTD_d_stableOutBuffer), set through ZSTD_CCtx_setParameter and
// ZSTD_DCtx_setParameter, which the shared libzstd (>= 1.4) accepts.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <new>

#include "archive/format.h"

namespace mmar::codec {

namespace {

constexpr unsigned kMaxZstdWorkers = 2;

struct ZstdCctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread, reused across members: creating a zstd context
// costs more than compressing a small member.
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCctxDeleter> cctx(ZSTD_createCCtx());
  return cctx.get();
}
ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDctxDeleter> dctx(ZSTD_createDCtx());
  return dctx.get();
}

Result<std::optional<std::vector<std::byte>>> zstd_compress(int level, std::span<const std::byte> in,
                                                            unsigned threads) {
  ZSTD_CCtx* cctx = thread_cctx();
  if (cctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);  // we keep our own XXH3
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  if (in.size() >= kLargeMember && threads > 1) {
    // Any nbWorkers >= 1 gives identical output; more only runs faster.
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers,
                           static_cast<int>(threads < kMaxZstdWorkers ? threads : kMaxZstdWorkers));
  } else if (in.size() >= kLargeMember) {
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, 1);
  }
  if (in.size() < 2) return std::optional<std::vector<std::byte>>();
  std::vector<std::byte> out(in.size() - 1);  // must end up strictly smaller
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) {
    if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
      return std::optional<std::vector<std::byte>>();
    }
    return Error(Errc::io, std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(n);
  out.shrink_to_fit();
  return std::optional<std::vector<std::byte>>(std::move(out));
}

Result<std::optional<std::vector<std::byte>>> xz_compress(int level, std::span<const std::byte> in, unsigned threads) {
  if (in.size() < 2) return std::optional<std::vector<std::byte>>();
  lzma_stream strm = LZMA_STREAM_INIT;
  lzma_mt mt{};
  mt.flags = 0;
  // Fixed block size: output is the same for any thread count.
  mt.block_size = 0;  // liblzma default: 3 * dictionary size
  mt.timeout = 0;
  mt.preset = static_cast<uint32_t>(level);
  mt.check = LZMA_CHECK_NONE;  // we keep our own XXH3
  mt.threads = in.size() >= kLargeMember ? (threads == 0 ? 1 : threads) : 1;
  lzma_ret ret = in.size() >= kLargeMember ? lzma_stream_encoder_mt(&strm, &mt)
                                           : lzma_easy_encoder(&strm, mt.preset, LZMA_CHECK_NONE);
  if (ret != LZMA_OK) return Error(Errc::io, "xz: cannot start the encoder (" + std::to_string(ret) + ")");
  std::vector<std::byte> out(in.size() - 1);
  strm.next_in = reinterpret_cast<const uint8_t*>(in.data());
  strm.avail_in = in.size();
  strm.next_out = reinterpret_cast<uint8_t*>(out.data());
  strm.avail_out = out.size();
  for (;;) {
    ret = lzma_code(&strm, LZMA_FINISH);
    if (ret == LZMA_STREAM_END) break;
    if (ret == LZMA_OK && strm.avail_out > 0) continue;
    lzma_end(&strm);
    if (ret == LZMA_OK || ret == LZMA_BUF_ERROR) return std::optional<std::vector<std::byte>>();
    return Error(Errc::io, "xz: encoder failed (" + std::to_string(ret) + ")");
  }
  out.resize(strm.total_out);
  lzma_end(&strm);
  out.shrink_to_fit();
  return std::optional<std::vector<std::byte>>(std::move(out));
}

}  // namespace

int default_level(Codec codec) {
  switch (codec) {
    case Codec::zstd: return 3;
    case Codec::xz: return 6;
    case Codec::none:
    case Codec::extents: return 0;
  }
  return 0;
}

Result<std::optional<std::vector<std::byte>>> compress(Codec codec, int level, std::span<const std::byte> in,
                                                       unsigned threads) {
  if (level == 0) level = default_level(codec);
  try {
    switch (codec) {
      case Codec::none: return std::optional<std::vector<std::byte>>();
      case Codec::zstd: return zstd_compress(level, in, threads);
      case Codec::xz: return xz_compress(level, in, threads);
      case Codec::extents: break;  // not a compression: in-place updates write extent maps
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, "out of memory compressing " + std::to_string(in.size()) + " bytes");
  }
  return Error(Errc::invalid_argument, "unknown codec");
}

uint64_t max_inflated_size(Codec codec, uint64_t stored) {
  // Saturating: a bound that overflows is no bound.
  auto times = [](uint64_t units, uint64_t per_unit) -> uint64_t {
    return units > UINT64_MAX / per_unit ? UINT64_MAX : units * per_unit;
  };
  switch (codec) {
    case Codec::none: return stored;
    case Codec::extents: return 0;  // not inflated: read through its extent map
    case Codec::zstd:
      // A zstd frame is a sequence of blocks; a block produces at most
      // ZSTD_BLOCKSIZE_MAX (128 KiB) and costs at least 4 bytes (a 3-byte
      // block header plus the one byte of an RLE block). The frame header,
      // skippable frames and checksums only lower the ratio. So `stored`
      // bytes inflate to at most ceil(stored / 4) * 128 KiB; one block more
      // is slack.
      return times(stored / 4 + 2, ZSTD_BLOCKSIZE_MAX);
    case Codec::xz:
      // An .xz stream ends in LZMA2, whose chunks produce at most 2 MiB
      // (the 21-bit unpacked size) and cost at least 6 bytes (control byte,
      // two bytes each of unpacked and packed size, at least one packed
      // byte); uncompressed chunks produce at most 64 KiB for 3 + 64 KiB.
      // Filters before LZMA2 (delta, BCJ) do not change the size; stream and
      // block headers, the index and the footer only lower the ratio. So
      // `stored` bytes inflate to at most ceil(stored / 6) * 2 MiB; one chunk
      // more is slack.
      return times(stored / 6 + 2, uint64_t{2} << 20);
  }
  return 0;
}

namespace {

// The output buffer, grown with what the stream really produces and never
// beyond `limit` (the size the index declares): doubling from a start
// proportional to the stored bytes, so a hostile size word costs nothing.
class Output {
 public:
  Output(uint64_t stored, uint64_t limit) : limit_(limit) {
    const uint64_t start = std::max<uint64_t>(uint64_t{64} << 10, stored > UINT64_MAX / 4 ? UINT64_MAX : stored * 4);
    buf_.resize(static_cast<size_t>(std::min(limit, start)));
  }
  // Room after `used` bytes; false when the buffer already holds `limit`.
  bool grow(size_t used) {
    if (buf_.size() >= limit_) return false;
    const uint64_t want = buf_.size() > limit_ / 2 ? limit_ : uint64_t{buf_.size()} * 2;
    buf_.resize(static_cast<size_t>(std::max<uint64_t>(want, used + 1)));
    return true;
  }
  std::byte* data() { return buf_.data(); }
  size_t size() const { return buf_.size(); }
  std::vector<std::byte> take(size_t used) {
    buf_.resize(used);
    return std::move(buf_);
  }

 private:
  uint64_t limit_;
  std::vector<std::byte> buf_;
};

std::string n(uint64_t v) { return std::to_string(v); }

Result<std::vector<std::byte>> zstd_decompress(std::span<const std::byte> in, size_t size) {
  // The frame's own size word must agree with the index, but sizes nothing.
  unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Error(Errc::malformed, "zstd: not a zstd frame");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return Error(Errc::malformed, "zstd: frame does not declare its size");
  if (declared != size) {
    return Error(Errc::malformed, "zstd: frame declares " + n(declared) + " bytes, index says " + n(size));
  }
  ZSTD_DCtx* dctx = thread_dctx();
  if (dctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
  Output out(in.size(), size);
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  size_t used = 0;
  for (;;) {
    ZSTD_outBuffer dst{out.data(), out.size(), used};
    const size_t ret = ZSTD_decompressStream(dctx, &dst, &src);
    used = dst.pos;
    if (ZSTD_isError(ret)) return Error(Errc::malformed, std::string("zstd: ") + ZSTD_getErrorName(ret));
    if (ret == 0) break;  // the frame is complete
    if (dst.pos == dst.size) {
      // Full: grow, unless that would pass the declared size.
      if (!out.grow(used))
        return Error(Errc::malformed, "zstd: data inflates beyond the declared " + n(size) + " bytes");
    } else if (src.pos == src.size) {
      return Error(Errc::malformed,
                   "zstd: truncated frame (inflated " + n(used) + " of the declared " + n(size) + " bytes)");
    }
  }
  if (src.pos != src.size) {
    return Error(Errc::malformed, "zstd: " + n(src.size - src.pos) + " trailing bytes after the frame");
  }
  if (used != size) return Error(Errc::malformed, "zstd: inflated to " + n(used) + " bytes, expected " + n(size));
  return out.take(used);
}

Result<std::vector<std::byte>> xz_decompress(std::span<const std::byte> in, size_t size) {
  lzma_stream strm = LZMA_STREAM_INIT;
  const uint64_t memlimit = uint64_t{1} << 30;  // xz -9 needs 65 MiB; refuse absurd headers
  if (lzma_stream_decoder(&strm, memlimit, 0) != LZMA_OK) return Error(Errc::limit, "xz: cannot start the decoder");
  struct Ender {
    lzma_stream* s;
    ~Ender() { lzma_end(s); }
  } ender{&strm};
  Output out(in.size(), size);
  strm.next_in = reinterpret_cast<const uint8_t*>(in.data());
  strm.avail_in = in.size();
  strm.next_out = reinterpret_cast<uint8_t*>(out.data());
  strm.avail_out = out.size();
  for (;;) {
    lzma_ret ret = lzma_code(&strm, LZMA_FINISH);
    if (ret == LZMA_STREAM_END) break;
    if (ret != LZMA_OK && ret != LZMA_BUF_ERROR) {
      return Error(Errc::malformed, "xz: corrupt stream (" + std::to_string(ret) + ")");
    }
    if (strm.avail_out == 0) {
      const size_t used = strm.total_out;
      if (!out.grow(used)) return Error(Errc::malformed, "xz: data inflates beyond the declared " + n(size) + " bytes");
      strm.next_out = reinterpret_cast<uint8_t*>(out.data()) + used;
      strm.avail_out = out.size() - used;
    } else if (ret == LZMA_BUF_ERROR) {
      return Error(Errc::malformed,
                   "xz: truncated stream (inflated " + n(strm.total_out) + " of the declared " + n(size) + " bytes)");
    }
  }
  if (strm.avail_in != 0) return Error(Errc::malformed, "xz: " + n(strm.avail_in) + " trailing bytes after the stream");
  if (strm.total_out != size) {
    return Error(Errc::malformed, "xz: inflated to " + n(strm.total_out) + " bytes, expected " + n(size));
  }
  return out.take(static_cast<size_t>(strm.total_out));
}

}  // namespace

// `size` is the index's u64, checked before it is narrowed: on a 32-bit host
// a size_t parameter truncated 2^39 to 0 before the bound saw it.
Result<std::vector<std::byte>> decompress(Codec codec, std::span<const std::byte> in, uint64_t size) {
  // Never allocate on a size word alone (the index's me_size or a frame
  // header's content size): a declared size the stored bytes cannot produce
  // is refused up front, and the output buffer grows with what the stream
  // really produces, never beyond the declared size.
  if (codec == Codec::none) return Error(Errc::invalid_argument, "decompress called on a raw member");
  const uint64_t bound = max_inflated_size(codec, in.size());
  if (size > bound) {
    return Error(Errc::malformed, std::string(codec_name(codec)) + ": declared size of " + n(size) +
                                      " bytes is more than " + n(in.size()) + " stored bytes can inflate to (at most " +
                                      n(bound) + ")");
  }
  if (size > std::numeric_limits<size_t>::max()) {
    return Error(Errc::limit, std::string(codec_name(codec)) + ": " + n(size) +
                                  " bytes do not fit in this process's address space");
  }
  try {
    switch (codec) {
      case Codec::none:
      case Codec::extents: break;
      case Codec::zstd: return zstd_decompress(in, static_cast<size_t>(size));
      case Codec::xz: return xz_decompress(in, static_cast<size_t>(size));
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, "cannot allocate memory to inflate " + n(size) + " bytes");
  }
  return Error(Errc::malformed, "unknown codec");
}

namespace {

// An xz encoder per thread, re-initialised for each frame: liblzma reuses
// its allocations when the filter chain is the same, so a frame does not pay
// for a fresh dictionary.
struct XzEncoder {
  lzma_stream strm = LZMA_STREAM_INIT;
  ~XzEncoder() { lzma_end(&strm); }
};

}  // namespace

Result<bool> compress_frame(Codec codec, int level, bool bare, std::span<const std::byte> in,
                            std::vector<std::byte>& out) {
  if (level == 0) level = default_level(codec);
  if (in.size() < 2) return false;
  try {
    out.resize(in.size() - 1);  // must end up strictly smaller
    if (codec == Codec::zstd) {
      ZSTD_CCtx* cctx = thread_cctx();
      if (cctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
      ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0);  // the frame table keeps an XXH3
      // v2: the table knows the frame's size; the magic says nothing either.
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, bare ? 0 : 1);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_format, bare ? ZSTD_f_zstd1_magicless : ZSTD_f_zstd1);
      // The window fits the frame (without a content size the header keeps
      // a window descriptor, which must not ask readers for more).
      ZSTD_CCtx_setPledgedSrcSize(cctx, in.size());
      const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), in.data(), in.size());
      if (ZSTD_isError(n)) {
        if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) return false;
        return Error(Errc::io, std::string("zstd: ") + ZSTD_getErrorName(n));
      }
      out.resize(n);
      return true;
    }
    if (codec == Codec::xz) {
      thread_local XzEncoder enc;
      lzma_options_lzma opt;
      if (lzma_lzma_preset(&opt, static_cast<uint32_t>(level))) return Error(Errc::invalid_argument, "xz: bad level");
      // A dictionary larger than the frame only costs memory.
      uint32_t dict = 4096;
      while (dict < in.size() && dict < opt.dict_size) dict *= 2;
      opt.dict_size = std::min(opt.dict_size, dict);
      lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
      if (lzma_stream_encoder(&enc.strm, filters, LZMA_CHECK_NONE) != LZMA_OK) {
        return Error(Errc::io, "xz: cannot start the encoder");
      }
      enc.strm.next_in = reinterpret_cast<const uint8_t*>(in.data());
      enc.strm.avail_in = in.size();
      enc.strm.next_out = reinterpret_cast<uint8_t*>(out.data());
      enc.strm.avail_out = out.size();
      for (;;) {
        const lzma_ret ret = lzma_code(&enc.strm, LZMA_FINISH);
        if (ret == LZMA_STREAM_END) break;
        if (ret == LZMA_OK && enc.strm.avail_out > 0) continue;
        if (ret == LZMA_OK || ret == LZMA_BUF_ERROR) return false;
        return Error(Errc::io, "xz: encoder failed (" + std::to_string(ret) + ")");
      }
      out.resize(static_cast<size_t>(enc.strm.total_out));
      return true;
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, "out of memory compressing a frame of " + std::to_string(in.size()) + " bytes");
  }
  return Error(Errc::invalid_argument, "frames are zstd or xz");
}

namespace {

// A v2 zstd frame: magicless, no content size. Streamed into exactly `out`
// (a stable output buffer: no window buffer is allocated, and a window
// descriptor above 2^kMaxFrameLog2 is refused before anything is sized);
// the frame must end exactly when `out` is full and `in` is consumed.
Result<void> zstd_decompress_bare(std::span<const std::byte> in, std::span<std::byte> out) {
  ZSTD_DCtx* dctx = thread_dctx();
  if (dctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_format, ZSTD_f_zstd1_magicless);
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, format::kMaxFrameLog2);
  ZSTD_DCtx_setParameter(dctx, ZSTD_d_stableOutBuffer, 1);
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  for (;;) {
    const size_t in_before = src.pos, out_before = dst.pos;
    const size_t ret = ZSTD_decompressStream(dctx, &dst, &src);
    if (ZSTD_isError(ret) && ZSTD_getErrorCode(ret) == ZSTD_error_dstSize_tooSmall) {
      return Error(Errc::malformed, "zstd: frame inflates to more than " + n(out.size()) + " bytes");
    }
    if (ZSTD_isError(ret)) return Error(Errc::malformed, std::string("zstd: ") + ZSTD_getErrorName(ret));
    if (ret == 0) break;  // the frame is complete
    if (src.pos == in_before && dst.pos == out_before) {
      // No progress: the input ended inside the frame, or the frame wants
      // more room than the table gives it.
      if (dst.pos == dst.size)
        return Error(Errc::malformed, "zstd: frame inflates to more than " + n(out.size()) + " bytes");
      return Error(Errc::malformed,
                   "zstd: truncated frame (inflated " + n(dst.pos) + " of " + n(out.size()) + " bytes)");
    }
  }
  if (src.pos != src.size) return Error(Errc::malformed, "zstd: " + n(src.size - src.pos) + " trailing bytes");
  if (dst.pos != out.size()) return Error(Errc::malformed, "zstd: inflated to " + n(dst.pos) + " of " + n(out.size()));
  return success();
}

}  // namespace

Result<void> decompress_frame(Codec codec, bool bare, std::span<const std::byte> in, std::span<std::byte> out) {
  const uint64_t bound = max_inflated_size(codec, in.size());
  if (out.size() > bound) {
    return Error(Errc::malformed, std::string(codec_name(codec)) + ": " + n(in.size()) +
                                      " stored bytes cannot inflate to " + n(out.size()));
  }
  if (codec == Codec::zstd && bare) return zstd_decompress_bare(in, out);
  if (codec == Codec::zstd) {
    const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR) return Error(Errc::malformed, "zstd: not a zstd frame");
    if (declared != out.size()) {
      return Error(Errc::malformed, "zstd: frame declares " +
                                        (declared == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no size") : n(declared)) +
                                        ", the table " + n(out.size()) + " bytes");
    }
    const size_t whole = ZSTD_findFrameCompressedSize(in.data(), in.size());
    if (ZSTD_isError(whole)) return Error(Errc::malformed, std::string("zstd: ") + ZSTD_getErrorName(whole));
    if (whole != in.size()) return Error(Errc::malformed, "zstd: " + n(in.size() - whole) + " trailing bytes");
    ZSTD_DCtx* dctx = thread_dctx();
    if (dctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
    const size_t got = ZSTD_decompressDCtx(dctx, out.data(), out.size(), in.data(), in.size());
    if (ZSTD_isError(got)) return Error(Errc::malformed, std::string("zstd: ") + ZSTD_getErrorName(got));
    if (got != out.size()) return Error(Errc::malformed, "zstd: inflated to " + n(got) + " of " + n(out.size()));
    return success();
  }
  if (codec == Codec::xz) {
    // A frame's dictionary need not exceed the frame (the writer sizes it
    // so): a header asking for more is refused, not allocated.
    uint64_t memlimit = uint64_t{8} << 20;
    size_t in_pos = 0, out_pos = 0;
    const lzma_ret ret = lzma_stream_buffer_decode(&memlimit, 0, nullptr, reinterpret_cast<const uint8_t*>(in.data()),
                                                   &in_pos, in.size(), reinterpret_cast<uint8_t*>(out.data()),
                                                   &out_pos, out.size());
    if (ret != LZMA_OK) {
      return Error(Errc::malformed, ret == LZMA_BUF_ERROR ? "xz: frame inflates to more or fewer bytes than the table says"
                                                          : "xz: corrupt frame (" + std::to_string(ret) + ")");
    }
    if (in_pos != in.size()) return Error(Errc::malformed, "xz: " + n(in.size() - in_pos) + " trailing bytes");
    if (out_pos != out.size()) return Error(Errc::malformed, "xz: inflated to " + n(out_pos) + " of " + n(out.size()));
    return success();
  }
  return Error(Errc::malformed, "frames are zstd or xz");
}

}  // namespace mmar::codec
