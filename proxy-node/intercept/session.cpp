#include "intercept/session.hpp"

#include "certs/names.hpp"
#include "http/error_page.hpp"
#include "http/message_boundary.hpp"
#include "http/request_head.hpp"
#include "intercept/raw_relay.hpp"
#include "h2/h2_relay.hpp"
#include "inspect/inspecting_relay.hpp"
#include "mail/smtp_relay.hpp"
#include "tls/plain_stream.hpp"
#include "intercept/watchdog.hpp"
#include "ossl/pem.hpp"
#include "tls/alerts.hpp"
#include "tls/client_hello.hpp"
#include "tls/server_context.hpp"
#include "tls/tls_stream.hpp"

#include <asio/connect.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <span>

// GCC 12 reports a false -Wmismatched-new-delete on large coroutine frames (Asio's frame
// operator new/delete pair is matched), as in inspect/inspecting_relay.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy {

namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

// A ClientHello larger than this is refused (real ones are well under 2 KiB; post-quantum
// key shares bring them to about 2-3 KiB).
constexpr std::size_t kMaxClientHelloBytes = 16 * 1024;
// After a refusal in plain HTTP, what the client still sends is read and dropped for this
// long, up to this much, before the close (see drain_client).
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 16 << 20;
// Names from the upstream certificate considered for the leaf request, before filtering.
constexpr std::size_t kMaxUpstreamSans = 64;
constexpr std::string_view kHttp11 = "http/1.1";
// A fatal TLS alert record (level 2), sent when the proxy refuses a ClientHello it cannot serve.
constexpr std::uint8_t kAlertProtocolVersion = 70;
constexpr std::uint8_t kAlertHandshakeFailure = 40;
// The netfilter socket option that gives a NAT-redirected connection's original destination:
// SO_ORIGINAL_DST (linux/netfilter_ipv4.h) at SOL_IP and IP6T_SO_ORIGINAL_DST
// (linux/netfilter_ipv6/ip6_tables.h) at SOL_IPV6 are both 80 (kernel ABI); the kernel
// headers are not included for one constant, as they clash with glibc's netinet ones.
constexpr int kSoOriginalDst = 80;

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

TlsSummary summarize(SSL* ssl) {
    TlsSummary t;
    t.version = SSL_get_version(ssl);
    t.cipher = SSL_get_cipher_name(ssl);
    const unsigned char* alpn = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    if (alpn != nullptr) t.alpn.assign(reinterpret_cast<const char*>(alpn), len);
    t.resumed = SSL_session_reused(ssl) == 1;
    return t;
}

std::vector<std::string> dns_names(X509* cert) {
    std::vector<std::string> out;
    ossl::GeneralNames sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()) && out.size() < kMaxUpstreamSans; ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
        if (gn->type != GEN_DNS) continue;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                         static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
    return out;
}

// Only names in the requested host's parent domain are worth a place on the leaf: they are
// the ones later connections from the same site will ask for.
std::vector<std::string> related_names(const std::string& host, const std::vector<std::string>& sans) {
    auto dot = host.find('.');
    if (dot == std::string::npos) return {};
    const std::string parent = host.substr(dot);  // ".example.com"
    std::vector<std::string> out;
    for (const auto& raw : sans) {
        std::string n = normalise_name(raw);
        if (n == host) continue;
        const std::string_view base = n.rfind("*.", 0) == 0 ? std::string_view(n).substr(1) : std::string_view(n);
        // Same parent domain, or a name directly above/below it.
        if (base.size() >= parent.size() && base.substr(base.size() - parent.size()) == parent) out.push_back(n);
        else if ("." + std::string(base) == parent) out.push_back(n);
    }
    return out;
}

bool is_relay_failure(Reason r) {
    return r == Reason::connect_failed || r == Reason::dns_failed || r == Reason::timeout;
}

class Session {
public:
    Session(ProxyContext& ctx, tcp::socket client, Listener kind)
        : ctx_(ctx),
          limits_(ctx.config.limits),
          client_(std::move(client)),
          upstream_(client_.get_executor()),
          watchdog_(std::make_shared<Watchdog>(client_.get_executor())),
          transparent_(kind == Listener::transparent),
          smtp_listener_(kind == Listener::smtp) {
        watchdog_->watch(&client_);
        watchdog_->watch(&upstream_);
    }
    ~Session() {
        watchdog_->stop();
        // Only when the node stops at limits.drain_timeout_seconds with this connection still
        // open: its coroutine is destroyed unfinished, and it still gets its line.
        if (!finished_)
            finish(decision::kFailed, Reason::shutting_down,
                   "cut at the drain deadline (limits.drain_timeout_seconds) while the node stopped");
    }

    awaitable<void> run() {
        asio::error_code ec;
        auto remote = client_.remote_endpoint(ec);
        if (!ec) rec_.client = endpoint_text(remote);
        client_.set_option(tcp::no_delay(true), ec);
        try {
            co_await handle();
        } catch (const std::exception& e) {
            finish(decision::kFailed, Reason::handshake_failed, std::string("internal error: ") + e.what());
        }
        if (!finished_) finish(decision::kFailed, Reason::handshake_failed, "connection ended unexpectedly");
        watchdog_->stop();
    }

private:
    awaitable<void> handle() {
        if (smtp_listener_) {
            rec_.mode = "smtp";
            const std::string host = ctx_.config.smtp.upstream_host;
            rec_.connect_target = host + ":" + std::to_string(ctx_.config.smtp.upstream_port);
            co_await mail(host, ctx_.config.smtp.upstream_port);
            co_return;
        }
        if (transparent_) {
            co_await transparent();
            co_return;
        }
        watchdog_->phase(limits_.request_timeout);
        std::string head_text;
        auto status = co_await http::read_request_head(client_, limits_.request_head_bytes, head_text);
        if (status == http::HeadStatus::closed) {
            finish(decision::kFailed, watchdog_->expired() ? Reason::timeout : Reason::malformed_request,
                   watchdog_->expired() ? "no complete request head in time" : "client closed before a request head");
            co_return;
        }
        if (status == http::HeadStatus::too_large) {
            co_await refuse_plain(Reason::request_too_large, "",
                                  "request head over " + std::to_string(limits_.request_head_bytes) + " bytes");
            co_return;
        }
        auto head = http::parse_request_head(head_text);
        if (!head) {
            co_await refuse_plain(Reason::malformed_request, "", "the request line or a header is malformed");
            co_return;
        }
        if (head->method == "CONNECT") co_await tunnel(*head);
        else if (head->target.rfind("http://", 0) == 0) co_await forward_http(*head);
        else if (head->target.rfind("https://", 0) == 0)
            co_await refuse_plain(Reason::method_not_allowed, "", "use CONNECT for https:// URLs");
        else co_await refuse_plain(Reason::method_not_allowed, "", "not a proxy request: " + head->method);
    }

