// inspect/content_decoding: bodies sent with a Content-Encoding are scanned decoded.

#include "inspect/content_decoding.hpp"
#include "inspect/rule_set.hpp"
#include "inspect_feed.hpp"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <catch2/catch_test_macros.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace proxy::inspect;
using namespace inspect_testing;

namespace {

// window_bits: 15 + 16 gzip, 15 zlib ("deflate" as RFC 9110 means it), -15 raw deflate.
std::string zlib_compress(const std::string& in, int window_bits, int level = Z_BEST_COMPRESSION) {
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2");
    std::string out(deflateBound(&z, in.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
    return out;
}

std::string brotli_compress(const std::string& in, int quality = BROTLI_DEFAULT_QUALITY) {
    std::string out(BrotliEncoderMaxCompressedSize(in.size()) + 1024, '\0');
    std::size_t size = out.size();
    if (!BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.size(),
                               reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                               reinterpret_cast<std::uint8_t*>(out.data())))
        throw std::runtime_error("brotli");
    out.resize(size);
    return out;
}

// Streaming zstd without a pledged size, as a server compressing on the fly sends it: the
// frame header carries a window of 2^window_log, not the content size.
std::string zstd_compress(const std::string& in, int window_log = 20, int level = 3) {
    ZSTD_CCtx* ctx = ZSTD_createCCtx();
    if (ctx == nullptr) throw std::runtime_error("ZSTD_createCCtx");
    std::string out;
    auto check = [&](std::size_t rc) {
        if (ZSTD_isError(rc)) {
            ZSTD_freeCCtx(ctx);
            throw std::runtime_error(ZSTD_getErrorName(rc));
        }
        return rc;
    };
    check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level));
    check(ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, window_log));
    std::string buf(ZSTD_CStreamOutSize(), '\0');
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    for (ZSTD_EndDirective mode : {ZSTD_e_continue, ZSTD_e_end}) {
        if (mode == ZSTD_e_end) input = {nullptr, 0, 0};
        for (;;) {
            ZSTD_outBuffer output{buf.data(), buf.size(), 0};
            const std::size_t left = check(ZSTD_compressStream2(ctx, &output, &input, mode));
            out.append(buf.data(), output.pos);
            if (mode == ZSTD_e_continue ? input.pos == input.size : left == 0) break;
        }
    }
    ZSTD_freeCCtx(ctx);
    return out;
}

// Records what it is fed; allows once it has seen `allow_after` bytes (0: never decides early).
class Recorder final : public Inspection {
public:
    Recorder(std::string& seen, std::uint64_t allow_after) : seen_(seen), allow_after_(allow_after) {}
    Verdict body(std::span<const std::uint8_t> bytes) override {
        seen_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        if (allow_after_ != 0 && seen_.size() >= allow_after_) return Verdict::allow("enough");
        return Verdict::undecided();
    }
    void finish(Completion done) override { done(Verdict::allow()); }

private:
    std::string& seen_;
    std::uint64_t allow_after_;
};

// `encoded` in `piece`-byte pieces through a decoding inspection over the rule set.
Verdict scan(const std::string& encoded, ContentCoding coding, std::size_t piece) {
    proxy::InspectionSection cfg;
    RuleSetInspector rules(cfg);
    auto in = decoding_inspection(rules.begin(MessageInfo{}), coding);
    return feed_in_pieces(*in, encoded, piece);
}

}  // namespace

TEST_CASE("Content-Encoding values are recognised strictly", "[inspect][encoding]") {
    CHECK(parse_content_coding("gzip") == ContentCoding::gzip);
    CHECK(parse_content_coding(" GZip\t") == ContentCoding::gzip);
    CHECK(parse_content_coding("x-gzip") == ContentCoding::gzip);
    CHECK(parse_content_coding("deflate") == ContentCoding::deflate);
    CHECK(parse_content_coding("br") == ContentCoding::br);
    CHECK(parse_content_coding("ZSTD") == ContentCoding::zstd);
    CHECK(parse_content_coding("identity") == ContentCoding::identity);
    CHECK(parse_content_coding("") == ContentCoding::identity);
    CHECK(parse_content_coding("gzip, br") == ContentCoding::other);
    CHECK(parse_content_coding("dcz") == ContentCoding::other);  // needs a shared dictionary
}

TEST_CASE("EICAR is found inside gzip, deflate (wrapped and raw), br and zstd bodies, however they are cut",
          "[inspect][encoding]") {
    // Text around the test file, so every coder entropy-codes its literals (a run of one
    // letter would leave them stored as they are, and a plain scan would see them).
    std::string text;
    for (std::uint32_t i = 0, x = 1; i < 50000; ++i, x = x * 1103515245u + 12345u)
        text.push_back(static_cast<char>('a' + (x >> 16) % 16));
    const std::string body = text + eicar_test_string() + text.substr(0, 3000);
    struct Case {
        const char* name;
        std::string encoded;
        ContentCoding coding;
    };
    const std::vector<Case> cases = {{"gzip", zlib_compress(body, 15 + 16), ContentCoding::gzip},
                                     {"deflate", zlib_compress(body, 15), ContentCoding::deflate},
                                     {"raw deflate", zlib_compress(body, -15), ContentCoding::deflate},
                                     {"br", brotli_compress(body), ContentCoding::br},
                                     {"zstd", zstd_compress(body), ContentCoding::zstd},
                                     {"zstd, one shot", [&] {
                                          std::string out(ZSTD_compressBound(body.size()), '\0');
                                          out.resize(ZSTD_compress(out.data(), out.size(), body.data(), body.size(), 19));
                                          return out;
                                      }(),
                                      ContentCoding::zstd}};
    for (const auto& c : cases) {
        for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{1} << 20}) {
            INFO(c.name << " in pieces of " << piece);
            const Verdict v = scan(c.encoded, c.coding, piece);
            CHECK(v.blocked());
            CHECK(v.rule == "eicar");
        }
        // The same bytes undecoded hide it: that is what decoding is for.
        INFO(c.name << " scanned as sent");
        CHECK_FALSE(scan(c.encoded, ContentCoding::other, 4096).blocked());
    }
}

