#include "inspect/content_decoding.hpp"

#include "http/text.hpp"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <string>
#include <vector>

namespace proxy::inspect {

namespace {

constexpr std::size_t kBlock = 16 * 1024;  // decoded bytes handed to the engine at a time

// One streaming decoder: takes encoded input, emits decoded blocks to `sink` until the sink
// says stop. Returns false when the input does not decode.
class Decoder {
public:
    virtual ~Decoder() = default;
    // `sink(block)` returns false to stop (the engine decided). Returns false on bad input.
    virtual bool feed(std::span<const std::uint8_t> in, const std::function<bool(std::span<const std::uint8_t>)>& sink) = 0;
};

class ZlibDecoder final : public Decoder {
public:
    explicit ZlibDecoder(ContentCoding coding) : coding_(coding) {
        // gzip: gzip header (16+); deflate: zlib wrapper first (RFC 9110 says so), retried raw
        // below, as browsers accept both.
        init(coding == ContentCoding::gzip ? 15 + 16 : 15);
    }
    ~ZlibDecoder() override {
        if (ready_) inflateEnd(&z_);
    }
    bool feed(std::span<const std::uint8_t> in,
              const std::function<bool(std::span<const std::uint8_t>)>& sink) override {
        const bool ok = inflate_piece(in, sink);
        // Until the first output, a "deflate" body may still turn out to be raw deflate: keep
        // what came before the next piece (bounded; a wrapper error shows in its first bytes).
        if (ok && coding_ == ContentCoding::deflate && !raw_tried_ && total_out_ == 0 && earlier_complete_) {
            if (earlier_.size() + in.size() <= kRetryWindow) earlier_.insert(earlier_.end(), in.begin(), in.end());
            else earlier_complete_ = false;
        }
        if (total_out_ != 0 && !earlier_.empty()) std::vector<std::uint8_t>().swap(earlier_);
        return ok;
    }

private:
    bool inflate_piece(std::span<const std::uint8_t> in, const std::function<bool(std::span<const std::uint8_t>)>& sink) {
        if (!ready_) return false;
        z_.next_in = const_cast<Bytef*>(in.data());
        z_.avail_in = static_cast<uInt>(in.size());
        for (;;) {
            if (ended_) {
                if (z_.avail_in == 0) return true;
                // Bytes after the end: another gzip member (gunzip reads them all), else not
                // part of any stream this coding describes.
                if (coding_ != ContentCoding::gzip || inflateReset(&z_) != Z_OK) return false;
                ended_ = false;
            }
            z_.next_out = out_.data();
            z_.avail_out = static_cast<uInt>(out_.size());
            const int rc = inflate(&z_, Z_NO_FLUSH);
            const std::size_t produced = out_.size() - z_.avail_out;
            if (rc == Z_DATA_ERROR && coding_ == ContentCoding::deflate && !raw_tried_ && total_out_ == 0 &&
                produced == 0 && earlier_complete_) {
                // "deflate" sent without the zlib wrapper: start again as raw deflate, from
                // the first byte.
                raw_tried_ = true;
                std::vector<std::uint8_t> again;
                again.swap(earlier_);
                again.insert(again.end(), in.begin(), in.end());
                inflateEnd(&z_);
                init(-15);
                if (!ready_) return false;
                return inflate_piece(again, sink);
            }
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return false;
            total_out_ += produced;
            if (produced > 0 && !sink({out_.data(), produced})) return true;
            if (rc == Z_STREAM_END) {
                ended_ = true;
                continue;
            }
            // Output not full: everything available has been decoded.
            if (z_.avail_out != 0 || rc == Z_BUF_ERROR) return true;
        }
    }

    static constexpr std::size_t kRetryWindow = 1024;  // earlier input kept until the format is known
    void init(int window_bits) {
        z_ = {};
        ready_ = inflateInit2(&z_, window_bits) == Z_OK;
    }
    ContentCoding coding_;
    z_stream z_{};
    bool ready_ = false, ended_ = false, raw_tried_ = false;
    std::uint64_t total_out_ = 0;
    std::vector<std::uint8_t> earlier_;  // pieces before the current one, while no output
    bool earlier_complete_ = true;        // earlier_ holds every byte fed so far
    std::array<std::uint8_t, kBlock> out_{};
};

class BrotliDecoder final : public Decoder {
public:
    BrotliDecoder() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
    ~BrotliDecoder() override {
        if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
    }
    bool feed(std::span<const std::uint8_t> in,
              const std::function<bool(std::span<const std::uint8_t>)>& sink) override {
        if (state_ == nullptr) return false;
        const std::uint8_t* next_in = in.data();
        std::size_t avail_in = in.size();
        for (;;) {
            std::uint8_t* next_out = out_.data();
            std::size_t avail_out = out_.size();
            const BrotliDecoderResult rc =
                BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
            const std::size_t produced = out_.size() - avail_out;
            if (rc == BROTLI_DECODER_RESULT_ERROR) return false;
            if (produced > 0 && !sink({out_.data(), produced})) return true;
            if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) continue;
            return true;  // needs more input, or done
        }
    }

private:
    BrotliDecoderState* state_;
    std::array<std::uint8_t, kBlock> out_{};
};

class ZstdDecoder final : public Decoder {
public:
    ZstdDecoder() : ctx_(ZSTD_createDCtx()) {
        // RFC 9659: the zstd content coding uses windows of at most 8 MiB; a frame that asks
        // for more does not decode (and is scanned as sent) instead of being given the memory.
        if (ctx_ != nullptr && ZSTD_isError(ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, kMaxWindowLog))) {
            ZSTD_freeDCtx(ctx_);
            ctx_ = nullptr;
        }
    }
    ~ZstdDecoder() override { ZSTD_freeDCtx(ctx_); }
    ZstdDecoder(const ZstdDecoder&) = delete;
    ZstdDecoder& operator=(const ZstdDecoder&) = delete;