    // --- CONNECT: interception ------------------------------------------------------------

    awaitable<void> tunnel(const http::RequestHead& head) {
        rec_.mode = "connect";
        rec_.connect_target = head.target;
        auto target = http::parse_authority(head.target, std::nullopt);
        if (!target) {
            co_await refuse_plain(Reason::malformed_request, "", "CONNECT target must be host:port");
            co_return;
        }
        const std::string connect_host = normalise_name(target->host);
        rec_.requested_host = connect_host;
        // While the ca-service is known to be down, a name without a cached certificate
        // cannot be served: say so in the CONNECT answer, the only place a client shows it.
        if (!is_ip_literal(connect_host) && !ctx_.ca.available() && !ctx_.leaves.find(connect_host) &&
            !ctx_.bypass.covers_connect(connect_host, target->port)) {
            co_await refuse_plain(Reason::ca_unavailable, connect_host, "");
            co_return;
        }
        if (!co_await write_plain(http::kConnectEstablished)) {
            finish(decision::kFailed, Reason::client_handshake_failed, "client went away after CONNECT");
            co_return;
        }
        co_await intercept(*target, connect_host);
    }

    // --- transparent: the network steered the connection here ------------------------------

    // Where the client's connection was going: with redirect, what NAT rewrote
    // (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST); with tproxy, the socket's own local address.
    // nullopt with `why` when it cannot be told.
    std::optional<tcp::endpoint> original_destination(std::string& why) {
        asio::error_code ec;
        const tcp::endpoint local = client_.local_endpoint(ec);
        if (ec) {
            why = "the connection's local address is unknown: " + ec.message();
            return std::nullopt;
        }
        if (ctx_.config.transparent.capture == TransparentSection::Capture::tproxy) return local;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const bool v6 = local.address().is_v6() && !local.address().to_v6().is_v4_mapped();
        if (::getsockopt(client_.native_handle(), v6 ? SOL_IPV6 : SOL_IP, kSoOriginalDst, &ss,
                         &len) != 0) {
            why = std::string("SO_ORIGINAL_DST: ") + std::strerror(errno) +
                  " (the connection was not redirected by NAT: transparent.capture = \"redirect\" needs an nftables "
                  "redirect or dnat rule)";
            return std::nullopt;
        }
        if (ss.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
            return tcp::endpoint(asio::ip::address_v4(ntohl(a->sin_addr.s_addr)), ntohs(a->sin_port));
        }
        if (ss.ss_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
            asio::ip::address_v6::bytes_type b;
            std::memcpy(b.data(), a->sin6_addr.s6_addr, b.size());
            return tcp::endpoint(asio::ip::address_v6(b), ntohs(a->sin6_port));
        }
        why = "SO_ORIGINAL_DST gave an unknown address family";
        return std::nullopt;
    }

    // The original destination is one of the node's own listeners: relaying there would loop.
    bool is_own_listener(const tcp::endpoint& dest) const {
        asio::error_code ec;
        const auto& c = ctx_.config;
        // Redirect: a connection that no NAT rule rewrote names the listener itself.
        if (c.transparent.capture == TransparentSection::Capture::redirect && dest == client_.local_endpoint(ec)) return true;
        auto matches = [&](const Endpoint& ep) {
            if (ep.port != dest.port()) return false;
            const auto addr = asio::ip::make_address(ep.host, ec);
            if (ec) return false;
            return addr == dest.address() || (addr.is_unspecified() && is_local_address(dest.address()));
        };
        return std::any_of(c.proxy_listen.begin(), c.proxy_listen.end(), matches) ||
               std::any_of(c.transparent_listen.begin(), c.transparent_listen.end(), matches) ||
               std::any_of(c.smtp.listen.begin(), c.smtp.listen.end(), matches) || matches(c.management_listen);
    }

    // An address of this host: one a socket can bind to without IP_TRANSPARENT.
    static bool is_local_address(const asio::ip::address& a) {
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (a.is_v4()) {
            auto* in = reinterpret_cast<sockaddr_in*>(&ss);
            in->sin_family = AF_INET;
            in->sin_addr.s_addr = htonl(a.to_v4().to_uint());
            len = sizeof *in;
        } else {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
            in6->sin6_family = AF_INET6;
            const auto bytes = a.to_v6().to_bytes();
            std::memcpy(in6->sin6_addr.s6_addr, bytes.data(), bytes.size());
            len = sizeof *in6;
        }
        const int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return false;
        const bool local = ::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
        ::close(fd);
        return local;
    }

    awaitable<void> transparent() {
        rec_.mode = "transparent";
        std::string why;
        const auto dest = original_destination(why);
        if (!dest) {
            finish(decision::kBlocked, Reason::no_original_destination, why);
            co_return;
        }
        rec_.connect_target = endpoint_text(*dest);
        if (is_own_listener(*dest)) {
            finish(decision::kBlocked, Reason::destination_loop,
                   rec_.connect_target + " is the node's own listener (connected to it directly, or a rule steers the "
                                         "node's own traffic back to it)");
            co_return;
        }
        http::Authority target;
        target.host = dest->address().to_string();
        target.port = dest->port();
        rec_.requested_host = target.host;
        const auto& mail_ports = ctx_.config.smtp.transparent_ports;
        if (std::find(mail_ports.begin(), mail_ports.end(), target.port) != mail_ports.end()) {
            co_await mail(target.host, target.port);
            co_return;
        }
        co_await intercept(target, target.host);
    }

    // --- e-mail: SMTP with STARTTLS (mail/smtp_relay.hpp) ----------------------------------

    // The SMTP session's TLS upgrades and deadlines, from this connection.
    class MailLinks final : public mail::SmtpLinks {
    public:
        explicit MailLinks(Session& s) : s_(s) {}
        awaitable<UpstreamTls> upstream_tls(const std::string& server_name, bool opportunistic) override {
            UpstreamTls out = co_await s_.mail_upstream_tls(server_name, opportunistic);
            co_return out;
        }
        awaitable<tls::ByteStream*> client_tls(const std::vector<std::string>& names, std::string& failure) override {
            tls::ByteStream* out = co_await s_.mail_client_tls(names, failure);
            co_return out;
        }
        void deadline(std::chrono::milliseconds within) override { s_.watchdog_->phase(within); }
        bool expired() const override { return s_.watchdog_->expired(); }

    private:
        Session& s_;
    };