TEST_CASE("a decoded body reaches the engine byte for byte", "[inspect][encoding]") {
    std::string body;
    for (std::uint32_t i = 0; i < 300000; ++i) body.push_back(static_cast<char>((i * 7919u) % 251u));
    for (auto [coding, encoded] : {std::pair{ContentCoding::gzip, zlib_compress(body, 15 + 16)},
                                   std::pair{ContentCoding::br, brotli_compress(body)},
                                   std::pair{ContentCoding::zstd, zstd_compress(body)}}) {
        std::string seen;
        auto in = decoding_inspection(std::make_unique<Recorder>(seen, 0), coding);
        for (std::size_t off = 0; off < encoded.size(); off += 1000)
            CHECK_FALSE(in->body(view(encoded.substr(off, 1000))).decided());
        CHECK(seen == body);
    }
}

TEST_CASE("a decompression bomb is decoded only as far as the engine reads", "[inspect][encoding]") {
    // 64 MiB of zeros: about 64 KiB gzipped, a few dozen bytes as br.
    const std::string zeros(64u << 20, '\0');
    for (auto [coding, encoded] : {std::pair{ContentCoding::gzip, zlib_compress(zeros, 15 + 16, 1)},
                                   std::pair{ContentCoding::br, brotli_compress(zeros, 4)},
                                   std::pair{ContentCoding::zstd, zstd_compress(zeros, 23, 1)}}) {
        std::string seen;
        auto in = decoding_inspection(std::make_unique<Recorder>(seen, 1u << 20), coding);
        Verdict v;
        for (std::size_t off = 0; off < encoded.size() && !v.decided(); off += 16384)
            v = in->body(view(encoded.substr(off, 16384)));
        CHECK(v.kind == Verdict::Kind::allow);
        CHECK(seen.size() >= (1u << 20));
        CHECK(seen.size() <= (1u << 20) + 16384);  // one decoded block past the engine's limit at most
    }
    // With the rule set: max_scan_bytes bounds it, and over_limit decides.
    proxy::InspectionSection cfg;
    cfg.max_scan_bytes = 4u << 20;
    cfg.over_limit_block = true;
    RuleSetInspector rules(cfg);
    auto in = decoding_inspection(rules.begin(MessageInfo{}), ContentCoding::gzip);
    const std::string encoded = zlib_compress(zeros, 15 + 16, 1);
    Verdict v;
    for (std::size_t off = 0; off < encoded.size() && !v.decided(); off += 16384)
        v = in->body(view(encoded.substr(off, 16384)));
    CHECK(v.blocked());
    CHECK(v.rule == std::string(kScanLimitRule));
}

TEST_CASE("a body that does not decode is scanned as sent", "[inspect][encoding]") {
    // Labelled gzip, sent plain: still blocked.
    const std::string plain = "not gzip at all " + eicar_test_string();
    Verdict v = scan(plain, ContentCoding::gzip, 5);
    CHECK(v.blocked());
    // A clean gzip member, then the test file in a second member (gunzip decodes both), or
    // sent plain after the end.
    const std::string clean = zlib_compress(std::string(1000, 'a'), 15 + 16);
    CHECK(scan(clean + zlib_compress(eicar_test_string(), 15 + 16), ContentCoding::gzip, 10).blocked());
    CHECK(scan(clean + eicar_test_string(), ContentCoding::gzip, 10).blocked());
    CHECK(scan(clean + eicar_test_string(), ContentCoding::gzip, 1 << 20).blocked());
    // Trailing bytes after a deflate stream are scanned as sent too.
    CHECK(scan(zlib_compress("x", 15) + eicar_test_string(), ContentCoding::deflate, 3).blocked());
    // Truncated clean gzip: the final verdict is the engine's.
    const std::string truncated = zlib_compress(std::string(100000, 'z'), 15 + 16).substr(0, 200);
    CHECK(scan(truncated, ContentCoding::gzip, 64).kind == Verdict::Kind::allow);
}

TEST_CASE("zstd: frames in a row all decode; a window over 8 MiB or a bad frame is scanned as sent",
          "[inspect][encoding]") {
    const std::string clean = zstd_compress(std::string(1000, 'a'));
    CHECK(scan(clean + zstd_compress(eicar_test_string()), ContentCoding::zstd, 10).blocked());
    CHECK(scan(clean + eicar_test_string(), ContentCoding::zstd, 10).blocked());
    CHECK(scan("not zstd " + eicar_test_string(), ContentCoding::zstd, 5).blocked());

    // RFC 9659 caps the window at 8 MiB: a frame that asks for 16 MiB is not given the
    // memory; the engine sees exactly the bytes sent.
    std::string body;
    for (std::uint32_t i = 0; i < 200000; ++i) body.push_back(static_cast<char>((i * 7919u) % 251u));
    const std::string wide = zstd_compress(body, 24);
    std::string seen;
    auto in = decoding_inspection(std::make_unique<Recorder>(seen, 0), ContentCoding::zstd);
    CHECK_FALSE(in->body(view(wide)).decided());
    CHECK(seen == wide);
    // The same content with an 8 MiB window decodes.
    seen.clear();
    auto ok = decoding_inspection(std::make_unique<Recorder>(seen, 0), ContentCoding::zstd);
    CHECK_FALSE(ok->body(view(zstd_compress(body, 23))).decided());
    CHECK(seen == body);
}
