// proxy-node bypass and client access control, end to end: the real proxy-node and
// ca-service binaries, test origins (the Asio origin and openssl s_server), and curl /
// openssl s_client as clients. A bypassed tunnel is recognised by what the client sees:
// the origin's own certificate (trusted only via the origin root), not the forged one.

#include "proxy_harness.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include "config/node_config.hpp"
#include "ossl/pem.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-bypass-" + name); }

const std::vector<std::string> kNames = {"www.bank.test.example", "pinned.test.example",  "good.test.example",
                                         "learned.test.example",  "mtls12.test.example",  "mtls13.test.example",
                                         "mtlsrefuse.test.example", "old.test.example",   "rsaonly.test.example"};

// The origin: every test name under the origin root, served by SNI.
struct BypassOrigins {
    OriginPki pki;
    std::map<std::string, OriginCert> certs;
    std::unique_ptr<OriginServer> server;
    std::filesystem::path dir = work_dir("origin");

    BypassOrigins() {
        for (const auto& n : kNames) certs.emplace(n, pki.issue(valid_for({n})));
        std::map<std::string, const OriginCert*> by_name;
        for (const auto& [k, v] : certs) by_name[k] = &v;
        server = std::make_unique<OriginServer>(certs.at("good.test.example"), by_name, OriginOptions{2, "", false});
        pki.write_root(root());
    }
    std::filesystem::path root() const { return dir / "origin-root.pem"; }
    std::string url(const std::string& host, const std::string& path = "/") const {
        return "https://" + host + ":" + std::to_string(server->port()) + path;
    }
    std::string fingerprint(const std::string& host) const { return ossl::fingerprint_sha256(*certs.at(host).cert); }
};

ProxyOptions options(const std::string& sections) {
    ProxyOptions o;
    for (const auto& n : kNames) o.hosts[n] = "127.0.0.1";
    o.sections = sections;
    return o;
}

struct Fixture {
    const TestCa& ca = TestCa::shared();
    BypassOrigins origins;
    CaService service{ca, work_dir("ca")};
    std::filesystem::path list_dir = work_dir("lists");