    // `host`: the mail server (smtp.upstream's name, or transparently the original
    // destination's address).
    awaitable<void> mail(const std::string& host_ref, std::uint16_t port) {
        const std::string host = host_ref;
        rec_.requested_host = normalise_name(host);
        if (auto failure = co_await connect_upstream(host, port)) {
            // The client waits for a greeting: a 421 makes it keep its mail queued.
            co_await write_plain("421 4.4.0 The mail server cannot be reached; try again later\r\n");
            finish(decision::kFailed, failure->reason, failure->detail);
            co_return;
        }
        tls::PlainStream client_plain(client_);
        tls::PlainStream upstream_plain(upstream_);
        MailLinks links(*this);
        const mail::SmtpParams params{ctx_.config.smtp,
                                      ctx_.inspector,
                                      std::chrono::milliseconds(ctx_.config.inspection.verdict_timeout_ms),
                                      ctx_.log,
                                      ctx_.metrics,
                                      rec_.client,
                                      normalise_name(host),
                                      rec_.bytes_client_to_upstream,
                                      rec_.bytes_upstream_to_client};
        const mail::SmtpOutcome outcome = co_await mail::smtp_relay(client_plain, upstream_plain, links, params);
        rec_.requested_host = outcome.server_name;
        if (ctx_.inspector != nullptr) rec_.inspection = outcome.inspected ? "on" : "off";
        finish(outcome.decision, outcome.reason, outcome.detail);
    }

    awaitable<mail::SmtpLinks::UpstreamTls> mail_upstream_tls(const std::string& server_name_ref, bool opportunistic) {
        const std::string server_name = server_name_ref;
        mail::SmtpLinks::UpstreamTls out;
        mail_seen_.record_only = opportunistic;
        mail_upstream_.emplace(upstream_, ctx_.upstream.new_session(server_name, rec_.upstream, {}, mail_seen_));
        watchdog_->phase(limits_.handshake_timeout);
        const bool ok = co_await mail_upstream_->handshake();
        SSL* ussl = mail_upstream_->ssl();
        Verdict verdict = ok ? ctx_.upstream.check_established(ussl) : ctx_.upstream.classify_failure(ussl, mail_upstream_->failure());
        if (!ok && watchdog_->expired()) verdict = {Reason::timeout, "TLS handshake timed out"};
        rec_.upstream_cert_sha256 = mail_seen_.leaf_sha256;
        if (!ok || (!opportunistic && !verdict.ok())) {
            SSL_set_app_data(ussl, nullptr);
            out.reason = verdict.ok() ? Reason::handshake_failed : verdict.reason;
            out.failure = std::string(code(out.reason)) + (verdict.detail.empty() ? "" : ": " + verdict.detail);
            co_return out;
        }
        if (mail_seen_.verify_error != 0) {
            out.note = std::string(code(reason_for_verify_error(mail_seen_.verify_error))) + ": " +
                       X509_verify_cert_error_string(mail_seen_.verify_error);
        }
        if (!verdict.ok()) out.note += (out.note.empty() ? "" : "; ") + std::string(code(verdict.reason)) + ": " + verdict.detail;
        if (X509* peer = SSL_get0_peer_certificate(ussl)) {
            if (rec_.upstream_cert_sha256.empty()) rec_.upstream_cert_sha256 = ossl::fingerprint_sha256(*peer);
            out.names = dns_names(peer);
        }
        rec_.upstream_tls = summarize(ussl);
        ++(rec_.upstream_tls.resumed ? ctx_.metrics.upstream_resumed : ctx_.metrics.upstream_full);
        out.stream = &*mail_upstream_;
        co_return out;
    }

    // The client's TLS after its STARTTLS: a leaf for its SNI, else for the first of `names`
    // (the server certificate's names) with the rest of them on it.
    awaitable<tls::ByteStream*> mail_client_tls(const std::vector<std::string>& names_ref, std::string& failure) {
        const std::vector<std::string> names = names_ref;
        watchdog_->phase(limits_.client_hello_timeout);
        tls::ClientHello hello;
        std::unique_ptr<std::uint8_t[]> storage;
        std::size_t have = 0;
        const auto peeked = co_await peek_client_hello(hello, storage, have);
        storage.reset();
        if (!peeked || *peeked != tls::HelloStatus::complete) {
            failure = !peeked ? (watchdog_->expired() ? "no ClientHello in time after STARTTLS"
                                                      : "the client closed before its ClientHello after STARTTLS")
                              : "the client's bytes after STARTTLS are not a TLS ClientHello";
            co_return nullptr;
        }
        std::string server_name;
        std::vector<std::string> extra;
        const std::string sni = normalise_name(hello.server_name);
        if (!sni.empty() && plausible_dns_name(sni) && sni.front() != '*') server_name = sni;
        for (const auto& raw : names) {
            const std::string n = normalise_name(raw);
            if (!plausible_dns_name(n) || n == server_name) continue;
            if (server_name.empty() && n.front() != '*') server_name = n;
            else if (extra.size() + 1 < ctx_.config.leaf.max_names) extra.push_back(n);
        }
        if (server_name.empty()) {
            failure = "no name for the client's certificate: the client sent no SNI and the server's certificate names no "
                      "DNS name";
            co_return nullptr;
        }
        rec_.requested_host = server_name;
        watchdog_->phase(limits_.certificate_timeout);
        auto leaf = ctx_.leaves.find(server_name);
        if (leaf) rec_.leaf = "cache";
        else {
            auto obtained = co_await ctx_.leaves.async_obtain(server_name, extra, use_awaitable);
            if (!obtained.leaf) {
                failure = "no certificate for " + server_name + ": " + obtained.error;
                co_return nullptr;
            }
            leaf = obtained.leaf;
            rec_.leaf = "issued";
        }
        ossl::Ssl client_ssl = ctx_.client_tls.new_session(*leaf->certificate, **leaf->chain, *leaf->key->key);
        mail_client_.emplace(client_, std::move(client_ssl));
        watchdog_->phase(limits_.handshake_timeout);
        if (!co_await mail_client_->handshake()) {
            failure = "the client's TLS handshake after STARTTLS failed: " + mail_client_->failure().text;
            co_return nullptr;
        }
        rec_.client_tls = summarize(mail_client_->ssl());
        co_return &*mail_client_;
    }

    // --- interception, after CONNECT or on a transparent listener --------------------------

