#include "inspect/rule_set.hpp"

#include "ossl/error.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace proxy::inspect {

std::string_view name(Direction d) {
    return d == Direction::request ? "request" : "response";
}

std::string eicar_test_string() {
    std::string s = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    s += "EICAR-STANDARD-ANTIVIRUS-";
    s += "TEST-FILE!$H+H*";
    return s;
}

namespace {

std::vector<std::vector<std::uint8_t>> pattern_bytes(const InspectionSection& c,
                                                     std::vector<std::string>& names) {
    std::vector<std::vector<std::uint8_t>> out;
    if (c.eicar) {
        const std::string e = eicar_test_string();
        out.emplace_back(e.begin(), e.end());
        names.emplace_back(kEicarRule);
    }
    for (const auto& [name, bytes] : c.patterns) {
        out.push_back(bytes);
        names.push_back(name);
    }
    return out;
}

}  // namespace

// One message's scan: automaton state, running digest, bytes seen.
class RuleScan final : public Inspection {
public:
    explicit RuleScan(const RuleSetInspector& rules) : rules_(rules) {
        if (!rules_.hashes_.empty()) {
            md_.reset(EVP_MD_CTX_new());
            if (!md_ || EVP_DigestInit_ex(md_.get(), rules_.sha256_.get(), nullptr) != 1)
                throw ossl::Error("SHA-256 digest init");
        }
    }

    Verdict body(std::span<const std::uint8_t> bytes) override {
        if (over_) return Verdict::allow();
        const std::uint64_t room = rules_.max_scan_bytes_ - seen_;
        const auto scan = bytes.first(static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), room)));
        if (const int m = rules_.patterns_.scan(state_, scan); m != PatternSet::kNoMatch)
            return Verdict::block(rules_.pattern_rules_[static_cast<std::size_t>(m)]);
        if (md_) EVP_DigestUpdate(md_.get(), scan.data(), scan.size());
        seen_ += scan.size();
        if (scan.size() < bytes.size()) {
            over_ = true;
            const std::string note =
                "body over max_scan_bytes (" + std::to_string(rules_.max_scan_bytes_) + ")";
            if (rules_.over_limit_block_) return Verdict::block(std::string(kScanLimitRule), note);
            Verdict v = Verdict::allow(note + ", rest not scanned");
            v.over_limit = true;
            return v;
        }
        // Nothing left that could block: no hash rule needs the whole body.
        if (rules_.patterns_.empty() && !md_) return Verdict::allow();
        return Verdict::undecided();
    }

    void finish(Completion done) override {
        if (md_ && !over_) {
            std::array<std::uint8_t, 32> digest{};
            unsigned len = 0;
            EVP_DigestFinal_ex(md_.get(), digest.data(), &len);
            for (const auto& [rule, hash] : rules_.hashes_)
                if (hash == digest) return done(Verdict::block(rule, "SHA-256 of the body"));
        }
        done(Verdict::allow());
    }

private:
    const RuleSetInspector& rules_;
    PatternSet::State state_ = 0;
    ossl::MdCtx md_;
    std::uint64_t seen_ = 0;
    bool over_ = false;
};

RuleSetInspector::RuleSetInspector(const InspectionSection& config)
    : patterns_(pattern_bytes(config, pattern_rules_)),
      sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
      max_scan_bytes_(config.max_scan_bytes),
      over_limit_block_(config.over_limit_block) {
    if (!sha256_) throw ossl::Error("fetching SHA-256");
    for (const auto& [rule, bytes] : config.sha256) {
        std::array<std::uint8_t, 32> h{};
        if (bytes.size() != h.size())
            throw std::invalid_argument("inspection.sha256." + rule + ": not 32 bytes");
        std::copy(bytes.begin(), bytes.end(), h.begin());
        hashes_.emplace_back(rule, h);
    }
}

std::unique_ptr<Inspection> RuleSetInspector::begin(const MessageInfo&) const {
    return std::make_unique<RuleScan>(*this);
}

std::vector<std::string> RuleSetInspector::rule_names() const {
    std::vector<std::string> out = pattern_rules_;
    for (const auto& h : hashes_) out.push_back(h.first);
    out.emplace_back(kScanLimitRule);
    return out;
}

}  // namespace proxy::inspect
