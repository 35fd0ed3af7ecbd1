#pragma once
// Everything a proxied connection needs, handed to it (no globals).

#include "access/client_slots.hpp"
#include "access/networks.hpp"
#include "bypass/bypass_policy.hpp"
#include "ca_client/ca_client.hpp"
#include "certs/leaf_cache.hpp"
#include "config/node_config.hpp"
#include "inspect/icap/icap_service.hpp"
#include "inspect/inspector.hpp"
#include "log/connection_log.hpp"
#include "mgmt/metrics.hpp"
#include "tls/server_context.hpp"
#include "upstream/upstream_verifier.hpp"

namespace proxy {

struct ProxyContext {
    const NodeConfig& config;
    CaClient& ca;
    LeafCache& leaves;
    UpstreamVerifier& upstream;
    const tls::ClientFacingContext& client_tls;
    Metrics& metrics;
    ConnectionLog& log;
    const access::Networks& clients;               // who may use the proxy listener
    const access::Networks& denied_destinations;   // addresses the proxy never connects to
    bypass::BypassPolicy& bypass;           // what is tunnelled without decrypting
    access::ClientSlots& client_slots;              // connections held per client address
    const inspect::Inspector* inspector = nullptr;  // null: [inspection] enabled = false
    const icap::IcapEngines* icap = nullptr;        // the [icap.NAME] services, for /healthz and /metrics
};

}  // namespace proxy