    // `target`: where the upstream connection goes (CONNECT's host:port, or the original
    // destination's address); `connect_host`: the name it gives (the address, transparently).
    awaitable<void> intercept(const http::Authority& target_ref, const std::string& connect_host_ref) {
        const http::Authority target_copy = target_ref;
        const std::string connect_host = connect_host_ref;
        const http::Authority* const target = &target_copy;
        watchdog_->phase(limits_.client_hello_timeout);
        tls::ClientHello hello;
        if (!co_await read_client_hello(hello, target->port)) {
            if (plain_http_tunnel_) {
                co_await plain_tunnel(target->host, target->port, connect_host);
                co_return;
            }
            if (non_tls_tunnel_) {
                // Named, not a temporary in the co_await expression: GCC 12 destroys those twice.
                const bypass::BypassDecision why{Reason::bypass_rule, std::string(bypass::kRuleLogReason),
                                                 "the tunnel's first bytes are not TLS; tunnelled by bypass.non_tls"};
                co_await bypass_tunnel(target->host, target->port, why);
            }
            co_return;
        }
        if (transparent_ && hello.server_name.empty()) {
            // The name the leaf and the upstream check need is not known.
            if (ctx_.config.transparent.no_sni_tunnel) {
                const bypass::BypassDecision by_rule{Reason::bypass_rule, std::string(bypass::kRuleLogReason),
                                                      "the ClientHello names no server (no SNI); tunnelled to " +
                                                          rec_.connect_target + " by transparent.no_sni"};
                co_await bypass_tunnel(target->host, target->port, by_rule);
                co_return;
            }
            co_await refuse_hello(kAlertHandshakeFailure);
            finish(decision::kBlocked, Reason::no_sni,
                   "the ClientHello to " + rec_.connect_target + " names no server (no SNI); refused by transparent.no_sni");
            co_return;
        }
        std::string server_name = connect_host;
        if (!hello.server_name.empty()) {
            server_name = normalise_name(hello.server_name);
            if (!plausible_dns_name(server_name) || server_name.front() == '*') {
                finish(decision::kBlocked, Reason::malformed_request, "invalid SNI host name");
                co_return;
            }
        }
        rec_.requested_host = server_name;
        const std::string sni = hello.server_name.empty() ? std::string() : server_name;
        if (co_await bypassed(sni, connect_host, *target, hello)) co_return;

        // Upstream first: its verdict decides what the client is shown, and its ALPN choice
        // is the only one the client may be given.
        Verdict verdict;
        UpstreamObservations seen;  // outlives the upstream SSL that points at it
        std::optional<tls::TlsStream> upstream_tls;
        std::vector<std::string> extra_names;
        std::string upstream_alpn;
        if (auto failure = co_await connect_upstream(target->host, target->port)) {
            verdict = *failure;
        } else {
            upstream_tls.emplace(upstream_, ctx_.upstream.new_session(server_name, rec_.upstream, tls::alpn_wire(hello.alpn, ctx_.config.upstream.alpn), seen));
            watchdog_->phase(limits_.handshake_timeout);
            const bool ok = co_await upstream_tls->handshake();
            SSL* ussl = upstream_tls->ssl();
            verdict = ok ? ctx_.upstream.check_established(ussl) : ctx_.upstream.classify_failure(ussl, upstream_tls->failure());
            if (!ok && watchdog_->expired()) verdict = {Reason::timeout, "upstream TLS handshake timed out"};
            if (!ok && seen.client_certificate_requested && !watchdog_->expired()) {
                // The proxy cannot present the client's certificate: abandon this attempt and
                // let the client's own (still unread) ClientHello reach the server.
                rec_.upstream_cert_sha256 = seen.leaf_sha256;
                if (ctx_.config.bypass.client_certificate == bypass::Rule::tunnel) {
                    upstream_tls.reset();
                    ctx_.bypass.remember_client_certificate(sni, connect_host, target->port);
                    ctx_.metrics.bypass_learned_hosts = ctx_.bypass.learned_hosts();
                    const bypass::BypassDecision why{
                        Reason::bypass_client_certificate, "client_certificate",
                        "the server requested a client certificate (remembered for " +
                            std::to_string(ctx_.config.bypass.client_certificate_memory.count()) + " s)"};
                    co_await bypass_tunnel(target->host, target->port, why);
                    co_return;
                }
                verdict = {Reason::client_certificate_required,
                           "the server requested a client certificate and bypass.client_certificate is \"refuse\""};
            }
            if (!verdict.ok()) SSL_set_app_data(ussl, nullptr);
            rec_.upstream_cert_sha256 = seen.leaf_sha256;
            if (X509* peer = SSL_get0_peer_certificate(ussl)) {
                if (rec_.upstream_cert_sha256.empty()) rec_.upstream_cert_sha256 = ossl::fingerprint_sha256(*peer);
                if (verdict.ok()) extra_names = related_names(server_name, dns_names(peer));
            }
            if (ok) {
                rec_.upstream_tls = summarize(ussl);
                upstream_alpn = rec_.upstream_tls.alpn;
                ++(rec_.upstream_tls.resumed ? ctx_.metrics.upstream_resumed : ctx_.metrics.upstream_full);
            }
        }

        watchdog_->phase(limits_.certificate_timeout);
        auto leaf = ctx_.leaves.find(server_name);
        if (leaf) rec_.leaf = "cache";
        else {
            auto outcome = co_await ctx_.leaves.async_obtain(server_name, extra_names, use_awaitable);
            if (!outcome.leaf) {
                std::string detail = outcome.error;
                if (!verdict.ok()) detail += "; upstream: " + std::string(code(verdict.reason));
                finish(decision::kFailed, outcome.ca_unavailable ? Reason::ca_unavailable : Reason::certificate_refused,
                       detail);
                co_return;
            }
            leaf = outcome.leaf;
            rec_.leaf = "issued";
        }
        if (watchdog_->expired()) {
            finish(decision::kFailed, Reason::timeout, "timed out waiting for a certificate");
            co_return;
        }

        ossl::Ssl client_ssl = ctx_.client_tls.new_session(*leaf->certificate, **leaf->chain, *leaf->key->key);
        tls::ServerChoices choices;
        if (verdict.ok()) choices.alpn = upstream_alpn;
        else if (std::find(hello.alpn.begin(), hello.alpn.end(), kHttp11) != hello.alpn.end())
            choices.alpn = kHttp11;  // the error page is HTTP/1.1
        tls::attach_choices(*client_ssl, choices);
        tls::ReceivedAlert client_alert;
        tls::watch_received_alerts(*client_ssl, client_alert);
        tls::TlsStream client_tls(client_, std::move(client_ssl));
        watchdog_->phase(limits_.handshake_timeout);
        const bool client_ok = co_await client_tls.handshake();
        SSL_set_app_data(client_tls.ssl(), nullptr);
        tls::stop_watching_alerts(*client_tls.ssl());
        if (!client_ok) {
            std::string detail =
                client_tls.failure().text + (verdict.ok() ? "" : "; upstream: " + std::string(code(verdict.reason)));
            if (client_alert.description >= 0)
                detail = client_rejected(client_alert.description, sni, connect_host, target->port, verdict.ok()) + detail;
            finish(decision::kFailed, watchdog_->expired() ? Reason::timeout : Reason::client_handshake_failed, detail);
            co_return;
        }
        rec_.client_tls = summarize(client_tls.ssl());

        if (!verdict.ok()) {
            co_await explain_refusal(client_tls, verdict, server_name);
            co_return;
        }

        watchdog_->idle(limits_.idle_timeout);
        if (ctx_.inspector != nullptr) {
            // h2 only when the upstream selected it (and so the client was given it).
            const bool h2 = rec_.client_tls.alpn == h2::kAlpnH2;
            co_await inspect_relay(client_tls, *upstream_tls, server_name, decision::kIntercepted, h2);
            co_return;
        }
        co_await relay(client_tls, *upstream_tls);
        finish(decision::kIntercepted, Reason::none, "");
    }

