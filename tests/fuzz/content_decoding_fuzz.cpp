// libFuzzer entry: Content-Encoding decoding feeds the inspector from bodies a server (or a
// client, for uploads) chose. Input: a control byte (coding, piece size) then the body. The
// decoders must never crash or hang, must stop producing once the engine has decided, and
// must deliver the final verdict exactly once.

#include "inspect/content_decoding.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace {

using proxy::inspect::Inspection;
using proxy::inspect::Verdict;

// An engine that has seen enough after a scan limit, as the integrated rule set does.
class Counting final : public Inspection {
public:
    explicit Counting(std::size_t& seen) : seen_(seen) {}
    Verdict body(std::span<const std::uint8_t> bytes) override {
        if (decided_) __builtin_trap();  // fed after it said allow
        seen_ += bytes.size();
        if (seen_ >= kScanLimit) {
            decided_ = true;
            return Verdict::allow("scan limit reached");
        }
        return Verdict::undecided();
    }
    void finish(Completion done) override { done(Verdict::allow()); }

    static constexpr std::size_t kScanLimit = 1 << 20;

private:
    std::size_t& seen_;
    bool decided_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    constexpr proxy::inspect::ContentCoding kCodings[] = {
        proxy::inspect::ContentCoding::gzip, proxy::inspect::ContentCoding::deflate,
        proxy::inspect::ContentCoding::br, proxy::inspect::ContentCoding::zstd};
    const auto coding = kCodings[data[0] & 3];
    const std::size_t piece = 1 + (data[0] >> 2) * 16;  // 1-1009 bytes at a time
    std::size_t seen = 0;
    auto inspection = proxy::inspect::decoding_inspection(std::make_unique<Counting>(seen), coding);
    bool decided = false;
    for (std::size_t at = 1; at < size && !decided; at += piece) {
        const Verdict v = inspection->body({data + at, std::min(piece, size - at)});
        decided = v.decided();
    }
    if (seen > Counting::kScanLimit + 64 * 1024) __builtin_trap();  // decoded past the decision
    int calls = 0;
    inspection->finish([&calls](Verdict) { ++calls; });
    if (calls != 1) __builtin_trap();
    return 0;
}
