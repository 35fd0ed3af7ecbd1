#pragma once
// Everything a proxied connection needs, handed to it (no globals).

#include "ca_client/ca_client.hpp"
#include "certs/leaf_cache.hpp"
#include "config/node_config.hpp"
#include "inspect/inspector.hpp"
#include "log/connection_log.hpp"
#include "mgmt/metrics.hpp"
#include "upstream/upstream_verifier.hpp"

namespace proxy {

struct ProxyContext {
    const NodeConfig& config;
    CaClient& ca;
    LeafCache& leaves;
    UpstreamVerifier& upstream;
    Metrics& metrics;
    ConnectionLog& log;
    const inspect::Inspector* inspector = nullptr;  // null: [inspection] enabled = false
};

}  // namespace proxy
