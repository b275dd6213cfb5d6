#include "archive/codec.h"

#include <lzma.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <memory>
#include <new>

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
    case Codec::none: return 0;
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
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, "out of memory compressing " + std::to_string(in.size()) + " bytes");
  }
  return Error(Errc::invalid_argument, "unknown codec");
}

Result<std::vector<std::byte>> decompress(Codec codec, std::span<const std::byte> in, size_t size) {
  // Never allocate on the word of the index alone: a damaged or hostile
  // size would make us allocate (and fault in) memory the data cannot fill.
  // zstd frames declare their size up front and must agree before we
  // allocate; xz output grows with what the stream actually produces.
  std::vector<std::byte> out;
  try {
    switch (codec) {
      case Codec::none: return Error(Errc::invalid_argument, "decompress called on a raw member");
      case Codec::zstd: {
        unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
        if (declared == ZSTD_CONTENTSIZE_ERROR) return Error(Errc::malformed, "zstd: not a zstd frame");
        if (declared == ZSTD_CONTENTSIZE_UNKNOWN)
          return Error(Errc::malformed, "zstd: frame does not declare its size");
        if (declared != size) {
          return Error(Errc::malformed, "zstd: frame declares " + std::to_string(declared) + " bytes, index says " +
                                            std::to_string(size));
        }
        out.resize(size);
        ZSTD_DCtx* dctx = thread_dctx();
        if (dctx == nullptr) return Error(Errc::limit, "zstd: cannot allocate a context");
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
        size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), in.data(), in.size());
        if (ZSTD_isError(n)) return Error(Errc::malformed, std::string("zstd: ") + ZSTD_getErrorName(n));
        if (n != size) {
          return Error(Errc::malformed,
                       "zstd: inflated to " + std::to_string(n) + " bytes, expected " + std::to_string(size));
        }
        return out;
      }
      case Codec::xz: {
        lzma_stream strm = LZMA_STREAM_INIT;
        const uint64_t memlimit = uint64_t{1} << 30;  // xz -9 needs 65 MiB; refuse absurd headers
        if (lzma_stream_decoder(&strm, memlimit, 0) != LZMA_OK) {
          return Error(Errc::limit, "xz: cannot start the decoder");
        }
        struct Ender {
          lzma_stream* s;
          ~Ender() { lzma_end(s); }
        } ender{&strm};
        out.resize(std::min<size_t>(size, size_t{1} << 20));
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
            if (out.size() == size) return Error(Errc::malformed, "xz: data inflates beyond the declared size");
            size_t used = out.size();
            out.resize(std::min<size_t>(size, used * 2));
            strm.next_out = reinterpret_cast<uint8_t*>(out.data()) + used;
            strm.avail_out = out.size() - used;
          } else if (ret == LZMA_BUF_ERROR) {
            return Error(Errc::malformed, "xz: truncated stream");
          }
        }
        if (strm.total_out != size || strm.avail_in != 0) {
          return Error(Errc::malformed, "xz: inflated to " + std::to_string(strm.total_out) + " bytes, expected " +
                                            std::to_string(size));
        }
        out.resize(size);
        return out;
      }
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, "cannot allocate " + std::to_string(size) + " bytes to inflate");
  }
  return Error(Errc::malformed, "unknown codec");
}

}  // namespace mmar::codec
