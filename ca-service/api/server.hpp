#pragma once
// The ca-service's only listener: HTTPS with TLS 1.3, client certificates required and
// verified against the service PKI. Identities come from the verified certificate, never
// from headers.

#include "config/service_config.hpp"
#include "privsep/signer_link.hpp"

#include <functional>
#include <memory>
#include <string>

namespace ca {

struct ApiDependencies {
    privsep::SignerLink& signer;  // everything the CA decides is asked of the signer
};

// Binds listen.host:port and returns the listening descriptor (for the supervisor, which
// hands it to each front it starts). Throws std::runtime_error saying why.
int bind_listener(const ListenConfig& listen);

class ApiServer {
public:
    // listener_fd: from bind_listener, owned from here on. Throws std::runtime_error naming
    // the file when the TLS material cannot be loaded.
    ApiServer(const ServiceConfig& config, ApiDependencies deps, int listener_fd);
    ~ApiServer();

    // Serves until stop().
    void run();
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ca
