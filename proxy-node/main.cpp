// proxy-node: stateless TLS interception. Holds no CA key: it generates its leaf key in
// memory, asks the ca-service for short-lived certificates, validates every upstream as a
// browser would, and relays. See proxy-node/README.md.

#include "access/networks.hpp"
#include "bypass/bypass_policy.hpp"
#include "ca_client/ca_client.hpp"
#include "certs/leaf_cache.hpp"
#include "certs/leaf_key.hpp"
#include "config/node_config.hpp"
#include "inspect/engine_chain.hpp"
#include "inspect/icap/icap_service.hpp"
#include "inspect/rule_set.hpp"
#include "log/connection_log.hpp"
#include "mgmt/metrics.hpp"
#include "resources/open_files.hpp"
#include "server/proxy_server.hpp"
#include "upstream/upstream_verifier.hpp"

#include <csignal>
#include <cstring>
#include <memory>
#include <iostream>

namespace {

constexpr const char* kUsage =
    "usage: proxy-node --config FILE\n"
    "  FILE is the proxy-node.toml written by hsm-setup for this node.\n"
    "  SIGTERM or SIGINT: stop accepting, let open connections finish (limits.drain_timeout_seconds), exit.\n";
// Descriptors: an intercepted connection holds the client's socket and the upstream's; the
// reserve covers listeners, the log, management answers, epoll and timers (plus one per
// connection to the ca-service, added where it is used).
constexpr unsigned kDescriptorsPerConnection = 2;
constexpr std::uint64_t kReservedDescriptors = 64;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || std::strcmp(argv[1], "--config") != 0) {
        std::cerr << kUsage;
        return 2;
    }
    try {
        ::signal(SIGPIPE, SIG_IGN);
        proxy::NodeConfig config = proxy::load_node_config(argv[2]);
        proxy::ConnectionLog log(config.connection_log, config.name);
        const auto budget = resources::fit_connections(resources::raise_open_file_limit(), "limits.max_connections",
                                                     config.limits.max_connections, kDescriptorsPerConnection,
                                                     kReservedDescriptors + config.ca_service.connections);
        if (!budget.warning.empty()) log.event("max_connections_reduced", budget.warning);
        config.limits.max_connections = budget.max_connections;
        proxy::Metrics metrics;
        proxy::UpstreamVerifier upstream(config.upstream);
        proxy::LeafKeyRing keys(config.leaf.key_rotation);
        proxy::CaClient ca(config.ca_service);
        proxy::LeafCache leaves(ca, keys, config.leaf);
        proxy::tls::ClientFacingContext client_tls;
        proxy::access::Networks clients(config.allowed_clients);
        proxy::access::Networks denied_destinations(config.denied_destinations);
        proxy::bypass::BypassPolicy bypass(config.bypass);
        // Inspection: the integrated rule set, then each ICAP service (by name), as one chain
        // when there are ICAP services.
        std::shared_ptr<const proxy::inspect::Inspector> inspector;
        proxy::icap::IcapEngines icap(config, log);
        if (config.inspection.enabled) {
            auto rules = std::make_shared<proxy::inspect::RuleSetInspector>(config.inspection);
            auto rule_names = rules->rule_names();
            inspector = rules;
            if (!config.icap.empty()) {
                icap.start();
                std::vector<proxy::inspect::Engine> engines{{"rules", rules, proxy::inspect::OnEngineError::block}};
                for (const auto& e : icap.engines()) {
                    engines.push_back({e.rule, e.inspector,
                                       e.on_error_allow ? proxy::inspect::OnEngineError::allow : proxy::inspect::OnEngineError::block});
                    rule_names.push_back(e.rule);
                }
                inspector = std::make_shared<proxy::inspect::EngineChain>(std::move(engines));
            }
            metrics.inspection.declare_rules(rule_names);
        }
        proxy::access::ClientSlots client_slots(config.limits.max_connections_per_client);
        proxy::ProxyContext ctx{config, ca, leaves, upstream, client_tls, metrics, log,
                                clients, denied_destinations, bypass, client_slots, inspector.get(),
                                config.icap.empty() ? nullptr : &icap};
        int rc = proxy::run_proxy(ctx);
        icap.stop();  // its transactions end with the relays that waited for them
        ca.stop();  // before the cache its callbacks complete into goes away
        return rc;
    } catch (const std::exception& e) {
        std::cerr << "proxy-node: " << e.what() << "\n";
        return 1;
    }
}
