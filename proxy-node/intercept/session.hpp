#pragma once
// One client connection to the proxy listener, start to end: the proxy request head, then
// either a CONNECT tunnel that is intercepted (TLS terminated with a forged leaf, upstream
// validated, relayed) or a plain-HTTP request that is forwarded; or a connection to a
// transparent listener, intercepted the same way. Ends with one log line.

#include "intercept/proxy_context.hpp"

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <optional>

namespace proxy {

// Which listener accepted the connection: listen.proxy (the client sends a proxy request:
// CONNECT or http://) or listen.transparent (the network steered it here: its original
// destination is read from the socket, the server name from the ClientHello's SNI, and the
// connection is intercepted as a CONNECT to that destination would be; logged with mode
// "transparent"; a connection to a port in smtp.transparent_ports is mail), or listen.smtp
// (the node is the client's smart host: mail relayed to smtp.upstream, mode "smtp"; see
// mail/smtp_relay.hpp).
enum class Listener { proxy, transparent, smtp };

// `counted`: the client address whose slot in ctx.client_slots this connection holds (given
// back when it ends), if the accept loop took one.
asio::awaitable<void> serve_connection(ProxyContext& ctx, asio::ip::tcp::socket client,
                                       std::optional<access::Address> counted, Listener kind);

}  // namespace proxy
