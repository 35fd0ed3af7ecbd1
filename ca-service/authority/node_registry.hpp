#pragma once
// Which nodes exist in practice (seen, with counts) and which an operator has revoked.
// Revocations are persisted (atomic file replace) and survive restarts.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace ca {

struct NodeIdentity {
    std::string name;         // subject CN of the verified client certificate
    std::string fingerprint;  // hex SHA-256 of its DER
    bool admin = false;       // OU=admins in the service PKI
};

struct NodeStats {
    std::string name;
    std::string last_fingerprint;
    std::uint64_t issued = 0;
    std::uint64_t denied = 0;
    std::chrono::system_clock::time_point last_seen{};
    bool revoked = false;
};

class NodeRegistry {
public:
    // Loads revocations from `state_dir`/revoked-nodes (creating the directory 0700).
    explicit NodeRegistry(std::filesystem::path state_dir);

    // A node is revoked by name (all its certificates) or by certificate fingerprint.
    bool is_revoked(const NodeIdentity& node) const;
    // Both persist before returning; throw std::runtime_error when the file cannot be written.
    void revoke(const std::string& name_or_fingerprint);
    bool unrevoke(const std::string& name_or_fingerprint);  // false when it was not revoked

    void record(const NodeIdentity& node, bool issued);
    std::vector<NodeStats> nodes() const;
    std::vector<std::string> revoked() const;

private:
    void persist() const;

    std::filesystem::path file_;
    mutable std::mutex mu_;
    std::set<std::string> revoked_;
    std::map<std::string, NodeStats> seen_;
};

}  // namespace ca
