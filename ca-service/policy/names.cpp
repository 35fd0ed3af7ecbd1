#include "policy/names.hpp"

#include <arpa/inet.h>
#include <idn2.h>

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>

namespace ca::policy {

namespace {

using protocol::Error;
using protocol::ErrorCode;

constexpr std::string_view kWildcardLabel = "*";

std::string quoted(std::string_view text) { return "\"" + protocol::printable(text) + "\""; }

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_ldh(char c) {
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// An "xn--" label must be a valid IDNA2008 A-label, checked as a registry would (RFC 5891
// section 4, libidn2's register conversion): one that does not decode, or decodes to code
// points IDNA2008 disallows (controls, symbols), names no registrable domain. Other labels:
// nothing to say.
std::optional<std::string> a_label_problem(std::string_view label) {
    if (!label.starts_with("xn--")) return std::nullopt;
    const std::string text(label);
    std::uint8_t* checked = nullptr;
    const int rc = idn2_register_u8(nullptr, reinterpret_cast<const std::uint8_t*>(text.c_str()), &checked, 0);
    idn2_free(checked);
    if (rc == IDN2_OK) return std::nullopt;
    return "has the label " + quoted(label) + ", which is not a valid IDNA A-label (" + idn2_strerror(rc) +
           "); internationalised names must be the A-label of a valid U-label";
}

// dns_name is lower-case without a trailing dot. Returns why it is not a valid host name
// (an empty optional when it is). allow_wildcard: a leftmost "*" label is accepted.
std::optional<std::string> dns_syntax_problem(std::string_view dns_name, bool allow_wildcard,
                                              std::size_t min_labels) {
    if (dns_name.empty()) return "is empty";
    if (dns_name.size() > kMaxDnsNameLength)
        return "is " + std::to_string(dns_name.size()) + " characters long; a DNS name has at most " +
               std::to_string(kMaxDnsNameLength);
    std::size_t labels = 0;
    std::string_view last_label;
    std::string_view rest = dns_name;
    while (true) {
        const auto dot = rest.find('.');
        const std::string_view label = rest.substr(0, dot);
        const bool leftmost = labels == 0;
        ++labels;
        last_label = label;
        if (label.empty()) return "has an empty label (a leading dot or two dots in a row)";
        if (label.find('*') != std::string_view::npos) {
            if (!allow_wildcard || !leftmost || label != kWildcardLabel)
                return "has a misplaced wildcard; a wildcard must be the whole leftmost label, as in "
                       "*.example.com";
        } else {
            if (label.size() > kMaxLabelLength)
                return "has a label of " + std::to_string(label.size()) +
                       " characters; a label has at most " + std::to_string(kMaxLabelLength);
            if (auto bad = std::find_if_not(label.begin(), label.end(), is_ldh); bad != label.end()) {
                return "contains " + quoted(std::string_view(&*bad, 1)) +
                       "; DNS names use only letters, digits, hyphens and dots";
            }
            if (label.front() == '-' || label.back() == '-')
                return "has a label that starts or ends with a hyphen";
            if (auto problem = a_label_problem(label)) return problem;
        }
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    if (labels < min_labels)
        return "has a single label; ask for a fully qualified name such as host.example.com";
    if (std::all_of(last_label.begin(), last_label.end(), is_digit))
        return "ends in an all-numeric top-level label, which no DNS name has";
    return std::nullopt;
}

Error invalid(std::string_view requested, std::string_view problem) {
    return Error{ErrorCode::invalid_name, "name " + quoted(requested) + " " + std::string(problem)};
}

std::variant<ClassifiedName, Error> classify_ip(std::string_view requested, int family) {
    // inet_pton needs a NUL-terminated string; the longest IPv6 text form is 45 characters.
    std::array<char, INET6_ADDRSTRLEN> text{};
    std::array<unsigned char, 16> raw{};
    const bool fits = requested.size() < text.size();
    if (fits) std::copy(requested.begin(), requested.end(), text.begin());
    if (!fits || inet_pton(family, text.data(), raw.data()) != 1) {
        return invalid(requested,
                       family == AF_INET6
                           ? "contains ':' but is not an IPv6 address (no brackets, ports or zone ids)"
                           : "looks like an IPv4 address but is not one; write four decimal "
                             "octets 0-255 without leading zeros, as in 192.0.2.1");
    }
    ClassifiedName name;
    name.kind = NameKind::ip;
    name.ip.assign(raw.begin(), raw.begin() + (family == AF_INET ? 4 : 16));
    std::array<char, INET6_ADDRSTRLEN> canonical{};
    inet_ntop(family, raw.data(), canonical.data(), canonical.size());
    name.normalised = canonical.data();
    return name;
}

bool is_strictly_below(std::string_view name, std::string_view domain) {
    return name.size() > domain.size() + 1 && name.ends_with(domain) &&
           name[name.size() - domain.size() - 1] == '.';
}

bool is_at_or_below(std::string_view name, std::string_view domain) {
    return name == domain || is_strictly_below(name, domain);
}

// name is exactly one label over domain ("www.example.com" over "example.com").
bool is_child(std::string_view name, std::string_view domain) {
    return is_strictly_below(name, domain) &&
           name.substr(0, name.size() - domain.size() - 1).find('.') == std::string_view::npos;
}

}  // namespace

std::string_view ClassifiedName::base() const {
    std::string_view name = normalised;
    if (wildcard) name.remove_prefix(kWildcardLabel.size() + 1);
    return name;
}

std::variant<ClassifiedName, Error> classify_name(std::string_view requested) {
    if (requested.empty()) return invalid(requested, "is empty");
    if (std::any_of(requested.begin(), requested.end(),
                    [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        return invalid(requested,
                       "contains non-ASCII characters; send internationalised names in their IDNA A-label "
                       "(punycode) form, e.g. xn--bcher-kva.example for b\xc3\xbc"
                       "cher.example");
    if (requested.find(':') != std::string_view::npos) return classify_ip(requested, AF_INET6);
    if (std::all_of(requested.begin(), requested.end(), [](char c) { return is_digit(c) || c == '.'; }))
        return classify_ip(requested, AF_INET);

    std::string name = lower(requested);
    // The absolute form "example.com." names the same host; certificates carry it without
    // the dot (RFC 5280 section 4.2.1.6), so normalise rather than refuse.
    if (name.ends_with('.')) name.pop_back();
    if (auto problem = dns_syntax_problem(name, /*allow_wildcard=*/true, kMinDnsLabels))
        return invalid(requested, *problem);

    ClassifiedName classified;
    classified.kind = NameKind::dns;
    classified.wildcard = name.starts_with("*.");
    classified.normalised = std::move(name);
    return classified;
}

NamePattern::NamePattern(Scope scope, std::string domain, std::string text)
    : scope_(scope), domain_(std::move(domain)), text_(std::move(text)) {}

NamePattern NamePattern::parse(std::string_view pattern) {
    std::string domain = lower(pattern);
    Scope scope = Scope::exact;
    if (domain.starts_with("*.")) {
        scope = Scope::below;
        domain.erase(0, 2);
    } else if (domain.starts_with('.')) {
        scope = Scope::subtree;
        domain.erase(0, 1);
    }
    // Patterns must be exactly as written: a trailing dot would be a typo, not an absolute name.
    std::optional<std::string> problem;
    if (domain.ends_with('.'))
        problem = "ends with a dot";
    else if (std::any_of(domain.begin(), domain.end(),
                         [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
        problem = "contains non-ASCII characters; write internationalised names as A-labels (xn--...)";
    // A single-label domain is fine in a pattern: ".internal" or "*.ru" are sensible rules.
    else if (auto p = dns_syntax_problem(domain, /*allow_wildcard=*/false, /*min_labels=*/1))
        problem = p;
    if (problem)
        throw std::invalid_argument("name pattern " + quoted(pattern) + " " + *problem +
                                    "; write example.com (that name), *.example.com (names below it) or "
                                    ".example.com (it and names below it)");
    return NamePattern(scope, std::move(domain), std::string(pattern));
}

bool NamePattern::matches(std::string_view dns_name) const {
    switch (scope_) {
        case Scope::exact:
            return dns_name == domain_;
        case Scope::below:
            return is_strictly_below(dns_name, domain_);
        case Scope::subtree:
            return is_at_or_below(dns_name, domain_);
    }
    return false;
}

bool NamePattern::covers_all(const ClassifiedName& name) const {
    if (name.kind != NameKind::dns) return false;
    if (!name.wildcard) return matches(name.normalised);
    // "*.B" stands for every one-label child of B; only a below/subtree rule at or above B
    // contains them all.
    return scope_ != Scope::exact && is_at_or_below(name.base(), domain_);
}

bool NamePattern::covers_any(const ClassifiedName& name) const {
    if (name.kind != NameKind::dns) return false;
    if (!name.wildcard) return matches(name.normalised);
    const std::string_view base = name.base();
    switch (scope_) {
        case Scope::exact:
            return is_child(domain_, base);
        case Scope::below:
            return is_at_or_below(base, domain_);
        case Scope::subtree:
            return is_at_or_below(base, domain_) || is_child(domain_, base);
    }
    return false;
}

}  // namespace ca::policy
