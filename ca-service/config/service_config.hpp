#pragma once
// The ca-service configuration, parsed once from TOML into plain structs. Behaviour code
// never looks at configuration text.

#include "pkcs11/signer.hpp"
#include "policy/public_suffixes.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ca {

struct ListenConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8443;
};

struct TlsConfig {
    std::filesystem::path certificate;
    std::filesystem::path private_key;
    std::filesystem::path client_ca;  // the service PKI's CA: the only one nodes and admins chain to
};

struct HsmSection {
    pkcs11::HsmConfig token;
    pkcs11::Uri issuing_key;
    pkcs11::Uri audit_key;
    std::filesystem::path softhsm2_conf;  // optional; exported as SOFTHSM2_CONF before loading
    unsigned max_concurrent_operations = 8;
};

struct CaFiles {
    std::filesystem::path issuing_certificate;
    std::filesystem::path root_certificate;
    std::filesystem::path audit_certificate;
};

struct PolicySection {
    std::chrono::seconds max_lifetime{24 * 3600};
    std::chrono::seconds default_lifetime{24 * 3600};
    std::chrono::seconds backdate{300};
    std::size_t max_names = 20;
    bool allow_wildcards = true;
    bool allow_ip_addresses = true;
    std::vector<std::string> allowed_names;
    std::vector<std::string> denied_names;
    std::filesystem::path public_suffix_list{policy::kDefaultPublicSuffixList};
};

struct RateLimitSection {
    double per_node_per_second = 500;
    double burst = 1000;
};

struct AuditSection {
    std::filesystem::path directory;
    std::size_t checkpoint_every = 1000;
    std::chrono::seconds checkpoint_interval{10};
};

struct ServerSection {
    unsigned io_threads = 0;              // 0: two per core, capped by hsm.max_concurrent_operations
    std::size_t max_connections = 1024;   // further clients wait in the listen backlog
    std::chrono::seconds read_timeout{5};
    std::chrono::seconds write_timeout{5};
    std::chrono::seconds keep_alive_timeout{30};
    std::size_t keep_alive_max_requests = 100000;
};

// The front: the process that speaks TLS and HTTP to clients and holds nothing of the CA.
struct FrontSection {
    // Started as root, the front drops to this user (and its primary group) once it has read
    // its TLS key and before it reads a byte from the network.
    std::string user = "nobody";
};

// Short-lived node identities: the node-identity CA (key in the HSM, certificate under the
// service CA, clientAuth only) certifies the keys nodes make when they renew. Absent: no
// renewal, and only identities straight from the service CA authenticate.
struct NodeIdentitySection {
    bool enabled = false;                       // the section is present
    std::filesystem::path ca_certificate;
    pkcs11::Uri ca_key;
    std::chrono::seconds lifetime{24 * 3600};
    bool renew = true;                          // false: the identities authenticate, renewal is refused
    double renewals_per_hour = 1;               // per node, after a burst of renewal_burst
    double renewal_burst = 5;
};

struct ServiceConfig {
    std::filesystem::path source;  // the file it was read from
    ListenConfig listen;
    TlsConfig tls;
    HsmSection hsm;
    CaFiles ca;
    PolicySection policy;
    RateLimitSection rate_limit;
    AuditSection audit;
    FrontSection front;
    std::filesystem::path state_directory;
    ServerSection server;
    NodeIdentitySection node_identity;
};

// Throws std::runtime_error naming the file, the key and what is wrong.
ServiceConfig load_service_config(const std::filesystem::path& file);

}  // namespace ca
