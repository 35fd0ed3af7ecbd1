#pragma once
// Forged leaf certificates in memory: bounded (LRU over names), keyed by every name a
// certificate covers (a wildcard covers one label), renewed in the background once
// `renew_fraction` of the life has passed, and single-flight: concurrent first requests
// for one name share one ca-service request.

#include "ca_client/ca_client.hpp"
#include "certs/leaf_key.hpp"
#include "certs/names.hpp"
#include "config/node_config.hpp"

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace proxy {

struct ForgedLeaf {
    std::vector<std::string> names;  // as issued, lower case
    ossl::X509Ptr certificate;
    std::shared_ptr<const ossl::X509Stack> chain;  // issuing CA first; shared by leaves with the same chain
    std::shared_ptr<const LeafKey> key;
    std::chrono::system_clock::time_point not_after;
    std::chrono::system_clock::time_point renew_at;
    std::string serial;
};

struct LeafOutcome {
    std::shared_ptr<const ForgedLeaf> leaf;  // null on failure
    std::string error;                       // why, for logs and error pages
    bool ca_unavailable = false;             // the ca-service could not be reached
};

class LeafCache {
public:
    using Callback = std::function<void(LeafOutcome)>;

    LeafCache(CaClient& ca, LeafKeyRing& keys, const LeafSection& config);
    ~LeafCache();

    // A valid certificate covering `host`, or null. Starts a background renewal when due.
    std::shared_ptr<const ForgedLeaf> find(const std::string& host);

    // Gets a certificate for `host` (also asking for `extra_names` where policy allows);
    // `done` runs on a ca-client thread.
    void obtain(const std::string& host, const std::vector<std::string>& extra_names, Callback done);

    // The same as an Asio operation: completes on the caller's executor.
    template <class Token>
    auto async_obtain(const std::string& host, const std::vector<std::string>& extra_names, Token&& token) {
        return asio::async_initiate<Token, void(LeafOutcome)>(
            [this, &host, &extra_names](auto handler) {
                auto h = std::make_shared<decltype(handler)>(std::move(handler));
                obtain(host, extra_names, [h](LeafOutcome outcome) {
                    auto ex = asio::get_associated_executor(*h);
                    asio::post(ex, [h, outcome = std::move(outcome)]() mutable { (*h)(std::move(outcome)); });
                });
            },
            token);
    }

    std::size_t size() const;
    struct Stats {
        std::atomic<std::uint64_t> hits{0}, misses{0}, joined{0}, issued{0}, failed{0}, renewals{0}, evictions{0},
            narrowed{0};
    };
    const Stats& stats() const { return stats_; }

private:
    struct Flight {
        std::vector<Callback> waiters;
    };
    struct Entry {
        std::shared_ptr<const ForgedLeaf> leaf;
        std::list<std::string>::iterator lru;
    };

    void request(const std::string& flight_key, std::vector<std::string> names, bool narrowed_already);
    void complete(const std::string& flight_key, LeafOutcome outcome);
    std::shared_ptr<const ForgedLeaf> build(const protocol::LeafResponse& response,
                                            std::shared_ptr<const LeafKey> key) const;
    void insert_locked(const std::shared_ptr<const ForgedLeaf>& leaf);
    std::shared_ptr<const ForgedLeaf> lookup_locked(const std::string& name);

    CaClient& ca_;
    LeafKeyRing& keys_;
    LeafSection config_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> lru_;  // most recently used first
    std::unordered_map<std::string, Flight> flights_;
    // Lets callbacks from ca-client threads that outlive the cache see that it is gone.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    // The chain the ca-service sent last, parsed once (it changes only at CA rotation).
    mutable std::mutex chain_mu_;
    mutable std::vector<std::string> chain_pem_;
    mutable std::shared_ptr<const ossl::X509Stack> chain_;
    Stats stats_;
};

}  // namespace proxy