    std::filesystem::path interception_root() const { return ca.dir / "pki/root-ca.pem"; }
    std::unique_ptr<ProxyNode> proxy(const std::string& name, const std::string& sections) {
        return proxy(name, options(sections));
    }
    std::unique_ptr<ProxyNode> proxy(const std::string& name, ProxyOptions o) {
        return std::make_unique<ProxyNode>(ca, service.port(), work_dir(name), origins.root(), std::move(o));
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

// All connection records for `host`, oldest first, once at least `n` are there.
std::vector<Json> records_for(const ProxyNode& p, const std::string& host, std::size_t n) {
    std::vector<Json> out;
    for (int i = 0; i < 100; ++i) {
        out.clear();
        for (const auto& r : p.records())
            if (r.value("host", "") == host) out.push_back(r);
        if (out.size() >= n) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return out;
}

std::string metrics(const ProxyNode& p) { return run({"curl", "-sS", p.mgmt_url("/metrics")}).output; }

std::string connect_arg(const ProxyNode& p) { return "127.0.0.1:" + std::to_string(p.port()); }

void wait_for_port(std::uint16_t port) {
    for (int i = 0; i < 100; ++i) {
        if (run({"curl", "-s", "-o", "/dev/null", "--max-time", "1", "telnet://127.0.0.1:" + std::to_string(port)}).exit_code != 7)
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

TEST_CASE("pattern bypass: the client sees the origin's own certificate; the log says bypassed", "[proxy][bypass]") {
    auto& f = fixture();
    std::ofstream(f.list_dir / "pinned.txt") << "# pinned apps\npinned.test.example\n";
    auto proxy = f.proxy("pattern", "[bypass]\nhosts = [\"*.bank.test.example\"]\nhost_lists = [\"" +
                                        (f.list_dir / "pinned.txt").string() + "\"]\n");
    const std::string host = "www.bank.test.example";

    // Trusting only the origin root works: the certificate is the origin's, end to end.
    auto r = curl_via(*proxy, f.origins.root(), f.origins.url(host));
    INFO(r.output << proxy->log());
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 200);
    CHECK(r.body == "hello from " + host + "\n");
    auto rec = proxy->last_record(host);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "bypassed");
    CHECK(rec["reason"] == "pattern:*.bank.test.example");
    CHECK(rec["client_tls"].is_null());  // the proxy terminated no TLS
    CHECK(rec["upstream"] == "127.0.0.1:" + std::to_string(f.origins.server->port()));
    CHECK(rec["bytes_upstream_to_client"].get<std::uint64_t>() > 0);
    CHECK(rec["bytes_client_to_upstream"].get<std::uint64_t>() > 0);

    // Trusting only the interception root fails: nothing was forged for this host.
    auto forged = curl_via(*proxy, f.interception_root(), f.origins.url(host));
    INFO(forged.output);
    CHECK(forged.exit_code == 60);  // CURLE_PEER_FAILED_VERIFICATION

    // A host from a list file, matched exactly.
    auto listed = curl_via(*proxy, f.origins.root(), f.origins.url("pinned.test.example"));
    INFO(listed.output << proxy->log());
    CHECK(listed.status == 200);
    CHECK(proxy->last_record("pinned.test.example")["reason"] == "pattern:pinned.test.example");

    // Other hosts are still intercepted.
    auto other = curl_via(*proxy, f.interception_root(), f.origins.url("good.test.example"));
    INFO(other.output);
    CHECK(other.status == 200);
    CHECK(proxy->last_record("good.test.example")["decision"] == "intercepted");

    // The SNI of a bypassed host does not buy a tunnel to another CONNECT host: curl sends
    // SNI www.bank.test.example in a CONNECT to good.test.example, and is intercepted.
    const auto logged = proxy->record_count(host);
    auto spoof = curl_via(*proxy, f.interception_root(), f.origins.url(host),
                          {"--connect-to", host + ":" + std::to_string(f.origins.server->port()) + ":good.test.example:" +
                                               std::to_string(f.origins.server->port())});
    INFO(spoof.output << proxy->log());
    CHECK(spoof.status == 200);
    auto spoof_rec = proxy->record_after(host, logged);
    CHECK(spoof_rec["decision"] == "intercepted");
    CHECK(spoof_rec["target"] == "good.test.example:" + std::to_string(f.origins.server->port()));

    auto m = metrics(*proxy);
    CHECK_THAT(m, ContainsSubstring("proxy_bypassed_total{reason=\"pattern\"} 3"));
    CHECK_THAT(m, ContainsSubstring("proxy_connections_total{decision=\"bypassed\"} 3"));
    // No payload in the log.
    CHECK(read_file(proxy->connection_log()).find("hello from") == std::string::npos);
}

TEST_CASE("an upstream that requests a client certificate is tunnelled with the client's own handshake, then remembered",
          "[proxy][bypass][client-certificate]") {
    auto& f = fixture();
    auto dir = work_dir("mtls");
    // The client's certificate (self-signed; the origin trusts exactly it).
    auto gen = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                    "/CN=test client", "-addext", "extendedKeyUsage=clientAuth", "-days", "1", "-keyout",
                    (dir / "client.key").string(), "-out", (dir / "client.pem").string()});
    REQUIRE(gen.exit_code == 0);
    auto proxy = f.proxy("mtls", "");
    for (const auto& [host, version] : {std::pair<std::string, std::string>{"mtls12.test.example", "-tls1_2"},
                                        std::pair<std::string, std::string>{"mtls13.test.example", "-tls1_3"}}) {
        CAPTURE(host);
        write_cert_and_key(f.origins.certs.at(host), dir / (host + ".pem"), dir / (host + ".key"));
        auto port = free_port();
        Child server({"openssl", "s_server", "-quiet", "-www", version, "-accept", std::to_string(port), "-cert",
                      (dir / (host + ".pem")).string(), "-key", (dir / (host + ".key")).string(), "-Verify", "1",
                      "-CAfile", (dir / "client.pem").string()},
                     dir / (host + ".log"));
        wait_for_port(port);
        const std::string url = "https://" + host + ":" + std::to_string(port) + "/";
        const std::vector<std::string> cert = {"--cert", (dir / "client.pem").string(), "--key", (dir / "client.key").string()};

        // Without its certificate the origin refuses the client: the certificate really is required.
        auto without = curl_via(*proxy, f.origins.root(), url);
        INFO(without.output << read_file(dir / (host + ".log")));
        CHECK(without.exit_code != 0);

        for (int round = 0; round < 2; ++round) {
            CAPTURE(round);
            const auto logged = proxy->record_count(host);
            auto r = curl_via(*proxy, f.origins.root(), url, cert);
            INFO(r.output << proxy->log() << read_file(dir / (host + ".log")));
            REQUIRE(r.exit_code == 0);
            CHECK(r.status == 200);
            CHECK_THAT(r.body, ContainsSubstring("s_server"));  // the origin's own status page
            auto rec = proxy->record_after(host, logged);
            CHECK(rec["decision"] == "bypassed");
            CHECK(rec["reason"] == "client_certificate");
            CHECK(rec["bytes_upstream_to_client"].get<std::uint64_t>() > 0);
            if (round == 0) {
                CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("requested a client certificate"));
            } else {
                CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("remembered"));
            }
        }
        // The very first connection (the one without a certificate) found out and was tunnelled
        // too: the proxy saw the server's certificate before it was asked for one.
        auto recs = records_for(*proxy, host, 3);
        REQUIRE(recs.size() == 3);
        CHECK(recs[0]["upstream_cert_sha256"] == f.origins.fingerprint(host));
        CHECK_THAT(recs[0]["detail"].get<std::string>(), ContainsSubstring("requested a client certificate"));
        // Through the interception root only, the tunnelled origin's certificate is not accepted.
        auto forged = curl_via(*proxy, f.interception_root(), url, cert);
        CHECK(forged.exit_code == 60);
    }
    CHECK_THAT(metrics(*proxy), ContainsSubstring("proxy_bypassed_total{reason=\"client_certificate\"} 8"));

    SECTION("with client_certificate = \"refuse\" the client gets an error page instead") {
        auto refusing = f.proxy("mtls-refuse", "[bypass]\nclient_certificate = \"refuse\"\n");
        const std::string host = "mtlsrefuse.test.example";
        write_cert_and_key(f.origins.certs.at(host), dir / (host + ".pem"), dir / (host + ".key"));
        auto port = free_port();
        Child server({"openssl", "s_server", "-quiet", "-www", "-accept", std::to_string(port), "-cert",
                      (dir / (host + ".pem")).string(), "-key", (dir / (host + ".key")).string(), "-Verify", "1",
                      "-CAfile", (dir / "client.pem").string()},
                     dir / (host + ".log"));
        wait_for_port(port);
        for (int round = 0; round < 2; ++round) {
            const auto logged = refusing->record_count(host);
            auto r = curl_via(*refusing, f.interception_root(), "https://" + host + ":" + std::to_string(port) + "/");
            INFO(r.output << refusing->log());
            REQUIRE(r.exit_code == 0);
            CHECK(r.status == 502);
            CHECK_THAT(r.headers, ContainsSubstring("X-Proxy-Error: client_certificate_required"));
            auto rec = refusing->record_after(host, logged);
            CHECK(rec["decision"] == "blocked");
            CHECK(rec["reason"] == "client_certificate_required");
        }
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("learned bypass: a client that rejects the forged certificate gets a tunnel next time", "[proxy][bypass][learned]") {
    auto& f = fixture();
    const std::string host = "learned.test.example";

    SECTION("off by default: every connection is intercepted and fails the same way") {
        auto proxy = f.proxy("learn-off", "");
        for (int i = 0; i < 2; ++i) {
            auto r = curl_via(*proxy, f.origins.root(), f.origins.url(host));
            INFO(r.output << proxy->log());
            CHECK(r.exit_code == 60);
        }
        auto recs = records_for(*proxy, host, 2);
        REQUIRE(recs.size() == 2);
        for (const auto& rec : recs) {
            CHECK(rec["decision"] == "failed");
            CHECK(rec["reason"] == "client_handshake_failed");
            CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("the client sent alert unknown_ca"));
            CHECK(rec["detail"].get<std::string>().find("learned") == std::string::npos);
        }
    }
    SECTION("on: learned after unknown_ca, then tunnelled with the origin's certificate") {
        auto proxy = f.proxy("learn-on", "[bypass]\nlearn_rejected_seconds = 300\n");
        // A client that trusts the origin but not the interception root: it pins, in effect.
        auto first = curl_via(*proxy, f.origins.root(), f.origins.url(host));
        INFO(first.output << proxy->log());
        CHECK(first.exit_code == 60);
        auto rec = proxy->last_record(host);
        CHECK(rec["decision"] == "failed");
        CHECK(rec["reason"] == "client_handshake_failed");
        CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("the client sent alert unknown_ca"));
        CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("learned for bypass"));
        CHECK_THAT(proxy->log(), ContainsSubstring("\"event\":\"bypass_learned\""));

        const auto logged = proxy->record_count(host);
        auto second = curl_via(*proxy, f.origins.root(), f.origins.url(host));
        INFO(second.output << proxy->log());
        REQUIRE(second.exit_code == 0);
        CHECK(second.status == 200);
        CHECK(second.body == "hello from " + host + "\n");
        rec = proxy->record_after(host, logged);
        CHECK(rec["decision"] == "bypassed");
        CHECK(rec["reason"] == "learned");
        auto m = metrics(*proxy);
        CHECK_THAT(m, ContainsSubstring("proxy_bypassed_total{reason=\"learned\"} 1"));
        CHECK_THAT(m, ContainsSubstring("proxy_bypass_learned_hosts 1"));
        // A client that trusts the interception root is now also tunnelled (and so fails):
        // the bypass is for the host, as configured.
        auto third = curl_via(*proxy, f.interception_root(), f.origins.url(host));
        CHECK(third.exit_code == 60);
        // Other hosts are not affected.
        auto other = curl_via(*proxy, f.interception_root(), f.origins.url("good.test.example"));
        CHECK(other.status == 200);
        CHECK(proxy->last_record("good.test.example")["decision"] == "intercepted");
    }
}