    // The upstream was refused: the client is told why on a page, but only once its request
    // has been read. A browser takes a connection whose server speaks first for a dead one
    // (Chromium: ERR_SOCKET_NOT_CONNECTED) and retries or shows its own error instead. A
    // client that sends no request in limits.request_timeout_ms is closed (and logged).
    awaitable<void> explain_refusal(tls::TlsStream& client_tls, const Verdict& verdict, const std::string& server_name) {
        const char* decided = is_relay_failure(verdict.reason) ? decision::kFailed : decision::kBlocked;
        watchdog_->phase(limits_.request_timeout);
        std::string head;
        if (!co_await read_tls_head(client_tls, head)) {
            finish(decided, verdict.reason,
                   verdict.detail + (watchdog_->expired() ? "; no request from the client in time, so no page was sent"
                                                          : "; the client closed before its request, so no page was sent"));
            co_return;
        }
        const std::string page = http::error_response(verdict.reason, server_name, verdict.detail);
        const bool sent = co_await client_tls.write_all(ossl::as_bytes(page)) == tls::IoStatus::ok;
        finish(decided, verdict.reason, verdict.detail);
        if (!sent) co_return;
        co_await client_tls.close_notify();
        // A lingering close, as for plain refusals: a request body still arriving would
        // otherwise make the kernel reset the connection under the page.
        asio::error_code ec;
        client_.shutdown(tcp::socket::shutdown_send, ec);
        co_await drain_client();
    }

    // Reads a request head (through its blank line) from the decrypted client stream, at most
    // limits.request_head_bytes; false when the client closes, errs or times out first. Bytes
    // after the head (a body) are not kept.
    awaitable<bool> read_tls_head(tls::TlsStream& stream, std::string& head) {
        std::vector<std::uint8_t> buf(4096);
        for (;;) {
            tls::IoStatus st;
            const std::size_t n = co_await stream.read_some(buf, st);
            if (n == 0) co_return false;
            const std::size_t from = head.size() >= 3 ? head.size() - 3 : 0;
            head.append(reinterpret_cast<const char*>(buf.data()), n);
            if (head.find("\r\n\r\n", from) != std::string::npos) co_return true;
            // An oversized head still gets its page: what was asked for is clear enough.
            if (head.size() >= limits_.request_head_bytes) co_return true;
        }
    }

    // --- bypass: tunnels that are not decrypted ------------------------------------------------

    // Tunnels the connection if a pattern or a learned host says so, or if the client's TLS
    // cannot be terminated (then bypass.unsupported_tls decides). True when it is dealt with.
    awaitable<bool> bypassed(const std::string& sni, const std::string& connect_host, const http::Authority& target,
                             const tls::ClientHello& hello) {
        if (auto why = ctx_.bypass.decide(sni, connect_host, target.port)) {
            co_await bypass_tunnel(target.host, target.port, *why);
            co_return true;
        }
        std::string why;
        const auto terminable = tls::can_terminate(hello, why);
        if (terminable == tls::Terminable::yes) co_return false;
        if (ctx_.config.bypass.unsupported_tls == bypass::Rule::tunnel) {
            const bypass::BypassDecision by_rule{Reason::bypass_rule, std::string(bypass::kRuleLogReason),
                                                  why + "; tunnelled by bypass.unsupported_tls"};
            co_await bypass_tunnel(target.host, target.port, by_rule);
            co_return true;
        }
        // Refused the way a TLS server would: a fatal alert the client can show.
        const std::uint8_t alert =
            terminable == tls::Terminable::no_version ? kAlertProtocolVersion : kAlertHandshakeFailure;
        co_await refuse_hello(alert);
        finish(decision::kBlocked, Reason::unsupported_client_tls, why + "; refused by bypass.unsupported_tls");
        co_return true;
    }

    // A raw TCP relay to the server (a fresh connection): the client's ClientHello, only
    // peeked so far, goes first, and the two ends do their own TLS.
    awaitable<void> bypass_tunnel(const std::string& host, std::uint16_t port, const bypass::BypassDecision& why) {
        asio::error_code ec;
        if (upstream_.is_open()) {
            upstream_.shutdown(tcp::socket::shutdown_both, ec);
            upstream_.close(ec);
        }
        rec_.upstream.clear();
        rec_.upstream_tls = {};
        rec_.reason_text = why.log_reason;
        if (auto failure = co_await connect_upstream(host, port)) {
            // The client waits for a ServerHello it will not get; closing is the only answer.
            rec_.reason_text.clear();
            finish(is_relay_failure(failure->reason) ? decision::kFailed : decision::kBlocked, failure->reason,
                   failure->detail + " (tunnel for bypass reason " + why.log_reason + ")");
            co_return;
        }
        watchdog_->idle(limits_.idle_timeout);
        RelayCounts counts;
        co_await relay_raw(client_, upstream_, limits_.relay_buffer_bytes, *watchdog_, counts);
        rec_.bytes_client_to_upstream = counts.client_to_upstream;
        rec_.bytes_upstream_to_client = counts.upstream_to_client;
        finish(decision::kBypassed, why.reason,
               why.detail + (watchdog_->expired() ? "; closed after limits.idle_timeout_seconds without traffic" : ""));
    }

    // The client sent an alert during the handshake with the forged certificate. Returns the
    // start of the log detail; learns the host for bypass when configured and the alert
    // says the certificate was rejected (never for an upstream the proxy refused).
    std::string client_rejected(int alert, const std::string& sni, const std::string& connect_host, std::uint16_t port,
                                bool upstream_ok) {
        const std::string name = tls::alert_name(alert);
        std::string detail = "the client sent alert " + name;
        if (upstream_ok && ctx_.bypass.learn_rejection(sni, connect_host, port, name)) {
            ctx_.metrics.bypass_learned_hosts = ctx_.bypass.learned_hosts();
            const std::string what = (sni.empty() ? connect_host : sni) + " (CONNECT " + connect_host + ":" +
                                     std::to_string(port) + ") for " +
                                     std::to_string(ctx_.config.bypass.learn_rejected.count()) + " s";
            detail += "; learned for bypass: " + what;
            ctx_.log.event("bypass_learned", what + " after a client at " + rec_.client + " sent " + name);
        }
        return detail + "; ";
    }