    bool feed(std::span<const std::uint8_t> in,
              const std::function<bool(std::span<const std::uint8_t>)>& sink) override {
        if (ctx_ == nullptr) return false;
        ZSTD_inBuffer input{in.data(), in.size(), 0};
        for (;;) {
            ZSTD_outBuffer output{out_.data(), out_.size(), 0};
            const std::size_t consumed_before = input.pos;
            // Several frames in a row decode one after another, as the zstd tool does.
            const std::size_t rc = ZSTD_decompressStream(ctx_, &output, &input);
            if (ZSTD_isError(rc)) return false;
            if (output.pos > 0 && !sink({out_.data(), output.pos})) return true;
            if (output.pos == output.size) continue;  // more may be waiting in the decoder
            if (input.pos == input.size || (output.pos == 0 && input.pos == consumed_before)) return true;
        }
    }

private:
    static constexpr int kMaxWindowLog = 23;  // 8 MiB
    ZSTD_DCtx* ctx_;
    std::array<std::uint8_t, kBlock> out_{};
};

class DecodingInspection final : public Inspection {
public:
    DecodingInspection(std::unique_ptr<Inspection> inner, std::unique_ptr<Decoder> decoder)
        : inner_(std::move(inner)), decoder_(std::move(decoder)) {}

    Verdict body(std::span<const std::uint8_t> bytes) override {
        if (decoded_verdict_.decided()) return decoded_verdict_;
        if (raw_) return inner_->body(bytes);
        const bool ok = decoder_->feed(bytes, [this](std::span<const std::uint8_t> block) {
            decoded_verdict_ = inner_->body(block);
            return !decoded_verdict_.decided();
        });
        if (decoded_verdict_.decided()) return decoded_verdict_;
        if (!ok) {
            // Not what its Content-Encoding says: scan what is sent, from here on, starting
            // with the last bytes before (a decoder may take a few bytes before it objects).
            raw_ = true;
            decoder_.reset();
            if (!recent_.empty()) {
                Verdict v = inner_->body(recent_);
                std::vector<std::uint8_t>().swap(recent_);
                if (v.decided()) return v;
            }
            return inner_->body(bytes);
        }
        remember(bytes);
        return Verdict::undecided();
    }

    void finish(Completion done) override { inner_->finish(std::move(done)); }
    Verdict timed_out() override { return inner_->timed_out(); }
    bool ready(const std::function<void()>& wake) override { return inner_->ready(wake); }

private:
    static constexpr std::size_t kRecent = 4096;
    // Keeps the last kRecent input bytes.
    void remember(std::span<const std::uint8_t> bytes) {
        if (bytes.size() >= kRecent) {
            recent_.assign(bytes.end() - kRecent, bytes.end());
            return;
        }
        const std::size_t keep = std::min(recent_.size(), kRecent - bytes.size());
        recent_.erase(recent_.begin(), recent_.end() - static_cast<std::ptrdiff_t>(keep));
        recent_.insert(recent_.end(), bytes.begin(), bytes.end());
    }

    std::unique_ptr<Inspection> inner_;
    std::unique_ptr<Decoder> decoder_;
    Verdict decoded_verdict_;
    bool raw_ = false;
    std::vector<std::uint8_t> recent_;  // raw input just before the current piece
};

}  // namespace

ContentCoding parse_content_coding(std::string_view header) {
    using http::iequals;
    header = http::trim_ows(header);
    if (header.empty() || iequals(header, "identity")) return ContentCoding::identity;
    if (iequals(header, "gzip") || iequals(header, "x-gzip")) return ContentCoding::gzip;
    if (iequals(header, "deflate")) return ContentCoding::deflate;
    if (iequals(header, "br")) return ContentCoding::br;
    if (iequals(header, "zstd")) return ContentCoding::zstd;
    return ContentCoding::other;
}

std::unique_ptr<Inspection> decoding_inspection(std::unique_ptr<Inspection> inner, ContentCoding coding) {
    if (!inner) return inner;
    switch (coding) {
        case ContentCoding::gzip:
        case ContentCoding::deflate:
            return std::make_unique<DecodingInspection>(std::move(inner), std::make_unique<ZlibDecoder>(coding));
        case ContentCoding::br:
            return std::make_unique<DecodingInspection>(std::move(inner), std::make_unique<BrotliDecoder>());
        case ContentCoding::zstd:
            return std::make_unique<DecodingInspection>(std::move(inner), std::make_unique<ZstdDecoder>());
        case ContentCoding::identity:
        case ContentCoding::other:
            break;
    }
    return inner;
}

}  // namespace proxy::inspect
