#pragma once
// What the ca-service may issue: which names, how many, for how long, for which keys.
// The configuration file is parsed elsewhere into PolicyConfig; this code never sees
// configuration text.

#include "policy/names.hpp"
#include "policy/public_key.hpp"
#include "policy/public_suffixes.hpp"

#include "ossl/encoding.hpp"
#include "protocol/errors.hpp"
#include "protocol/leaf.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace ca::policy {

inline constexpr std::size_t kDefaultMaxNames = 20;
inline constexpr std::chrono::seconds kDefaultMaxLifetime = std::chrono::hours{24};
// Half the maximum: a node renewing at half-life never holds an expired leaf, and the
// window a stolen leaf stays usable is half a day.
inline constexpr std::chrono::seconds kDefaultLifetime = std::chrono::hours{12};
// Clients whose clocks run a few minutes slow must not see a not-yet-valid certificate.
inline constexpr std::chrono::seconds kDefaultBackdate = std::chrono::minutes{5};
// A backdate beyond a day would hide how long a leaf is really valid.
inline constexpr std::chrono::seconds kMaxBackdate = std::chrono::hours{24};

struct PolicyConfig {
    // Name patterns (see NamePattern): example.com, *.example.com, .example.com.
    std::vector<std::string> allowed_names;  // empty: every name that is not denied
    std::vector<std::string> denied_names;   // deny wins over allow
    bool allow_wildcards = true;
    // Off by default: interception of IP-addressed TLS is rare, and an IP SAN under the
    // interception root covers every name that resolves there.
    bool allow_ip_addresses = false;
    std::size_t max_names = kDefaultMaxNames;  // per certificate, 1..protocol::kMaxNames
    std::chrono::seconds max_lifetime = kDefaultMaxLifetime;
    std::chrono::seconds default_lifetime = kDefaultLifetime;  // when the request names none
    // A request above max_lifetime is capped to it (ApprovedLeaf::lifetime_capped tells the
    // caller); true refuses it with lifetime_too_long instead.
    bool refuse_overlong_lifetime = false;
    std::chrono::seconds backdate = kDefaultBackdate;  // notBefore = now - backdate
    unsigned min_rsa_bits = kMinRsaBits;
    // Names at or above a public suffix of this list are refused whatever the allow list says.
    std::filesystem::path public_suffix_list{kDefaultPublicSuffixList};
};

// A request the policy accepts, normalised: what the issuer puts into the certificate.
struct ApprovedLeaf {
    std::vector<std::string> names;         // every name, normalised, in request order (audit)
    std::vector<std::string> dns_names;     // lower-case, no trailing dot, request order
    std::vector<ossl::Bytes> ip_addresses;  // 4 or 16 bytes each, request order
    std::chrono::seconds lifetime{};        // notAfter = now + lifetime
    bool lifetime_capped = false;           // the request asked for more than max_lifetime
    std::chrono::seconds backdate{};
    ossl::Bytes spki_der;         // canonical DER SubjectPublicKeyInfo
    std::string key_description;  // "EC P-256", "RSA 3072"
};

class IssuancePolicy {
public:
    // Throws std::invalid_argument naming the setting and the accepted range or pattern
    // syntax when the configuration is inconsistent, or naming the public suffix list when
    // it cannot be read.
    explicit IssuancePolicy(PolicyConfig config);

    // Refusals carry a stable code and a message naming the offending name and rule. Checks
    // run in a fixed order (count, each name in order, key, lifetime) so the same request
    // always gets the same answer.
    std::variant<ApprovedLeaf, protocol::Error> evaluate(const protocol::LeafRequest& request) const;

    const PolicyConfig& config() const { return config_; }

private:
    std::variant<ClassifiedName, protocol::Error> check_name(std::string_view requested) const;

    PolicyConfig config_;
    std::vector<NamePattern> allowed_;
    std::vector<NamePattern> denied_;
    std::shared_ptr<const PublicSuffixList> suffixes_;
    std::shared_ptr<AcceptedKeyCache> key_cache_ = std::make_shared<AcceptedKeyCache>();
};

}  // namespace ca::policy
