#pragma once
// One client connection to the proxy listener, start to end: the proxy request head, then
// either a CONNECT tunnel that is intercepted (TLS terminated with a forged leaf, upstream
// validated, relayed) or a plain-HTTP request that is forwarded. Ends with one log line.

#include "intercept/proxy_context.hpp"

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

namespace proxy {

asio::awaitable<void> serve_connection(ProxyContext& ctx, asio::ip::tcp::socket client);

}  // namespace proxy
