#include "policy/issuance_policy.hpp"

#include "policy/public_suffixes.hpp"

#include "protocol/limits.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace ca::policy {

namespace {

using protocol::Error;
using protocol::ErrorCode;
using std::chrono::seconds;

std::string in_quotes(std::string_view name) {
    return "\"" + std::string(name) + "\"";
}

std::string describe(seconds s) {
    return std::to_string(s.count()) + " s";
}

std::vector<NamePattern> parse_patterns(const std::vector<std::string>& patterns, std::string_view setting) {
    std::vector<NamePattern> parsed;
    parsed.reserve(patterns.size());
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        try {
            parsed.push_back(NamePattern::parse(patterns[i]));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string(setting) + "[" + std::to_string(i) + "]: " + e.what());
        }
    }
    return parsed;
}

void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument("issuance policy: " + message);
}

}  // namespace

IssuancePolicy::IssuancePolicy(PolicyConfig config) : config_(std::move(config)) {
    const seconds hard_max{protocol::kMaxLifetimeSeconds};
    require(config_.max_names >= 1 && config_.max_names <= protocol::kMaxNames,
            "max_names is " + std::to_string(config_.max_names) + "; set it between 1 and " +
                std::to_string(protocol::kMaxNames) + " (the protocol's ceiling)");
    require(config_.max_lifetime >= seconds{1} && config_.max_lifetime <= hard_max,
            "max_lifetime is " + describe(config_.max_lifetime) + "; set it between 1 s and " +
                describe(hard_max) + " (the protocol's ceiling)");
    require(config_.default_lifetime >= seconds{1} && config_.default_lifetime <= config_.max_lifetime,
            "default_lifetime is " + describe(config_.default_lifetime) +
                "; set it between 1 s and max_lifetime (" + describe(config_.max_lifetime) + ")");
    require(config_.backdate >= seconds{0} && config_.backdate <= kMaxBackdate,
            "backdate is " + describe(config_.backdate) + "; set it between 0 and " + describe(kMaxBackdate));
    require(config_.min_rsa_bits >= kMinRsaBits && config_.min_rsa_bits <= kMaxConfigurableRsaBits,
            "min_rsa_bits is " + std::to_string(config_.min_rsa_bits) + "; set it between " +
                std::to_string(kMinRsaBits) + " and " + std::to_string(kMaxConfigurableRsaBits));
    allowed_ = parse_patterns(config_.allowed_names, "allowed_names");
    denied_ = parse_patterns(config_.denied_names, "denied_names");
    suffixes_ = PublicSuffixList::load(config_.public_suffix_list);
}

std::variant<ClassifiedName, Error> IssuancePolicy::check_name(std::string_view requested) const {
    auto classified = classify_name(requested);
    if (auto* error = std::get_if<Error>(&classified)) return std::move(*error);
    auto& name = std::get<ClassifiedName>(classified);

    if (name.kind == NameKind::ip) {
        if (!config_.allow_ip_addresses)
            return Error{ErrorCode::ip_not_allowed,
                         "IP address " + in_quotes(name.normalised) +
                             " refused: this service's policy issues DNS names only"};
        return std::move(name);
    }
    if (name.wildcard && !config_.allow_wildcards)
        return Error{ErrorCode::wildcard_not_allowed,
                     "wildcard " + in_quotes(name.normalised) +
                         " refused: this service's policy issues no wildcards; ask for each host name"};
    // A certificate for a public suffix, or a wildcard over one, would speak for every
    // domain registered under it; no allow rule can make that acceptable.
    if (!suffixes_->registrable_domain(name.base())) {
        return Error{
            ErrorCode::public_suffix,
            name.wildcard
                ? "wildcard " + in_quotes(name.normalised) + " stands over the public suffix " +
                      in_quotes(name.base()) +
                      "; a wildcard must sit under a registered domain, as in *.example.com"
                : "name " + in_quotes(name.normalised) +
                      " is a public suffix, under which unrelated parties register domains; ask for a host "
                      "name under a registered domain"};
    }
    for (const auto& pattern : denied_) {
        if (pattern.covers_any(name))
            return Error{
                ErrorCode::name_denied,
                "name " + in_quotes(name.normalised) + " is refused by the deny rule " + in_quotes(pattern.text())};
    }
    if (!allowed_.empty() && std::none_of(allowed_.begin(), allowed_.end(),
                                          [&](const NamePattern& p) { return p.covers_all(name); })) {
        return Error{
            ErrorCode::name_not_allowed,
            "name " + in_quotes(name.normalised) + " matches none of the " + std::to_string(allowed_.size()) +
                " allowed name patterns of this service" +
                (name.wildcard ? " (a wildcard needs a rule covering every name below its base)" : "")};
    }
    return std::move(name);
}

std::variant<ApprovedLeaf, Error> IssuancePolicy::evaluate(const protocol::LeafRequest& request) const {
    if (request.names.empty())
        return Error{ErrorCode::invalid_field, "no names requested; ask for at least one"};
    if (request.names.size() > config_.max_names)
        return Error{ErrorCode::too_many_names, std::to_string(request.names.size()) +
                                                    " names requested; this service issues at most " +
                                                    std::to_string(config_.max_names) + " per certificate"};

    ApprovedLeaf leaf;
    std::set<std::string> seen_dns;
    std::set<ossl::Bytes> seen_ip;
    for (const auto& requested : request.names) {
        auto checked = check_name(requested);
        if (auto* error = std::get_if<Error>(&checked)) return std::move(*error);
        auto& name = std::get<ClassifiedName>(checked);
        const bool fresh = name.kind == NameKind::ip ? seen_ip.insert(name.ip).second
                                                     : seen_dns.insert(name.normalised).second;
        if (!fresh)
            return Error{ErrorCode::duplicate_name,
                         "name " + in_quotes(name.normalised) +
                             " is requested twice (after lower-casing and removing a "
                             "trailing dot); list each name once"};
        if (name.kind == NameKind::ip)
            leaf.ip_addresses.push_back(name.ip);
        else
            leaf.dns_names.push_back(name.normalised);
        leaf.names.push_back(std::move(name.normalised));
    }

    auto key = key_cache_->check(request.public_key, config_.min_rsa_bits);
    if (auto* error = std::get_if<Error>(&key)) return std::move(*error);
    leaf.spki_der = std::move(std::get<AcceptedKey>(key).spki_der);
    leaf.key_description = std::move(std::get<AcceptedKey>(key).description);

    leaf.lifetime = request.lifetime_seconds ? seconds{*request.lifetime_seconds} : config_.default_lifetime;
    if (leaf.lifetime > config_.max_lifetime) {
        if (config_.refuse_overlong_lifetime)
            return Error{ErrorCode::lifetime_too_long, "lifetime_seconds " +
                                                           std::to_string(leaf.lifetime.count()) +
                                                           " is above this service's maximum of " +
                                                           std::to_string(config_.max_lifetime.count())};
        leaf.lifetime = config_.max_lifetime;
        leaf.lifetime_capped = true;
    }
    leaf.backdate = config_.backdate;
    return leaf;
}

}  // namespace ca::policy
