#pragma once
// The proxy-node configuration (the proxy-node.toml hsm-setup writes), parsed once into
// plain structs. Behaviour code never looks at configuration text.

#include "access/networks.hpp"
#include "bypass/bypass_rules.hpp"
#include "settings/toml_reader.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace proxy {

using Endpoint = settings::Endpoint;

struct CaServiceSection {
    std::string host;  // from url = "https://host:port"
    std::uint16_t port = 0;
    std::filesystem::path server_ca;    // service PKI CA: the only anchor for the ca-service
    std::filesystem::path certificate;  // this node's mTLS identity
    std::filesystem::path private_key;
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds request_timeout{5000};
    unsigned connections = 4;     // persistent mTLS connections (one per worker)
    unsigned max_attempts = 3;    // per leaf request, with exponential backoff and jitter
    std::chrono::milliseconds retry_base_delay{100};
    std::chrono::milliseconds health_interval{1000};  // how soon a returning service is noticed
    // The node renews its own identity (certificate + key files above) with the ca-service
    // this long before it expires; 0: when a third of its lifetime is left.
    bool renew_identity = true;
    std::chrono::seconds renew_before{0};
};

struct UpstreamSection {
    std::filesystem::path extra_ca;  // optional: trust anchors in addition to the system store
    bool system_trust = true;
    // Static name -> address overrides (split horizon, tests); consulted before DNS.
    std::map<std::string, std::string> hosts;
    // Protocols the proxy lets a client negotiate with the upstream (ALPN), in the
    // client's order. Anything else the client offers is not passed on.
    std::vector<std::string> alpn{"h2", "http/1.1"};
    std::size_t session_cache_entries = 10000;  // upstream TLS sessions kept for resumption
};

struct LeafSection {
    std::chrono::seconds lifetime{24 * 3600};     // asked of the ca-service (it may cap it)
    std::chrono::seconds key_rotation{24 * 3600};  // a fresh in-memory leaf key this often
    double renew_fraction = 2.0 / 3.0;            // renew once this much of the life has passed
    std::size_t cache_entries = 10000;            // names kept (LRU)
    std::size_t max_names = 8;                    // requested host + upstream SANs per leaf
};

struct LimitsSection {
    std::size_t max_connections = 20000;
    // Connections one client address may hold at once: a flood from one address (a broken
    // script, a scan) cannot take the whole node. Clients behind one NAT share it.
    std::size_t max_connections_per_client = 2000;
    std::size_t request_head_bytes = 16 * 1024;  // CONNECT line / HTTP request head incl. headers
    std::size_t relay_buffer_bytes = 64 * 1024;  // per direction, per connection
    std::chrono::milliseconds request_timeout{10000};       // the proxy request head
    std::chrono::milliseconds client_hello_timeout{10000};
    std::chrono::milliseconds upstream_connect_timeout{10000};
    std::chrono::milliseconds handshake_timeout{10000};     // each TLS handshake
    std::chrono::milliseconds certificate_timeout{15000};   // waiting for the ca-service
    std::chrono::seconds idle_timeout{300};
    std::chrono::seconds drain_timeout{30};  // SIGTERM: how long open connections may finish
};

// [inspection]: decrypted HTTP/1.1 bodies checked by the integrated rule set (see README).
struct InspectionSection {
    bool enabled = true;
    bool eicar = true;  // the built-in rule "eicar" (the EICAR anti-virus test file)
    // Rule name -> bytes (from "hex:..." or "text:..." in the file), and rule name -> SHA-256
    // of a whole body (a file). Names: [a-z0-9._-], at most 64 characters.
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> patterns;
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> sha256;
    std::uint64_t max_scan_bytes = 100ULL << 20;  // per message body
    bool over_limit_block = false;                // over_limit = "allow" | "block"
    std::size_t hold_bytes = 256 * 1024;          // held per message until the verdict
    // Media types that are streams by design (they do not end): never held, so each event
    // reaches the receiver as it arrives; still scanned, a late block resets the connection.
    std::vector<std::string> stream_types{"text/event-stream", "multipart/x-mixed-replace"};
    bool non_http_tunnel = false;                 // non_http = "block" | "tunnel"
    // The largest WebSocket message (decoded, all its fragments) the node relays; a longer
    // one (or a compressed one that inflates past it) closes the WebSocket with 1009.
    std::uint64_t websocket_max_message_bytes = 16ULL << 20;
    // How long the relay waits for an engine's final verdict; then the engine's on_error
    // policy decides (an engine alone: block, fail closed).
    std::uint32_t verdict_timeout_ms = 30000;
    // plain_tunnels = "inspect" | "refuse": an HTTP/1.1 request (not TLS) in a CONNECT tunnel
    // to a port other than 443 (a browser's ws://) is inspected as plain HTTP, or refused
    // (not_tls) like other non-TLS bytes.
    bool inspect_plain_tunnels = true;
    // http2 = true: h2 is offered upstream and, when the upstream selects it, to the client,
    // and both sessions are inspected stream by stream (h2/h2_relay.hpp); false: HTTP/1.1 only.
    bool http2 = true;
    std::size_t head_bytes = 64 * 1024;           // a decrypted request/response head
};