    // Consumes the peeked ClientHello and answers it with a fatal alert.
    awaitable<void> refuse_hello(std::uint8_t alert) {
        asio::error_code ec;
        std::vector<std::uint8_t> discard(hello_bytes_);
        co_await asio::async_read(client_, asio::buffer(discard), asio::redirect_error(use_awaitable, ec));
        const std::uint8_t record[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, alert};
        co_await asio::async_write(client_, asio::buffer(record), asio::redirect_error(use_awaitable, ec));
        client_.shutdown(tcp::socket::shutdown_send, ec);
    }

    // [inspection]: HTTP/1.1 parsed both ways, bodies through the inspector (inspect/).
    // `allowed` is the decision logged when nothing is blocked.
    awaitable<void> inspect_relay(tls::ByteStream& client, tls::ByteStream& upstream, const std::string& host,
                                  const char* allowed, bool h2 = false) {
        rec_.inspection = "on";
        // A named object, not a braced temporary in the co_await: GCC 12 destroys such
        // temporaries twice in coroutines.
        inspect::RelayParams params{ctx_.config.inspection, *ctx_.inspector, ctx_.metrics.inspection,
                                    limits_.relay_buffer_bytes, host, rec_.bytes_client_to_upstream,
                                    rec_.bytes_upstream_to_client, [w = watchdog_.get()] { w->touch(); }};
        inspect::RelayOutcome out;
        if (h2) {
            out = co_await h2::h2_relay(client, upstream, params);
        } else {
            out = co_await inspect::inspecting_relay(client, upstream, params);
        }
        if (watchdog_->expired() && out.reason == Reason::none)
            out.detail += std::string(out.detail.empty() ? "" : "; ") + "closed after limits.idle_timeout_seconds without traffic";
        rec_.rule = out.rule;
        rec_.inspection = out.inspection;
        finish(out.reason == Reason::none ? allowed : decision::kBlocked, out.reason, out.detail);
        if (out.page_sent) co_await drain_client();
    }

    // [inspection] on a proxied http:// request: its rewritten head and body, and the
    // response, go through the same relay as decrypted traffic, so plain HTTP is no way round
    // the inspector. `head` and `host` live in the caller's frame.
    awaitable<void> inspect_plain(std::string& head, std::unique_ptr<http::MessageBoundary>& body, const std::string& host) {
        tls::PlainStream client(client_);
        client.one_message(std::move(head), std::move(body));
        tls::PlainStream upstream(upstream_);
        co_await inspect_relay(client, upstream, host, decision::kProxied);
    }

    // Plain HTTP/1.1 in a CONNECT tunnel, with inspection on: relayed through the inspecting
    // relay both ways in plaintext (WebSocket upgrades included), logged mode "connect",
    // decision "proxied". Destination access control applies as to every upstream.
    awaitable<void> plain_tunnel(const std::string& host, std::uint16_t port, const std::string& name) {
        if (auto failure = co_await connect_upstream(host, port)) {
            // The client has sent its request: the answer is a page in kind.
            co_await refuse_plain(failure->reason, name, failure->detail);
            co_return;
        }
        watchdog_->idle(limits_.idle_timeout);
        tls::PlainStream client(client_);
        tls::PlainStream upstream(upstream_);
        co_await inspect_relay(client, upstream, name, decision::kProxied);
    }

    // The start of an HTTP/1.x request line: a method of upper-case letters, then a space
    // (or only letters so far).
    static bool looks_like_request_line(std::span<const std::uint8_t> bytes) {
        std::size_t i = 0;
        while (i < bytes.size() && i < 20 && bytes[i] >= 'A' && bytes[i] <= 'Z') ++i;
        if (i == 0) return false;
        return i == bytes.size() || (i < 20 && bytes[i] == ' ');
    }

    // Peeks at the client's first bytes (into `storage`, `have` of them) until they hold a
    // whole ClientHello or cannot; nullopt when the client closed or the deadline passed first.
    awaitable<std::optional<tls::HelloStatus>> peek_client_hello(tls::ClientHello& hello,
                                                                 std::unique_ptr<std::uint8_t[]>& storage,
                                                                 std::size_t& have) {
        // Not zero-filled (it is peeked into before any byte is looked at).
        storage = std::make_unique_for_overwrite<std::uint8_t[]>(kMaxClientHelloBytes + 1);
        const std::span<std::uint8_t> buf(storage.get(), kMaxClientHelloBytes + 1);
        have = 0;
        for (;;) {
            have = co_await tls::peek_more(client_, buf, have);
            if (have == 0) co_return std::nullopt;
            const auto status = tls::parse_client_hello({buf.data(), have}, kMaxClientHelloBytes, hello);
            if (status != tls::HelloStatus::need_more) co_return status;
        }
    }

    awaitable<bool> read_client_hello(tls::ClientHello& hello, std::uint16_t port) {
        std::unique_ptr<std::uint8_t[]> storage;
        std::size_t have = 0;
        const auto peeked = co_await peek_client_hello(hello, storage, have);
        const std::span<const std::uint8_t> buf(storage.get(), have);
        {
            if (!peeked) {
                finish(decision::kFailed, watchdog_->expired() ? Reason::timeout : Reason::client_handshake_failed,
                       watchdog_->expired() ? "no ClientHello in time" : "client closed before its ClientHello");
                co_return false;
            }
            switch (*peeked) {
                case tls::HelloStatus::complete: hello_bytes_ = have; co_return true;
                case tls::HelloStatus::need_more: co_return false;  // not returned by peek_client_hello
                case tls::HelloStatus::not_tls: {
                    const auto& ports = ctx_.config.bypass.non_tls_ports;
                    if (ctx_.config.bypass.non_tls == bypass::Rule::tunnel &&
                        std::find(ports.begin(), ports.end(), port) != ports.end()) {
                        non_tls_tunnel_ = true;
                        co_return false;
                    }
                    // Plain HTTP in the tunnel (a browser's ws:// through a proxy, or any
                    // http:// a client sends by CONNECT): inspected like http:// proxying.
                    // Not to 443, where it is a client speaking plaintext to a TLS port: the
                    // not_tls page below tells it so.
                    if (ctx_.inspector != nullptr && ctx_.config.inspection.inspect_plain_tunnels && port != 443 &&
                        looks_like_request_line(buf)) {
                        plain_http_tunnel_ = true;
                        co_return false;
                    }
                    // Probably plain HTTP in the tunnel: answer in kind, it is what that client reads.
                    if (std::isalpha(buf[0])) co_await write_plain(http::error_response(Reason::not_tls, rec_.requested_host, ""));
                    finish(decision::kBlocked, Reason::not_tls, "the tunnel's first bytes are not a TLS handshake");
                    co_return false;
                }
                case tls::HelloStatus::malformed:
                    finish(decision::kBlocked, Reason::client_handshake_failed, "malformed ClientHello");
                    co_return false;
                case tls::HelloStatus::too_large:
                    finish(decision::kBlocked, Reason::client_handshake_failed,
                           "ClientHello over " + std::to_string(kMaxClientHelloBytes) + " bytes");
                    co_return false;
            }
        }
    }

