#pragma once
// The ca-service's only listener: HTTPS with TLS 1.3, client certificates required and
// verified against the service PKI. Identities come from the verified certificate, never
// from headers.

#include "audit/audit_log.hpp"
#include "authority/issuance_service.hpp"
#include "authority/node_registry.hpp"
#include "config/service_config.hpp"
#include "pkcs11/signer.hpp"

#include <functional>
#include <memory>
#include <string>

namespace ca {

struct ApiDependencies {
    IssuanceService& issuance;
    NodeRegistry& nodes;
    audit::AuditLog& audit;
    std::function<pkcs11::SignerHealth()> hsm_health;
    std::string ca_bundle_pem;  // issuing CA then root, for GET /v1/ca
};

class ApiServer {
public:
    // Throws std::runtime_error naming the file when the TLS material cannot be loaded.
    ApiServer(const ServiceConfig& config, ApiDependencies deps);
    ~ApiServer();

    // Binds and serves until stop(); throws when the address cannot be bound.
    void run();
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ca