// [icap.NAME]: an external inspection engine reached over ICAP (RFC 3507), asked after the
// integrated rule set (inspect/icap/icap_service.hpp).
struct IcapServiceSection {
    std::string name;                // the table's key; the rule "icap.NAME" in logs and metrics
    std::string url;                 // icap://host[:port]/service, or icaps:// (TLS)
    bool reqmod = true;              // mode = "both" (default), "reqmod" or "respmod"
    bool respmod = true;
    bool on_error_allow = false;     // on_error = "block" (default: fail closed) or "allow"
    std::filesystem::path tls_ca_file;  // icaps://: the CA that issued the service's certificate
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds io_timeout{10000};         // the engine silent while it owes bytes
    std::chrono::milliseconds transaction_timeout{20000};  // from the message's end to the answer
    std::chrono::milliseconds retry_interval{2000};      // OPTIONS again while the service is down
    unsigned max_connections = 32;   // lowered to the service's Max-Connections
    // Messages without a body (a GET, a 304): not sent by default (an anti-virus or DLP
    // engine has nothing to scan); true sends them too (a URL-filtering engine wants every
    // request in REQMOD).
    bool send_bodiless = false;
};

// [transparent]: connections steered to listen.transparent by the network (nftables
// `redirect` or `tproxy`), intercepted without any client configuration
// (intercept/session.hpp).
struct TransparentSection {
    // How the original destination is known: "redirect" (NAT: SO_ORIGINAL_DST, no privilege)
    // or "tproxy" (the accepted socket's own local address; the listener needs
    // IP_TRANSPARENT, so CAP_NET_ADMIN, and the policy routing of the nftables tproxy setup).
    enum class Capture { redirect, tproxy };
    Capture capture = Capture::redirect;
    // A ClientHello without SNI: "refuse" (default: a TLS alert, logged) or "tunnel" (relayed
    // to the original destination without decrypting, logged as bypassed).
    bool no_sni_tunnel = false;
};

// [smtp]: e-mail with STARTTLS (mail/smtp_relay.hpp), on listen.smtp (the node is the
// clients' smart host and relays to `upstream`) and on listen.transparent for the
// original destination ports in `transparent_ports`.
struct SmtpSection {
    std::vector<Endpoint> listen;  // listen.smtp; empty: none
    std::string upstream_host;     // smtp.upstream "host:port", required with listen.smtp
    std::uint16_t upstream_port = 25;
    std::vector<std::uint16_t> transparent_ports{25, 587};
    // How the server's certificate is held after STARTTLS upstream: "strict" (validated as
    // for HTTPS; a failure refuses the STARTTLS) or "opportunistic" (encrypted whatever the
    // certificate, what failed logged), globally and per server domain (`tls_domains`: the
    // server's name and every name under it).
    enum class TlsPolicy { strict, opportunistic };
    TlsPolicy tls = TlsPolicy::strict;
    std::map<std::string, TlsPolicy> tls_domains;
    // A server that offers no STARTTLS: "refuse" (default: 421 4.7.0 to the client, which
    // keeps its mail queued) or "plaintext" (relayed in clear, STARTTLS never offered to the
    // client, logged).
    bool no_starttls_plaintext = false;
    std::uint64_t max_message_bytes = 32ull << 20;  // larger: 552 5.3.4, not relayed
    std::size_t max_line_bytes = 4096;              // a command or reply line (RFC 5321: 512)
    std::chrono::seconds command_timeout{300};      // RFC 5321 4.5.3.2
    std::chrono::seconds data_timeout{600};         // a whole message's content
    std::size_t max_mime_parts = 1000;              // more, or nested deeper than 16: refused (554)
};

struct NodeConfig {
    std::filesystem::path source;
    std::string name;
    std::vector<Endpoint> proxy_listen;  // one listener per address ("H:P" or a list of them)
    std::vector<Endpoint> transparent_listen;  // listen.transparent; empty: none
    TransparentSection transparent;
    SmtpSection smtp;
    Endpoint management_listen;
    CaServiceSection ca_service;
    UpstreamSection upstream;
    LeafSection leaf;
    LimitsSection limits;
    // Client networks that may use the proxy listener ([access] allowed_clients).
    std::vector<access::Network> allowed_clients = access::default_allowed_clients();
    // Destination addresses the proxy never connects to ([access] denied_destinations),
    // checked on every address a name resolves to.
    std::vector<access::Network> denied_destinations = access::default_denied_destinations();
    bypass::BypassRules bypass;  // [bypass]
    InspectionSection inspection;
    std::vector<IcapServiceSection> icap;  // in the order of their names
    unsigned worker_threads = 0;  // 0: one per CPU
    std::filesystem::path connection_log;  // empty: stdout
};

// Throws std::runtime_error naming the file, the key and what is wrong. Unknown keys are
// errors too: a misspelt option must not silently fall back to a default.
NodeConfig load_node_config(const std::filesystem::path& file);

// "host:port" or "[v6]:port"; nullopt-like failure is reported by throwing with `what`.

}  // namespace proxy