    // Destination access control, on the addresses themselves, so that a name resolving to
    // the proxy's own host (or to a cloud metadata service) is refused as its literal is.
    // Denied addresses are dropped; when none is left, the verdict says why.
    std::optional<Verdict> drop_denied_destinations(const std::string& host, std::vector<tcp::endpoint>& endpoints) const {
        std::string first_denied;
        std::erase_if(endpoints, [&](const tcp::endpoint& e) {
            const access::Network* n = ctx_.denied_destinations.match(access::to_address(e.address()));
            if (n != nullptr && first_denied.empty()) first_denied = e.address().to_string() + " (in " + n->text + ")";
            return n != nullptr;
        });
        if (!endpoints.empty()) return std::nullopt;
        const std::string where = normalise_name(host) == first_denied.substr(0, first_denied.find(' '))
                                      ? first_denied
                                      : host + " is at " + first_denied;
        return Verdict{Reason::destination_not_allowed, where + ", which access.denied_destinations refuses"};
    }

    // Resolves (static overrides first, then DNS) and connects; nullopt on success.
    awaitable<std::optional<Verdict>> connect_upstream(const std::string& host, std::uint16_t port) {
        watchdog_->phase(limits_.upstream_connect_timeout);
        std::vector<tcp::endpoint> endpoints;
        asio::error_code ec;
        const auto& overrides = ctx_.config.upstream.hosts;
        if (auto it = overrides.find(normalise_name(host)); it != overrides.end()) {
            endpoints.emplace_back(asio::ip::make_address(it->second), port);
        } else if (is_ip_literal(host)) {
            endpoints.emplace_back(asio::ip::make_address(host), port);
        } else {
            tcp::resolver resolver(client_.get_executor());
            auto results = co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(use_awaitable, ec));
            if (ec) co_return Verdict{Reason::dns_failed, host + ": " + ec.message()};
            for (const auto& r : results) endpoints.push_back(r.endpoint());
        }
        if (watchdog_->expired()) co_return Verdict{Reason::timeout, "resolving " + host + " timed out"};
        if (auto refused = drop_denied_destinations(host, endpoints)) co_return refused;
        co_await asio::async_connect(upstream_, endpoints, asio::redirect_error(use_awaitable, ec));
        if (ec || watchdog_->expired()) {
            if (watchdog_->expired()) co_return Verdict{Reason::timeout, "connecting to " + host + " timed out"};
            co_return Verdict{Reason::connect_failed, endpoint_text(endpoints.front()) + ": " + ec.message()};
        }
        upstream_.set_option(tcp::no_delay(true), ec);
        auto remote = upstream_.remote_endpoint(ec);
        if (!ec) rec_.upstream = endpoint_text(remote);
        co_return std::nullopt;
    }

    awaitable<void> relay(tls::TlsStream& client, tls::TlsStream& upstream) {
        co_await (pump(client, upstream, rec_.bytes_client_to_upstream) &&
                  pump(upstream, client, rec_.bytes_upstream_to_client));
    }

    // One direction. Its buffer (relay_buffer_bytes) is held only while data flows: when the
    // sender has nothing more, it goes back before the wait, so an idle connection holds
    // none (not zero-filled either: a byte is only used after a read has written it).
    awaitable<void> pump(tls::TlsStream& from, tls::TlsStream& to, std::uint64_t& count) {
        const std::size_t size = limits_.relay_buffer_bytes;
        // Made at once: what OpenSSL may hold already (read with the handshake) is read first.
        auto storage = std::make_unique_for_overwrite<std::uint8_t[]>(size);
        for (;;) {
            tls::IoStatus st;
            std::size_t n = co_await from.read_releasing(storage, size, st);
            if (n == 0) {
                if (st == tls::IoStatus::eof) {
                    co_await to.end_sending();  // a clean close_notify is passed on as one
                } else {
                    // A truncated or broken stream is not dressed up as a clean close.
                    tls::abort_socket(client_);
                    tls::abort_socket(upstream_);
                }
                co_return;
            }
            const std::span<std::uint8_t> buf(storage.get(), size);
            // Drain records already decrypted or buffered (no syscall) to write in larger runs.
            while (n + tls::kMaxRecordPlaintext <= buf.size()) {
                std::size_t more = from.read_buffered({buf.data() + n, buf.size() - n});
                if (more == 0) break;
                n += more;
            }
            watchdog_->touch();
            count += n;
            if (co_await to.write_all({buf.data(), n}) != tls::IoStatus::ok) {
                tls::abort_socket(client_);
                tls::abort_socket(upstream_);
                co_return;
            }
        }
    }

    // --- plain HTTP ------------------------------------------------------------------------

    awaitable<void> forward_http(const http::RequestHead& head) {
        rec_.mode = "http";
        rec_.connect_target = head.target;
        auto url = http::parse_http_url(head.target);
        if (!url) {
            co_await refuse_plain(Reason::malformed_request, "", "the URL is not a valid http:// URL");
            co_return;
        }
        const std::string host = normalise_name(url->authority.host);
        rec_.requested_host = host;
        std::string request = head.method + " " + url->path_and_query + " HTTP/1.1\r\n";
        const bool ipv6 = url->authority.host.find(':') != std::string::npos;
        std::string authority = ipv6 ? "[" + url->authority.host + "]" : url->authority.host;
        if (url->authority.port != 80) authority += ":" + std::to_string(url->authority.port);
        request += "Host: " + authority + "\r\n";
        std::vector<std::string> connection_listed;
        if (auto c = head.header("Connection")) {
            std::string v = *c;
            std::size_t pos = 0;
            while (pos <= v.size()) {
                auto comma = v.find(',', pos);
                std::string tok = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
                tok.erase(0, tok.find_first_not_of(" \t"));
                tok.erase(tok.find_last_not_of(" \t") + 1);
                for (auto& ch : tok) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                if (!tok.empty()) connection_listed.push_back(tok);
                if (comma == std::string::npos) break;
                pos = comma + 1;
            }
        }
        static constexpr std::string_view kHopByHop[] = {"connection", "proxy-connection", "keep-alive",
                                                         "proxy-authorization", "proxy-authenticate", "te",
                                                         "trailer", "upgrade", "host", "transfer-encoding"};
        for (const auto& [name, value] : head.headers) {
            std::string lower = name;
            for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (std::find(std::begin(kHopByHop), std::end(kHopByHop), lower) != std::end(kHopByHop)) continue;
            if (std::find(connection_listed.begin(), connection_listed.end(), lower) != connection_listed.end()) continue;
            request += name + ": " + value + "\r\n";
        }
        // The body goes on in its own framing: chunked stays chunked (relayed as sent).
        if (auto te = head.header("Transfer-Encoding")) request += "Transfer-Encoding: " + *te + "\r\n";
        // One request per upstream connection: the response is delimited by its close.
        request += "Connection: close\r\n\r\n";
        // Where the body ends, read as strictly as the inspecting relay reads it: ambiguous
        // framing (both Content-Length and Transfer-Encoding, codings other than chunked,
        // bad lengths) is refused before anything reaches the server.
        std::unique_ptr<http::MessageBoundary> body;
        std::string framing_error;
        try {
            body = std::make_unique<http::MessageBoundary>(request);
        } catch (const std::invalid_argument& e) {
            framing_error = e.what();
        }
        if (!body) {
            co_await refuse_plain(Reason::malformed_request, host, "the request's body framing is refused: " + framing_error);
            co_return;
        }
        if (auto failure = co_await connect_upstream(url->authority.host, url->authority.port)) {
            co_await refuse_plain(failure->reason, host, failure->detail);
            co_return;
        }
        watchdog_->idle(limits_.idle_timeout);
        if (ctx_.inspector != nullptr) {
            co_await inspect_plain(request, body, host);
            co_return;
        }
        asio::error_code ec;
        co_await asio::async_write(upstream_, asio::buffer(request), asio::redirect_error(use_awaitable, ec));
        std::vector<std::uint8_t> buf(limits_.relay_buffer_bytes);
        while (!ec && !body->complete()) {
            const std::size_t n =
                co_await client_.async_read_some(asio::buffer(buf.data(), buf.size()), asio::redirect_error(use_awaitable, ec));
            if (ec) break;
            watchdog_->touch();
            // Bytes past the body (a pipelined request) are not forwarded.
            const std::size_t mine = body->take({buf.data(), n});
            if (!body->error().empty()) {
                finish(decision::kFailed, Reason::malformed_request, "the request body's framing is broken: " + body->error());
                tls::abort_socket(client_);
                tls::abort_socket(upstream_);
                co_return;
            }
            rec_.bytes_client_to_upstream += mine;
            co_await asio::async_write(upstream_, asio::buffer(buf.data(), mine), asio::redirect_error(use_awaitable, ec));
        }
        if (ec) {
            finish(decision::kFailed, watchdog_->expired() ? Reason::timeout : Reason::connect_failed,
                   "sending the request: " + ec.message());
            co_return;
        }
        for (;;) {
            std::size_t n = co_await upstream_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
            if (n > 0) {
                watchdog_->touch();
                rec_.bytes_upstream_to_client += n;
                asio::error_code wec;
                co_await asio::async_write(client_, asio::buffer(buf.data(), n), asio::redirect_error(use_awaitable, wec));
                if (wec) break;
            }
            if (ec) break;
        }
        asio::error_code ignored;
        client_.shutdown(asio::socket_base::shutdown_send, ignored);
        finish(decision::kProxied, Reason::none, "");
    }

    // --- helpers ---------------------------------------------------------------------------

    awaitable<bool> write_plain(std::string_view text) {
        asio::error_code ec;
        co_await asio::async_write(client_, asio::buffer(text.data(), text.size()), asio::redirect_error(use_awaitable, ec));
        co_return !ec;
    }

    awaitable<void> refuse_plain(Reason reason, const std::string& host, const std::string& detail) {
        co_await write_plain(http::error_response(reason, host.empty() ? rec_.requested_host : host, detail));
        asio::error_code ec;
        client_.shutdown(asio::socket_base::shutdown_send, ec);
        finish(is_relay_failure(reason) || reason == Reason::ca_unavailable ? decision::kFailed : decision::kBlocked,
               reason, detail.empty() ? std::string(describe(reason)) : detail);
        co_await drain_client();
    }

    // A lingering close: the client may still be sending (a request body the refusal did not
    // read). Closing a socket with unread data makes the kernel reset the connection, and the
    // reset can reach the client before it has read the answer, which it then never sees. So
    // what keeps arriving is read and dropped, bounded in time and bytes, until the client
    // closes its side.
    awaitable<void> drain_client() {
        watchdog_->phase(kLingerTime);
        std::vector<std::uint8_t> sink(16 * 1024);
        std::size_t dropped = 0;
        asio::error_code ec;
        while (dropped < kLingerBytes) {
            const std::size_t n =
                co_await client_.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
            if (ec || n == 0) break;
            dropped += n;
        }
    }

    void finish(const char* decision, Reason reason, const std::string& detail) {
        if (finished_) return;
        finished_ = true;
        rec_.decision = decision;
        rec_.reason = reason;
        rec_.detail = detail;
        ctx_.metrics.count(decision, reason);
        ctx_.metrics.bytes_client_to_upstream += rec_.bytes_client_to_upstream;
        ctx_.metrics.bytes_upstream_to_client += rec_.bytes_upstream_to_client;
        ctx_.log.write(rec_);
    }

    ProxyContext& ctx_;
    const LimitsSection& limits_;
    tcp::socket client_;
    tcp::socket upstream_;
    std::shared_ptr<Watchdog> watchdog_;
    ConnectionRecord rec_;
    bool finished_ = false;
    std::size_t hello_bytes_ = 0;   // bytes of the peeked ClientHello
    bool non_tls_tunnel_ = false;  // bypass.non_tls allows this non-TLS tunnel
    const bool transparent_;          // accepted on listen.transparent
    const bool smtp_listener_;        // accepted on listen.smtp
    // The TLS of a mail session after STARTTLS (the observations outlive the SSL that points
    // at them, and that SSL its stream).
    UpstreamObservations mail_seen_;
    std::optional<tls::TlsStream> mail_upstream_;
    std::optional<tls::TlsStream> mail_client_;
    bool plain_http_tunnel_ = false;  // plain HTTP in a CONNECT tunnel, inspected
};

}  // namespace

asio::awaitable<void> serve_connection(ProxyContext& ctx, asio::ip::tcp::socket client,
                                       std::optional<access::Address> counted, Listener kind) {
    struct ActiveGuard {
        Metrics& m;
        access::ClientSlots& slots;
        std::optional<access::Address> held;
        ~ActiveGuard() {
            if (held) slots.give_back(*held);
            --m.connections_active;
        }
    } guard{ctx.metrics, ctx.client_slots, counted};
    ++ctx.metrics.connections_active;
    Session session(ctx, std::move(client), kind);
    co_await session.run();
}

}  // namespace proxy
