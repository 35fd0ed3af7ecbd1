#include "policy/public_suffixes.hpp"

#include <libpsl.h>

#include <stdexcept>
#include <string>
#include <system_error>

namespace ca::policy {

void PublicSuffixList::Free::operator()(psl_ctx_st* ctx) const {
    psl_free(ctx);
}

PublicSuffixList::PublicSuffixList(std::unique_ptr<psl_ctx_st, Free> ctx, std::filesystem::path file)
    : ctx_(std::move(ctx)), file_(std::move(file)) {
    // libpsl reports -1 for counts a DAFSA file does not carry.
    int rules = psl_suffix_count(ctx_.get());
    int exceptions = psl_suffix_exception_count(ctx_.get());
    rules_ = rules > 0 ? static_cast<std::size_t>(rules) : 0;
    exceptions_ = exceptions > 0 ? static_cast<std::size_t>(exceptions) : 0;
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load(const std::filesystem::path& file) {
    const std::string hint = "; install Debian's publicsuffix package or point policy.public_suffix_list at a "
                             "copy of the Public Suffix List";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
        throw std::invalid_argument("public suffix list " + file.string() + " is not a readable file" + hint);
    std::unique_ptr<psl_ctx_st, Free> ctx(psl_load_file(file.c_str()));
    if (!ctx) throw std::invalid_argument("public suffix list " + file.string() + " cannot be read" + hint);
    std::shared_ptr<const PublicSuffixList> list(new PublicSuffixList(std::move(ctx), file));
    // A truncated or foreign file would silently turn every suffix into a registrable
    // domain: com must be listed, and a name under it must not be.
    if (!list->is_public_suffix("com", false) || list->is_public_suffix("example.com", false))
        throw std::invalid_argument("public suffix list " + file.string() +
                                    " holds no usable rules (\"com\" is not listed)" + hint);
    return list;
}

bool PublicSuffixList::is_public_suffix(std::string_view name, bool default_rule) const {
    if (name.empty()) return false;
    const std::string text(name);  // libpsl wants a terminated string
    return psl_is_public_suffix2(ctx_.get(), text.c_str(),
                                 default_rule ? PSL_TYPE_ANY : PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE) != 0;
}

std::optional<std::string_view> PublicSuffixList::registrable_domain(std::string_view name) const {
    if (name.empty()) return std::nullopt;
    const std::string text(name);
    const char* found = psl_registrable_domain(ctx_.get(), text.c_str());
    if (found == nullptr) return std::nullopt;
    return name.substr(static_cast<std::size_t>(found - text.c_str()));
}

}  // namespace ca::policy