TEST_CASE("client TLS the proxy cannot terminate is refused or tunnelled by the configured rule", "[proxy][bypass][rule]") {
    auto& f = fixture();
    auto dir = work_dir("rule");
    CertSpec spec = valid_for({"old.test.example", "rsaonly.test.example"});
    spec.key = KeyKind::rsa2048;
    write_cert_and_key(f.origins.pki.issue(spec), dir / "cert.pem", dir / "key.pem");
    auto port = free_port();
    // An origin that still speaks TLS 1.0 and RSA key exchange.
    Child server({"openssl", "s_server", "-quiet", "-www", "-accept", std::to_string(port), "-cert",
                  (dir / "cert.pem").string(), "-key", (dir / "key.pem").string(), "-cipher", "ALL:@SECLEVEL=0"},
                 dir / "origin.log");
    wait_for_port(port);
    auto refusing = f.proxy("rule-refuse", "");
    auto tunnelling = f.proxy("rule-tunnel", "[bypass]\nunsupported_tls = \"tunnel\"\n");
    struct Case {
        std::string host, args, refusal_words, detail_words;
    };
    const std::vector<Case> cases = {
        {"old.test.example", "-tls1 -cipher ALL:@SECLEVEL=0", "alert protocol version", "at most TLS 1.0"},
        {"rsaonly.test.example", "-tls1_2 -cipher AES128-SHA:AES256-GCM-SHA384", "handshake failure",
         "no cipher suite in common"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.host);
        const std::string cmd = "echo | openssl s_client " + c.args + " -connect " + c.host + ":" + std::to_string(port) +
                                " -servername " + c.host + " -CAfile " + f.origins.root().string() + " -proxy ";
        auto refused = sh(cmd + connect_arg(*refusing) + " 2>&1");
        INFO(refused.output << refusing->log());
        CHECK(refused.exit_code != 0);
        CHECK_THAT(refused.output, ContainsSubstring(c.refusal_words));
        auto rec = refusing->last_record(c.host);
        CHECK(rec["decision"] == "blocked");
        CHECK(rec["reason"] == "unsupported_client_tls");
        CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring(c.detail_words));

        auto tunnelled = sh(cmd + connect_arg(*tunnelling) + " 2>&1");
        INFO(tunnelled.output << tunnelling->log() << read_file(dir / "origin.log"));
        CHECK(tunnelled.exit_code == 0);
        CHECK_THAT(tunnelled.output, ContainsSubstring("Verify return code: 0 (ok)"));  // the origin's own certificate
        rec = tunnelling->last_record(c.host);
        CHECK(rec["decision"] == "bypassed");
        CHECK(rec["reason"] == "rule");
        CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring(c.detail_words));
    }
    CHECK_THAT(metrics(*refusing), ContainsSubstring("proxy_refusals_total{reason=\"unsupported_client_tls\"} 2"));
    CHECK_THAT(metrics(*tunnelling), ContainsSubstring("proxy_bypassed_total{reason=\"rule\"} 2"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("non-TLS bytes in a tunnel are refused or tunnelled by the configured rule", "[proxy][bypass][rule]") {
    auto& f = fixture();
    // A plain-HTTP server to tunnel to: another proxy-node's management listener.
    auto plain = f.proxy("plain", "");
    const auto plain_port = plain->mgmt_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(plain_port) + "/healthz";
    const std::string ports = "non_tls_ports = [" + std::to_string(plain_port) + "]\n";
    // Plain HTTP in a tunnel is inspected by default (inspection.plain_tunnels); refused here.
    auto refusing_plain = [&](const std::string& sections) {
        auto o = options(sections);
        o.inspection = "plain_tunnels = \"refuse\"\n";
        return o;
    };
    auto refusing = f.proxy("nontls-refuse", refusing_plain("[bypass]\nnon_tls = \"refuse\"\n" + ports));
    auto tunnelling = f.proxy("nontls-tunnel", "[bypass]\nnon_tls = \"tunnel\"\n" + ports);
    auto other_port = f.proxy("nontls-other", refusing_plain("[bypass]\nnon_tls = \"tunnel\"\nnon_tls_ports = [443]\n"));

    // curl -p: CONNECT, then plain HTTP inside the tunnel.
    auto refused = run({"curl", "-sS", "-p", "-x", refusing->proxy_url(), url});
    INFO(refused.output << refusing->log());
    CHECK_THAT(refused.output, ContainsSubstring("not_tls"));  // the proxy's page, not the server's answer
    CHECK(refused.output.find("ca_service") == std::string::npos);
    auto rec = refusing->last_record("127.0.0.1");
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "not_tls");

    auto tunnelled = run({"curl", "-sS", "-p", "-x", tunnelling->proxy_url(), url});
    INFO(tunnelled.output << tunnelling->log());
    CHECK(tunnelled.exit_code == 0);
    CHECK_THAT(tunnelled.output, ContainsSubstring("\"ca_service\""));  // the other node's /healthz
    rec = tunnelling->last_record("127.0.0.1");
    CHECK(rec["decision"] == "bypassed");
    CHECK(rec["reason"] == "rule");
    CHECK_THAT(rec["detail"].get<std::string>(), ContainsSubstring("not TLS"));

    // A port not listed in non_tls_ports is refused whatever the rule.
    auto unlisted = run({"curl", "-sS", "-p", "-x", other_port->proxy_url(), url});
    INFO(unlisted.output);
    CHECK_THAT(unlisted.output, ContainsSubstring("not_tls"));
    CHECK(other_port->last_record("127.0.0.1")["reason"] == "not_tls");
}

TEST_CASE("clients outside access.allowed_clients are refused before anything is read", "[proxy][access]") {
    auto& f = fixture();
    auto o = options("");
    o.access = "allowed_clients = [\"127.0.0.2/32\", \"10.0.0.0/8\"]\n";
    auto proxy = f.proxy("access", o);
    const std::string url = f.origins.url("good.test.example");

    auto refused = curl_via(*proxy, f.interception_root(), url);
    INFO(refused.output << proxy->log());
    CHECK(refused.exit_code != 0);
    CHECK(refused.status == 0);  // no answer at all
    auto recs = proxy->records();
    REQUIRE_FALSE(recs.empty());
    auto rec = recs.back();
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "client_not_allowed");
    CHECK(rec["client"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
    CHECK(rec["host"] == "");  // nothing of the request was read

    auto allowed = curl_via(*proxy, f.interception_root(), url, {"--interface", "127.0.0.2"});
    INFO(allowed.output << proxy->log());
    REQUIRE(allowed.exit_code == 0);
    CHECK(allowed.status == 200);
    rec = proxy->last_record("good.test.example");
    CHECK(rec["decision"] == "intercepted");
    CHECK(rec["client"].get<std::string>().rfind("127.0.0.2:", 0) == 0);
    CHECK_THAT(metrics(*proxy), ContainsSubstring("proxy_refusals_total{reason=\"client_not_allowed\"} 1"));

    // A burst from an unlisted address is counted in full but does not flood the log.
    auto connect_and_close = [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(proxy->port());
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        char byte;
        CHECK(::recv(fd, &byte, 1, 0) <= 0);  // closed unanswered
        ::close(fd);
    };
    for (int i = 0; i < 200; ++i) connect_and_close();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    connect_and_close();  // a new second: logged, after a line for what was left out
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK_THAT(metrics(*proxy), ContainsSubstring("proxy_refusals_total{reason=\"client_not_allowed\"} 202"));
    std::size_t refusal_lines = 0;
    for (const auto& r : proxy->records())
        if (r.value("reason", "") == "client_not_allowed") ++refusal_lines;
    CHECK(refusal_lines >= 21);
    CHECK(refusal_lines <= 2 * 20 + 2);  // at most two one-second windows' worth, plus the last
    CHECK_THAT(read_file(proxy->connection_log()), ContainsSubstring("\"event\":\"refusals_not_logged\""));
}

TEST_CASE("destinations in access.denied_destinations are refused, by name and by address", "[proxy][access]") {
    auto& f = fixture();
    auto o = options("");
    o.denied_destinations.clear();  // the node's default: its own host, link-local, multicast, broadcast
    auto proxy = f.proxy("destinations", o);

    // A name that resolves to loopback (upstream.hosts maps good.test.example to 127.0.0.1):
    // the client gets the block page over the forged certificate; nothing is connected.
    auto by_name = curl_via(*proxy, f.interception_root(), f.origins.url("good.test.example"));
    INFO(by_name.output << proxy->log());
    CHECK(by_name.status == 403);
    CHECK_THAT(by_name.headers, ContainsSubstring("X-Proxy-Error: destination_not_allowed"));
    CHECK_THAT(by_name.body, ContainsSubstring("does not connect to this address"));
    auto rec = proxy->last_record("good.test.example");
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "destination_not_allowed");
    CHECK(rec["detail"] == "good.test.example is at 127.0.0.1 (in 127.0.0.0/8), which access.denied_destinations refuses");
    CHECK(rec["upstream"] == "");

    // Plain HTTP to the node's own management listener, by address (IPv4, IPv6, IPv4-mapped):
    // refused before a connection is made, so the listener never answers.
    const std::string mgmt_port = std::to_string(proxy->mgmt_port());
    for (const std::string host : {"127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"}) {
        CAPTURE(host);
        auto r = run({"curl", "-s", "-i", "--max-time", "10", "-x", proxy->proxy_url(),
                      "http://" + host + ":" + mgmt_port + "/healthz"});
        CHECK(r.output.rfind("HTTP/1.1 403 ", 0) == 0);
        CHECK_THAT(r.output, ContainsSubstring("X-Proxy-Error: destination_not_allowed"));
        CHECK_THAT(r.output, !ContainsSubstring("active_connections"));
    }
    CHECK_THAT(metrics(*proxy), ContainsSubstring("reason=\"destination_not_allowed\""));

    // An operator may lift the default (the rest of this suite reaches its origins on loopback).
    auto lifted = f.proxy("destinations-lifted", options(""));
    CHECK(curl_via(*lifted, f.interception_root(), f.origins.url("good.test.example")).status == 200);
}

TEST_CASE("bad [access] and [bypass] settings stop the node with an error naming the key", "[proxy][bypass][config]") {
    auto& f = fixture();
    auto base_options = options("");
    base_options.denied_destinations.clear();  // no [access] table: the cases below add theirs
    auto base_node = f.proxy("config-base", base_options);
    const std::string base = read_file(base_node->config_file());
    base_node.reset();
    auto dir = work_dir("config");
    std::ofstream(dir / "bad-list.txt") << "ok.example\n*bad.example\n";
    struct Case {
        std::string text, words;
    };
    const std::vector<Case> cases = {
        {"[access]\nallowed_clients = [\"10.0.0.1/8\"]\n",
         "access.allowed_clients: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"},
        {"[access]\nallowed_clients = [\"10.0.0.0/40\"]\n", "access.allowed_clients: '10.0.0.0/40': the prefix length"},
        {"[access]\nallowed_clients = [\"intranet\"]\n", "access.allowed_clients: 'intranet' is not ADDRESS/PREFIX"},
        {"[access]\nallowed_clients = []\n", "access.allowed_clients: is empty"},
        {"[access]\nallowed_clients = \"10.0.0.0/8\"\n", "access.allowed_clients: must be an array of strings"},
        {"[access]\nallowed = [\"10.0.0.0/8\"]\n", "access.allowed: unknown key"},
        {"[access]\ndenied_destinations = [\"169.254.0.1/16\"]\n",
         "access.denied_destinations: '169.254.0.1/16' has host bits set (did you mean 169.254.0.0/16?)"},
        {"[access]\ndenied_destinations = \"127.0.0.0/8\"\n", "access.denied_destinations: must be an array of strings"},
        {"[bypass]\nhosts = [\"a*.example.com\"]\n", "bypass.hosts: 'a*.example.com' is not a host name"},
        {"[bypass]\nhost_lists = [\"/nonexistent/list.txt\"]\n", "bypass.host_lists: '/nonexistent/list.txt' does not exist"},
        {"[bypass]\nhost_lists = [\"" + (dir / "bad-list.txt").string() + "\"]\n",
         "bypass.host_lists: " + (dir / "bad-list.txt").string() + ":2: '*bad.example' is not a host name"},
        {"[bypass]\nclient_certificate = \"allow\"\n", "bypass.client_certificate: must be \"refuse\" or \"tunnel\""},
        {"[bypass]\nunsupported_tls = \"pass\"\n", "bypass.unsupported_tls: must be \"refuse\" or \"tunnel\""},
        {"[bypass]\nnon_tls = true\n", "bypass.non_tls: must be a string"},
        {"[bypass]\nnon_tls_ports = [0]\n", "bypass.non_tls_ports: must be an array of port numbers 1-65535"},
        {"[bypass]\nlearn_rejected_seconds = -1\n", "bypass.learn_rejected_seconds: must be between 0 and"},
        {"[bypass]\nlearned_hosts = 5\n", "bypass.learned_hosts: unknown key"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        const auto file = dir / "proxy-node.toml";
        std::ofstream(file) << base << c.text;
        auto r = run({(kBinDir / "proxy-node").string(), "--config", file.string()}, {}, std::chrono::seconds(20));
        INFO(r.output);
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring(file.string() + ": " + c.words));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("the proxy listens on every configured address; bad listen addresses are named", "[proxy][access][config]") {
    auto& f = fixture();
    auto base_node = f.proxy("listen-base", "");
    const std::string base = read_file(base_node->config_file());
    const std::string proxy_line = "proxy = \"127.0.0.1:" + std::to_string(base_node->port()) + "\"";
    const auto mgmt = base_node->mgmt_url("/healthz");
    base_node.reset();
    REQUIRE(base.find(proxy_line) != std::string::npos);
    auto dir = work_dir("listen");
    auto with_listen = [&](const std::string& value) {
        std::string text = base;
        text.replace(text.find(proxy_line), proxy_line.size(), "proxy = " + value);
        const auto file = dir / "proxy-node.toml";
        std::ofstream(file) << text;
        return file;
    };
    const auto p1 = free_port();
    const auto p2 = free_port();
    const auto file = with_listen("[\"127.0.0.1:" + std::to_string(p1) + "\", \"127.0.0.3:" + std::to_string(p2) + "\"]");
    {
        Child node({(kBinDir / "proxy-node").string(), "--config", file.string()}, dir / "proxy.log");
        for (int i = 0; i < 200 && run({"curl", "-s", "--max-time", "1", mgmt}).exit_code != 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        for (const std::string& listener : {"127.0.0.1:" + std::to_string(p1), "127.0.0.3:" + std::to_string(p2)}) {
            CAPTURE(listener);
            auto r = run({"curl", "-sS", "--max-time", "30", "-x", "http://" + listener, "--cacert",
                          f.interception_root().string(), "--capath", "/nonexistent", f.origins.url("good.test.example")});
            INFO(r.output << read_file(dir / "proxy.log"));
            CHECK(r.exit_code == 0);
            CHECK_THAT(r.output, ContainsSubstring("hello from good.test.example"));
        }
        // Not listening where it was not told to.
        auto elsewhere = run({"curl", "-sS", "--max-time", "5", "-x", "http://127.0.0.3:" + std::to_string(p1),
                              f.origins.url("good.test.example")});
        CHECK(elsewhere.exit_code == 7);  // CURLE_COULDNT_CONNECT
    }
    struct Case {
        std::string value, words;
    };
    for (const auto& c : {Case{"[\"localhost:3128\"]", "listen.proxy: 'localhost' is not an IP address to listen on"},
                          Case{"[]", "listen.proxy: is empty"},
                          Case{"[\"127.0.0.1:1\", \"127.0.0.1:1\"]", "listen.proxy: '127.0.0.1:1' is listed twice"},
                          Case{"[\"127.0.0.1\"]", "listen.proxy: '127.0.0.1' is not HOST:PORT"}}) {
        CAPTURE(c.value);
        auto r = run({(kBinDir / "proxy-node").string(), "--config", with_listen(c.value).string()}, {},
                     std::chrono::seconds(20));
        INFO(r.output);
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring(c.words));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("the proxy-node.toml hsm-setup writes has the access defaults and a working example bypass list",
          "[proxy][bypass][config]") {
    const auto& ca = TestCa::shared();
    const auto text = read_file(ca.dir / "nodes/node-1/proxy-node.toml");
    auto c = proxy::load_node_config(ca.dir / "nodes/node-1/proxy-node.toml");
    CHECK(c.allowed_clients.size() == 6);
    // The written list is the node's default, spelled out for the operator to extend.
    const auto defaults = proxy::access::default_denied_destinations();
    REQUIRE(c.denied_destinations.size() == defaults.size());
    for (std::size_t i = 0; i < defaults.size(); ++i) CHECK(c.denied_destinations[i].text == defaults[i].text);
    CHECK(c.bypass.patterns.empty());  // nothing bypassed by default
    CHECK(c.bypass.learn_rejected.count() == 0);
    CHECK(c.bypass.unsupported_tls == proxy::bypass::Rule::refuse);
    CHECK(c.bypass.non_tls == proxy::bypass::Rule::refuse);
    // Uncommenting the example list is all an operator has to do.
    const std::string commented = "# host_lists = [";
    REQUIRE(text.find(commented) != std::string::npos);
    std::string enabled = text;
    enabled.replace(enabled.find(commented), commented.size(), "host_lists = [");
    auto dir = work_dir("hsm-config");
    std::ofstream(dir / "proxy-node.toml") << enabled;
    auto e = proxy::load_node_config(dir / "proxy-node.toml");
    CHECK(e.bypass.patterns.size() > 10);
    std::filesystem::remove_all(dir);
}
