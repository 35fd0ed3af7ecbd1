// ca-service: the only component that can make the HSM sign. Issues short-lived leaf
// certificates to authenticated proxy nodes over mTLS, under a policy, with per-node rate
// limits and a tamper-evident audit log.

#include "api/server.hpp"
#include "audit/audit_log.hpp"
#include "authority/issuance_service.hpp"
#include "authority/leaf_issuer.hpp"
#include "authority/node_registry.hpp"
#include "config/service_config.hpp"
#include "ossl/pem.hpp"
#include "policy/issuance_policy.hpp"
#include "policy/rate_limiter.hpp"
#include "resources/open_files.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <thread>

namespace {

constexpr const char* kUsage =
    "usage: ca-service --config FILE\n"
    "  FILE is the ca-service.toml written by hsm-setup.\n"
    "  SIGTERM or SIGINT stops the service after in-flight requests; a final audit\n"
    "  checkpoint is signed on the way out.\n";
constexpr std::chrono::seconds kUnavailableRetryAfter{5};
// Descriptors: one per client connection; the rest (listener, audit files, state, the HSM
// module's files, epoll and thread wake-ups) fit in the reserve.
constexpr unsigned kDescriptorsPerConnection = 1;
constexpr std::uint64_t kReservedDescriptors = 64;

ca::policy::PolicyConfig policy_config(const ca::PolicySection& p) {
    ca::policy::PolicyConfig c;
    c.allowed_names = p.allowed_names;
    c.denied_names = p.denied_names;
    c.allow_wildcards = p.allow_wildcards;
    c.allow_ip_addresses = p.allow_ip_addresses;
    c.max_names = p.max_names;
    c.max_lifetime = p.max_lifetime;
    c.default_lifetime = p.default_lifetime;
    c.backdate = p.backdate;
    c.public_suffix_list = p.public_suffix_list;
    return c;
}

int run(const std::filesystem::path& config_file) {
    ca::ServiceConfig config = ca::load_service_config(config_file);
    const auto budget = resources::fit_connections(resources::raise_open_file_limit(), "server.max_connections",
                                                 config.server.max_connections, kDescriptorsPerConnection,
                                                 kReservedDescriptors);
    if (!budget.warning.empty()) std::cerr << "ca-service: " << budget.warning << "\n";
    config.server.max_connections = budget.max_connections;
    if (!config.hsm.softhsm2_conf.empty()) ::setenv("SOFTHSM2_CONF", config.hsm.softhsm2_conf.c_str(), 1);

    // Signals are taken by one thread with sigwait, so every other thread blocks them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    pkcs11::SignerConfig issuing_cfg{config.hsm.token, config.hsm.issuing_key, config.hsm.max_concurrent_operations};
    pkcs11::SignerConfig audit_cfg{config.hsm.token, config.hsm.audit_key, 2};
    pkcs11::HsmSigner issuing_signer(issuing_cfg);
    pkcs11::HsmSigner audit_signer(audit_cfg);

    auto issuing_cert = ossl::load_certificate(config.ca.issuing_certificate);
    auto root_cert = ossl::load_certificate(config.ca.root_certificate);
    const ca::LeafIssuer issuer(issuing_signer, *issuing_cert);

    const ca::policy::IssuancePolicy policy(policy_config(config.policy));
    ca::policy::RateLimiter rate_limiter({config.rate_limit.per_node_per_second, config.rate_limit.burst});
    ca::NodeRegistry nodes(config.state_directory);
    ca::audit::AuditLog audit({config.audit.directory, config.audit.checkpoint_every, config.audit.checkpoint_interval},
                              audit_signer);
    audit.append(ca::audit::ServiceRecord{"start", "ca-service listening on " + config.listen.host + ":" +
                                                       std::to_string(config.listen.port)});

    const std::string issuing_pem = ossl::to_pem(*issuing_cert);
    ca::IssuanceService issuance(policy, rate_limiter, issuer, audit, nodes, {issuing_pem}, kUnavailableRetryAfter);
    ca::ApiServer server(config, {issuance, nodes, audit, [&] { return issuing_signer.health(); },
                                  issuing_pem + ossl::to_pem(*root_cert)});

    std::thread signal_waiter([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        std::cerr << "ca-service: signal " << sig << ", stopping\n";
        server.stop();
    });
    std::cerr << "ca-service: listening on " << config.listen.host << ":" << config.listen.port
              << " (TLS 1.3, mTLS; up to " << config.server.max_connections << " connections at once)\n";
    try {
        server.run();
    } catch (...) {
        pthread_kill(signal_waiter.native_handle(), SIGTERM);
        signal_waiter.join();
        throw;
    }
    if (signal_waiter.joinable()) {
        // run() returned without a signal (stop from elsewhere): release the waiter.
        pthread_kill(signal_waiter.native_handle(), SIGTERM);
        signal_waiter.join();
    }
    audit.append(ca::audit::ServiceRecord{"stop", "clean shutdown"});
    audit.close();
    std::cerr << "ca-service: stopped\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
        std::cout << kUsage;
        return 0;
    }
    if (argc != 3 || std::string(argv[1]) != "--config") {
        std::cerr << kUsage;
        return 2;
    }
    try {
        return run(argv[2]);
    } catch (const std::exception& e) {
        std::cerr << "ca-service: " << e.what() << "\n";
        return 1;
    }
}
