#pragma once
// The integrated inspector: a rule set applied to request and response bodies as they
// stream — byte patterns (the built-in EICAR test string and configured ones, found even
// when split across chunks or TLS records) and SHA-256 hashes of whole bodies (files).
// Bodies are scanned up to [inspection] max_scan_bytes; past that, over_limit decides.

#include "config/node_config.hpp"
#include "inspect/inspector.hpp"
#include "inspect/pattern_set.hpp"
#include "ossl/handles.hpp"

#include <array>
#include <string>
#include <vector>

namespace proxy::inspect {

// The EICAR anti-virus test file's 68 bytes, built at run time (a scanner looking at this
// binary should not take the proxy itself for the test file).
std::string eicar_test_string();

inline constexpr std::string_view kEicarRule = "eicar";
inline constexpr std::string_view kScanLimitRule = "scan_limit";

class RuleSetInspector final : public Inspector {
public:
    explicit RuleSetInspector(const InspectionSection& config);
    std::unique_ptr<Inspection> begin(const MessageInfo& info) const override;

    // Every rule name a block can carry (for metrics labels).
    std::vector<std::string> rule_names() const;

private:
    friend class RuleScan;
    std::vector<std::string> pattern_rules_;  // index = PatternSet pattern index
    PatternSet patterns_;
    std::vector<std::pair<std::string, std::array<std::uint8_t, 32>>> hashes_;
    ossl::Md sha256_;
    std::uint64_t max_scan_bytes_;
    bool over_limit_block_;
};

}  // namespace proxy::inspect
