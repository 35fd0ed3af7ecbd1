#pragma once
// The management listener (loopback by default): GET /healthz and GET /metrics, plain
// HTTP, one request per connection. Kept apart from the proxy listener so that clients
// of the proxy never reach it.

#include "ca_client/ca_client.hpp"
#include "certs/leaf_cache.hpp"
#include "config/node_config.hpp"
#include "inspect/icap/icap_service.hpp"
#include "mgmt/metrics.hpp"

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

namespace proxy {

struct ManagementContext {
    const NodeConfig& config;
    Metrics& metrics;
    const LeafCache& leaves;
    const CaClient& ca;
    const icap::IcapEngines* icap = nullptr;
};

asio::awaitable<void> serve_management(ManagementContext ctx, asio::ip::tcp::acceptor& acceptor);

}  // namespace proxy
