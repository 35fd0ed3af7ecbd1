#pragma once
// Which nodes this CA knows (enrolled by hsm-setup, or seen), which an operator has revoked,
// and what each node has done. Known names and revocations are persisted (atomic file
// replace, fsync) in the state directory and survive restarts:
//   known-nodes    one node name a line; hsm-setup appends each node it enrols
//   revoked-nodes  revoked node names or certificate SHA-256 fingerprints

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

// What an operator's revoke/unrevoke names.
enum class RevocationTarget {
    fingerprint,  // 64 hex digits: a certificate's SHA-256, accepted whether seen or not
    node_name,    // a node this CA knows
    unknown,      // neither: a typo ("node1" for "node-1") must not look like a revocation
};

class NodeRegistry {
public:
    // Loads known names and revocations from `state_dir` (creating the directory 0700).
    explicit NodeRegistry(std::filesystem::path state_dir);

    // A node is revoked by name (all its certificates) or by certificate fingerprint.
    bool is_revoked(const NodeIdentity& node) const;

    // Normalises `id` (a fingerprint to lower case) and says what it names. An unknown name
    // rereads known-nodes first, so a node enrolled while the service runs is found.
    RevocationTarget classify(std::string& id);
    std::vector<std::string> known_names() const;  // sorted

    // Both return whether the set changed and persist before returning. When the file cannot
    // be written they throw std::runtime_error, failing closed: a revocation stays in force
    // in memory (until restart), an unrevocation is undone.
    bool revoke(const std::string& name_or_fingerprint);
    bool unrevoke(const std::string& name_or_fingerprint);

    void record(const NodeIdentity& node, bool issued);
    std::vector<NodeStats> nodes() const;
    std::vector<std::string> revoked() const;

private:
    void persist_revoked() const;
    void load_known();  // under mu_

    std::filesystem::path file_;
    std::filesystem::path known_file_;
    mutable std::mutex mu_;
    std::set<std::string> revoked_;
    std::set<std::string> known_;
    std::map<std::string, NodeStats> seen_;
};

}  // namespace ca
