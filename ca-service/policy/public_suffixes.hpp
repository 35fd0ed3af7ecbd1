#pragma once
// Public suffixes: names under which unrelated parties register domains (com, co.uk,
// github.io, *.np). A certificate for one, or a wildcard over one, would cover everybody's
// names, so the issuance policy refuses them whatever its allow list says.
//
// The list is the Public Suffix List as Debian ships it (package publicsuffix), read with
// libpsl: ICANN and private sections, wildcard rules (*.ck) and exceptions (!www.ck).

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

struct psl_ctx_st;

namespace ca::policy {

// Debian's copy, kept current by the publicsuffix package.
inline constexpr std::string_view kDefaultPublicSuffixList = "/usr/share/publicsuffix/public_suffix_list.dat";

class PublicSuffixList {
public:
    // Reads a list in the PSL text format or libpsl's DAFSA format. Throws
    // std::invalid_argument naming the file when it cannot be read or holds no rule; the
    // policy fails closed rather than running without a list.
    static std::shared_ptr<const PublicSuffixList> load(const std::filesystem::path& file);

    // name: normalised (lower-case A-labels, no trailing dot). True when a rule of the list
    // makes name a suffix; with default_rule, an unlisted top-level label counts too (the
    // PSL's implicit "*" rule).
    bool is_public_suffix(std::string_view name, bool default_rule = true) const;

    // The public suffix plus one label ("www.example.co.uk" -> "example.co.uk"), as a view
    // into name; nullopt when name is itself a public suffix (an unlisted top-level label
    // included) or a single label.
    std::optional<std::string_view> registrable_domain(std::string_view name) const;

    std::size_t rule_count() const { return rules_; }  // suffix rules, wildcards included
    std::size_t exception_count() const { return exceptions_; }
    const std::filesystem::path& file() const { return file_; }

private:
    struct Free {
        void operator()(psl_ctx_st* ctx) const;
    };
    PublicSuffixList(std::unique_ptr<psl_ctx_st, Free> ctx, std::filesystem::path file);

    std::unique_ptr<psl_ctx_st, Free> ctx_;
    std::filesystem::path file_;
    std::size_t rules_ = 0;
    std::size_t exceptions_ = 0;
};

}  // namespace ca::policy
