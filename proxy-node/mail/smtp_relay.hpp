#pragma once
// An SMTP session between a client and a mail server, with the node in the middle speaking
// SMTP to both: on listen.smtp (the node is the clients' smart host and relays to
// smtp.upstream) and on listen.transparent for the ports in smtp.transparent_ports (mail
// steered to the node on its way to its destination).
//
// - Commands are read one by one and passed on; the server's replies come back. The EHLO
//   reply the client gets lists what the node can relay (mail/smtp_protocol.hpp).
// - STARTTLS: when the client asks, the node first does STARTTLS with the server and holds
//   its certificate to smtp.tls (strict: validated as for HTTPS, a failure gives the client
//   421 4.7.0 so its mail stays queued; opportunistic: encrypted anyway, what failed
//   logged). Then it answers the client 220 and completes the client's handshake with a
//   leaf for the name the client asks for (SNI), else for the server certificate's names.
//   Plaintext either peer sent after STARTTLS and before its handshake (command injection,
//   CVE-2011-0411) is discarded, counted and logged. A server without STARTTLS: by
//   smtp.no_starttls, 421 4.7.0 to the client, or relayed in clear without STARTTLS ever
//   offered to the client.
// - Each message (DATA or BDAT) is taken whole from the client (up to
//   smtp.max_message_bytes), parsed as MIME, and every part goes through the Inspector.
//   Only then does it go to the server: a block answers 554 5.7.1, an engine that is
//   unavailable 451 4.7.1 (the client retries later), and the server never sees the
//   message; the session carries on with the next transaction. One log line per message.

#include "config/node_config.hpp"
#include "inspect/inspector.hpp"
#include "log/connection_log.hpp"
#include "mgmt/metrics.hpp"
#include "tls/byte_stream.hpp"
#include "upstream/reason.hpp"

#include <asio/awaitable.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace proxy::mail {

// What the session the relay runs in provides (intercept/session.cpp): the TLS upgrades
// of both sockets, deadlines, the log.
class SmtpLinks {
public:
    virtual ~SmtpLinks() = default;

    struct UpstreamTls {
        tls::ByteStream* stream = nullptr;  // null: failed (why in `reason` and `failure`)
        Reason reason = Reason::none;
        std::string failure;
        std::string note;                // opportunistic: what validation found wrong
        std::vector<std::string> names;  // DNS names in the server's certificate
    };
    // The TLS handshake with the server, after it answered STARTTLS with 220: SNI and
    // validation for `server_name` (a DNS name or an address).
    virtual asio::awaitable<UpstreamTls> upstream_tls(const std::string& server_name, bool opportunistic) = 0;
    // The client's handshake, after the node answered its STARTTLS with 220, with a leaf for
    // its SNI, else for `names`; null on failure (then `failure` says why).
    virtual asio::awaitable<tls::ByteStream*> client_tls(const std::vector<std::string>& names,
                                                         std::string& failure) = 0;
    // A deadline for what follows (the watchdog aborts both sockets when it passes).
    virtual void deadline(std::chrono::milliseconds within) = 0;
    virtual bool expired() const = 0;
};

struct SmtpParams {
    const SmtpSection& config;
    const inspect::Inspector* inspector;  // null: inspection off
    std::chrono::milliseconds verdict_timeout;
    ConnectionLog& log;
    Metrics& metrics;
    std::string client;       // address:port, for the mail lines
    std::string server_name;  // the server's name if known (listen.smtp); else from its greeting
    std::uint64_t& bytes_client_to_upstream;
    std::uint64_t& bytes_upstream_to_client;
};

struct SmtpOutcome {
    const char* decision = nullptr;  // as ConnectionRecord::decision
    Reason reason = Reason::none;
    std::string detail;
    std::string server_name;  // the name the server was held to
    bool inspected = false;   // messages went through the Inspector
};

// `params` and `links` must outlive the relay.
asio::awaitable<SmtpOutcome> smtp_relay(tls::ByteStream& client, tls::ByteStream& upstream, SmtpLinks& links,
                                        const SmtpParams& params);

// The policy for a server's name: the most specific smtp.tls_domains entry that is the name
// or a domain above it, else smtp.tls.
SmtpSection::TlsPolicy tls_policy_for(const SmtpSection& config, const std::string& server_name);

}  // namespace proxy::mail
