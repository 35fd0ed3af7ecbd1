#include "certs/leaf_cache.hpp"

#include "ossl/pem.hpp"
#include "protocol/time.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace proxy {

namespace {

// A certificate this close to its notAfter is not handed out: a slow handshake or a client
// clock slightly ahead must not see an expired leaf.
constexpr std::chrono::seconds kExpiryMargin{60};

}  // namespace

LeafCache::LeafCache(CaClient& ca, LeafKeyRing& keys, const LeafSection& config)
    : ca_(ca), keys_(keys), config_(config) {}

LeafCache::~LeafCache() {
    std::lock_guard lock(mu_);
    *alive_ = false;
}

std::size_t LeafCache::size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
}

std::shared_ptr<const ForgedLeaf> LeafCache::lookup_locked(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return nullptr;
    if (std::chrono::system_clock::now() + kExpiryMargin >= it->second.leaf->not_after) {
        lru_.erase(it->second.lru);
        entries_.erase(it);
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second.leaf;
}

std::shared_ptr<const ForgedLeaf> LeafCache::find(const std::string& host) {
    std::shared_ptr<const ForgedLeaf> leaf;
    bool renew = false;
    {
        std::lock_guard lock(mu_);
        leaf = lookup_locked(host);
        if (!leaf && !is_ip_literal(host)) {
            auto dot = host.find('.');
            if (dot != std::string::npos && host.find('.', dot + 1) != std::string::npos)
                leaf = lookup_locked("*" + host.substr(dot));
        }
        if (!leaf) {
            ++stats_.misses;
            return nullptr;
        }
        ++stats_.hits;
        const std::string& key = leaf->names.front();
        if (std::chrono::system_clock::now() >= leaf->renew_at && !flights_.count(key)) {
            flights_[key];  // claimed: one renewal per certificate
            renew = true;
        }
    }
    if (renew) {
        ++stats_.renewals;
        request(leaf->names.front(), leaf->names, false);
    }
    return leaf;
}

void LeafCache::obtain(const std::string& host, const std::vector<std::string>& extra_names, Callback done) {
    {
        std::lock_guard lock(mu_);
        auto it = flights_.find(host);
        if (it != flights_.end()) {
            ++stats_.joined;
            it->second.waiters.push_back(std::move(done));
            return;
        }
        flights_[host].waiters.push_back(std::move(done));
    }
    std::vector<std::string> names{host};
    if (!is_ip_literal(host)) {
        for (const auto& n : extra_names) {
            if (names.size() >= config_.max_names) break;
            std::string norm = normalise_name(n);
            if (plausible_dns_name(norm) && std::find(names.begin(), names.end(), norm) == names.end())
                names.push_back(norm);
        }
    }
    request(host, std::move(names), false);
}

void LeafCache::request(const std::string& flight_key, std::vector<std::string> names, bool narrowed_already) {
    auto key = keys_.current();
    protocol::LeafRequest req;
    req.names = names;
    req.public_key = key->spki_der;
    req.lifetime_seconds = static_cast<std::uint32_t>(config_.lifetime.count());
    std::weak_ptr<bool> alive = alive_;
    ca_.request_leaf(std::move(req), [this, alive, flight_key, names, narrowed_already, key](CaResult result) {
        auto guard = alive.lock();
        if (!guard || !*guard) return;
        LeafOutcome outcome;
        if (auto* failure = std::get_if<CaFailure>(&result)) {
            // The extra names are a saving, not a need: if policy refuses them, ask for the
            // host alone rather than failing the connection.
            if (failure->kind == CaFailure::Kind::refused && names.size() > 1 && !narrowed_already) {
                ++stats_.narrowed;
                request(flight_key, {names.front()}, true);
                return;
            }
            outcome.error = failure->message;
            outcome.ca_unavailable = failure->kind == CaFailure::Kind::unavailable;
            ++stats_.failed;
        } else {
            try {
                outcome.leaf = build(std::get<protocol::LeafResponse>(result), key);
                ++stats_.issued;
            } catch (const std::exception& e) {
                outcome.error = std::string("certificate from the ca-service is unusable: ") + e.what();
                ++stats_.failed;
            }
        }
        complete(flight_key, std::move(outcome));
    });
}

void LeafCache::complete(const std::string& flight_key, LeafOutcome outcome) {
    std::vector<Callback> waiters;
    {
        std::lock_guard lock(mu_);
        if (outcome.leaf) insert_locked(outcome.leaf);
        auto it = flights_.find(flight_key);
        if (it != flights_.end()) {
            waiters = std::move(it->second.waiters);
            flights_.erase(it);
        }
    }
    for (auto& w : waiters) w(outcome);
}

std::shared_ptr<const ForgedLeaf> LeafCache::build(const protocol::LeafResponse& response,
                                                   std::shared_ptr<const LeafKey> key) const {
    auto leaf = std::make_shared<ForgedLeaf>();
    leaf->certificate = ossl::certificate_from_pem(response.certificate_pem);
    {
        std::lock_guard lock(chain_mu_);
        if (!chain_ || chain_pem_ != response.chain_pem) {
            ossl::X509Stack parsed(sk_X509_new_null());
            if (!parsed) throw std::bad_alloc();
            for (const auto& pem : response.chain_pem) {
                auto cert = ossl::certificate_from_pem(pem);
                if (sk_X509_push(parsed.get(), cert.get()) == 0) throw std::bad_alloc();
                cert.release();
            }
            chain_ = std::make_shared<const ossl::X509Stack>(std::move(parsed));
            chain_pem_ = response.chain_pem;
        }
        leaf->chain = chain_;
    }
    auto* sans = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(leaf->certificate.get(), NID_subject_alt_name, nullptr, nullptr));
    ossl::GeneralNames owned(sans);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS) {
            leaf->names.push_back(normalise_name(
                {reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                 static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName))}));
        } else if (gn->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
            char text[INET6_ADDRSTRLEN] = {};
            int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
            if (::inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) leaf->names.emplace_back(text);
        }
    }
    if (leaf->names.empty()) throw std::runtime_error("the certificate names nothing");
    auto nb = protocol::parse_rfc3339(response.not_before);
    auto na = protocol::parse_rfc3339(response.not_after);
    if (!nb || !na || *na <= *nb) throw std::runtime_error("bad validity period in the response");
    leaf->not_after = *na;
    leaf->renew_at = *nb + std::chrono::duration_cast<std::chrono::system_clock::duration>((*na - *nb) *
                                                                                          config_.renew_fraction);
    leaf->serial = response.serial_hex;
    leaf->key = std::move(key);
    if (X509_check_private_key(leaf->certificate.get(), leaf->key->key.get()) != 1)
        throw std::runtime_error("the certificate is not for this node's leaf key");
    return leaf;
}

void LeafCache::insert_locked(const std::shared_ptr<const ForgedLeaf>& leaf) {
    for (const auto& name : leaf->names) {
        auto it = entries_.find(name);
        if (it != entries_.end()) {
            it->second.leaf = leaf;
            lru_.splice(lru_.begin(), lru_, it->second.lru);
            continue;
        }
        lru_.push_front(name);
        entries_.emplace(name, Entry{leaf, lru_.begin()});
    }
    while (entries_.size() > config_.cache_entries) {
        entries_.erase(lru_.back());
        lru_.pop_back();
        ++stats_.evictions;
    }
}

}  // namespace proxy
