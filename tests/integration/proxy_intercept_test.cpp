// proxy-node end to end: the real ca-service (SoftHSM) and proxy-node binaries, a local
// HTTPS origin with certificates the test makes, curl and openssl s_client as clients.

#include "proxy_harness.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include "ossl/pem.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/x509v3.h>

#include <atomic>
#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-proxy-" + name); }

// Names the origin answers for, each with the defect its name says.
struct Origins {
    OriginPki pki;
    std::map<std::string, OriginCert> certs;
    std::unique_ptr<OriginServer> server;
    std::map<std::string, std::uint16_t> weak_ports;
    std::vector<std::unique_ptr<Child>> weak_servers;
    std::filesystem::path dir = work_dir("origin");

    Origins() {
        auto ok = [](std::vector<std::string> names) {
            CertSpec s;
            s.dns_names = std::move(names);
            return s;
        };
        certs.emplace("good.test.example", pki.issue(ok({"good.test.example", "www.test.example", "*.cdn.test.example"})));
        certs.emplace("other.test.example", pki.issue(ok({"other.test.example"})));
        certs.emplace("cached.test.example", pki.issue(ok({"cached.test.example"})));
        certs.emplace("new.test.example", pki.issue(ok({"new.test.example"})));
        CertSpec expired = ok({"expired.test.example"});
        expired.not_before_offset = std::chrono::seconds(-10 * 86400);
        expired.not_after_offset = std::chrono::seconds(-86400);
        certs.emplace("expired.test.example", pki.issue(expired));
        CertSpec future = ok({"future.test.example"});
        future.not_before_offset = std::chrono::seconds(2 * 86400);
        certs.emplace("future.test.example", pki.issue(future));
        CertSpec self = ok({"selfsigned.test.example"});
        self.issuer = IssuerKind::self_signed;
        certs.emplace("selfsigned.test.example", pki.issue(self));
        CertSpec unknown = ok({"unknownroot.test.example"});
        unknown.issuer = IssuerKind::unknown_root;
        certs.emplace("unknownroot.test.example", pki.issue(unknown));
        // The host in the subject CN only, no subjectAltName: browsers refuse it, so does the node.
        CertSpec cn_only;
        cn_only.subject_cn = "cnonly.test.example";
        certs.emplace("cnonly.test.example", pki.issue(cn_only));
        // Served for wronghost.test.example, but names another host.
        certs.emplace("wronghost.test.example", pki.issue(ok({"somewhere-else.test.example"})));
        CertSpec sha1 = ok({"sha1.test.example"});
        sha1.digest = "SHA1";
        certs.emplace("sha1.test.example", pki.issue(sha1));
        CertSpec rsa1024 = ok({"rsa1024.test.example"});
        rsa1024.key = KeyKind::rsa1024;
        certs.emplace("rsa1024.test.example", pki.issue(rsa1024));
        CertSpec ip;
        ip.ip_addresses = {"127.0.0.1"};
        certs.emplace("127.0.0.1", pki.issue(ip));
        std::map<std::string, const OriginCert*> by_name;
        for (const auto& [k, v] : certs) by_name[k] = &v;
        by_name["www.test.example"] = by_name["img.cdn.test.example"] = &certs.at("good.test.example");
        server = std::make_unique<OriginServer>(certs.at("127.0.0.1"), by_name, OriginOptions{2, "", false});
        // openssl s_server presents these over TLS 1.2 (a TLS 1.3 server would refuse to use a
        // certificate signed with an algorithm the client does not offer).
        for (const char* weak : {"sha1.test.example", "rsa1024.test.example"}) {
            write_cert_and_key(certs.at(weak), dir / (std::string(weak) + ".pem"), dir / (std::string(weak) + ".key"));
            auto port = free_port();
            weak_ports[weak] = port;
            weak_servers.push_back(std::make_unique<Child>(
                std::vector<std::string>{"openssl", "s_server", "-quiet", "-www", "-tls1_2", "-cipher", "ALL:@SECLEVEL=0",
                                         "-accept", std::to_string(port), "-cert", (dir / (std::string(weak) + ".pem")).string(),
                                         "-key", (dir / (std::string(weak) + ".key")).string()},
                dir / (std::string(weak) + ".log")));
        }
        for (const auto& [name, port] : weak_ports)
            if (!wait_for_listener(port)) throw std::runtime_error(std::string("openssl s_server for ") + name + " did not start");
        pki.write_root(dir / "origin-root.pem");
    }
    std::string url(const std::string& host, const std::string& path = "/") const {
        auto weak = weak_ports.find(host);
        return "https://" + host + ":" + std::to_string(weak != weak_ports.end() ? weak->second : server->port()) + path;
    }
};

ProxyOptions resolving(const std::vector<std::string>& names, ProxyOptions o = {}) {
    for (const auto& n : names) o.hosts[n] = "127.0.0.1";
    return o;
}

const std::vector<std::string> kTestNames = {
    "good.test.example", "www.test.example", "img.cdn.test.example", "other.test.example", "cached.test.example",
    "new.test.example", "expired.test.example", "future.test.example", "selfsigned.test.example",
    "unknownroot.test.example", "wronghost.test.example", "cnonly.test.example", "sha1.test.example", "rsa1024.test.example",
    "tls10.test.example", "cbc.test.example", "h2.test.example", "revoked.test.example", "stapled.test.example"};

// One CA service, origin and proxy shared by the tests that do not stop any of them.
struct Shared {
    const TestCa& ca = TestCa::shared();
    Origins origins;
    CaService service{ca, work_dir("ca")};
    ProxyNode proxy{ca, service.port(), work_dir("node"), origins.dir / "origin-root.pem",
                    resolving(kTestNames, [] {
                        ProxyOptions o;
                        o.limits = "client_hello_timeout_ms = 1500\n";
                        return o;
                    }())};
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
};

Shared& shared() {
    static Shared s;
    return s;
}

std::string sha256_file(const std::filesystem::path& f) {
    auto r = run({"sha256sum", f.string()});
    return r.output.substr(0, 64);
}

}  // namespace

TEST_CASE("curl through the proxy, trusting only root-ca.pem, gets the page", "[proxy][intercept]") {
    auto& s = shared();
    auto r = curl_via(s.proxy, s.root(), s.origins.url("good.test.example"));
    INFO(r.output << s.proxy.log());
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 200);
    CHECK(r.body == "hello from good.test.example\n");
    auto rec = s.proxy.last_record("good.test.example");
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK(rec["reason"] == "none");
    CHECK(rec["client_tls"]["version"] == "TLSv1.3");
    CHECK(rec["upstream_tls"]["version"] == "TLSv1.3");
    CHECK(rec["upstream_cert_sha256"].get<std::string>() ==
          ossl::fingerprint_sha256(*s.origins.certs.at("good.test.example").cert));
    CHECK(rec["upstream"] == "127.0.0.1:" + std::to_string(s.origins.server->port()));
    CHECK(rec["bytes_upstream_to_client"].get<std::uint64_t>() > 0);
    CHECK(rec["client"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
    // No payload in the log, ever.
    CHECK(read_file(s.proxy.connection_log()).find("hello from") == std::string::npos);

    SECTION("a repeat connection resumes the verified upstream session, as a browser would") {
        auto repeat = curl_via(s.proxy, s.root(), s.origins.url("good.test.example"));
        INFO(repeat.output << s.proxy.log());
        CHECK(repeat.status == 200);
        auto again = s.proxy.last_record("good.test.example");
        CHECK(again["upstream_tls"]["resumed"] == true);
        CHECK(again["client_tls"]["resumed"] == false);  // curl keeps no ticket between runs
        // TLS 1.3 suites in browser order on both sides, whatever order the client offered.
        CHECK(again["upstream_tls"]["cipher"] == "TLS_AES_128_GCM_SHA256");
        CHECK(again["client_tls"]["cipher"] == "TLS_AES_128_GCM_SHA256");
    }

    SECTION("a second name on the upstream certificate is served from the same leaf") {
        auto again = curl_via(s.proxy, s.root(), s.origins.url("www.test.example"));
        INFO(again.output);
        CHECK(again.status == 200);
        CHECK(s.proxy.last_record("www.test.example")["leaf"] == "cache");
        // and a wildcard on it covers one label
        auto wild = curl_via(s.proxy, s.root(), s.origins.url("img.cdn.test.example"));
        INFO(wild.output << s.proxy.log());
        CHECK(wild.status == 200);
        CHECK(s.proxy.last_record("img.cdn.test.example")["leaf"] == "cache");
    }
}

TEST_CASE("the forged certificate chains to the root, names the host and obeys the leaf profile", "[proxy][intercept]") {
    auto& s = shared();
    auto tmp = work_dir("sclient");
    const std::string port = std::to_string(s.origins.server->port());
    auto r = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(s.proxy.port()) +
                " -connect other.test.example:" + port + " -servername other.test.example -CAfile " +
                s.root().string() + " -verify_return_error -verify_hostname other.test.example -showcerts 2>&1");
    INFO(r.output << s.proxy.log());
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, ContainsSubstring("Verify return code: 0 (ok)"));
    // Leaf first, then the issuing CA; the root is not sent.
    std::vector<std::string> pems;
    for (std::size_t p = 0; (p = r.output.find("-----BEGIN CERTIFICATE-----", p)) != std::string::npos;) {
        auto e = r.output.find("-----END CERTIFICATE-----", p);
        pems.push_back(r.output.substr(p, e + 25 - p) + "\n");
        p = e;
    }
    REQUIRE(pems.size() == 2);
    auto leaf = ossl::certificate_from_pem(pems[0]);
    X509* c = leaf.get();
    CHECK(X509_check_host(c, "other.test.example", 0, 0, nullptr) == 1);
    // The subject names the node that obtained it (OU), then the host (CN).
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(c), subject, sizeof subject);
    CHECK(std::string(subject) == "/OU=node-1/CN=other.test.example");
    CHECK(X509_check_ca(c) == 0);
    CHECK(X509_get_key_usage(c) == KU_DIGITAL_SIGNATURE);
    CHECK(X509_get_extended_key_usage(c) == XKU_SSL_SERVER);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c));
    CHECK(days * 86400 + secs <= 86400 + 300);
    EVP_PKEY* key = X509_get0_pubkey(c);
    CHECK(EVP_PKEY_is_a(key, "EC") == 1);
    CHECK(EVP_PKEY_get_bits(key) == 256);
    std::ofstream(tmp / "leaf.pem") << pems[0];
    std::ofstream(tmp / "issuing.pem") << pems[1];
    auto v = run({"openssl", "verify", "-CAfile", s.root().string(), "-untrusted", (tmp / "issuing.pem").string(),
                  "-purpose", "sslserver", (tmp / "leaf.pem").string()});
    INFO(v.output);
    CHECK(v.exit_code == 0);
    std::filesystem::remove_all(tmp);
}

TEST_CASE("1 MB and 100 MB bodies arrive byte-identical in both directions", "[proxy][intercept][bulk]") {
    auto& s = shared();
    auto tmp = work_dir("bulk");
    for (std::uint64_t size : {std::uint64_t{1} << 20, std::uint64_t{100} << 20}) {
        CAPTURE(size);
        write_origin_pattern(tmp / "expected", size);
        auto out = tmp / "download";
        auto r = run({"curl", "-sS", "--max-time", "120", "-x", s.proxy.proxy_url(), "--cacert", s.root().string(),
                      "-o", out.string(), s.origins.url("good.test.example", "/bytes/" + std::to_string(size))});
        INFO(r.output << s.proxy.log());
        REQUIRE(r.exit_code == 0);
        CHECK(std::filesystem::file_size(out) == size);
        CHECK(sha256_file(out) == sha256_file(tmp / "expected"));
        auto up = run({"curl", "-sS", "--max-time", "120", "-x", s.proxy.proxy_url(), "--cacert", s.root().string(),
                       "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + (tmp / "expected").string(),
                       s.origins.url("good.test.example", "/upload")});
        INFO(up.output);
        REQUIRE(up.exit_code == 0);
        CHECK_THAT(up.output, ContainsSubstring("sha256=" + sha256_file(tmp / "expected") +
                                                " bytes=" + std::to_string(size)));
    }
    std::filesystem::remove_all(tmp);
}

TEST_CASE("every bad upstream is refused with the right reason, over the forged certificate", "[proxy][upstream]") {
    auto& s = shared();
    struct Case {
        std::string host, reason, words;
    };
    const std::vector<Case> cases = {
        {"expired.test.example", "expired", "expired"},
        {"future.test.example", "not_yet_valid", "not valid yet"},
        {"selfsigned.test.example", "self_signed", "self-signed"},
        {"unknownroot.test.example", "unknown_issuer", "unknown"},
        {"wronghost.test.example", "hostname_mismatch", "wrong host"},
        {"cnonly.test.example", "hostname_mismatch", "wrong host"},
        {"sha1.test.example", "weak_signature", "SHA-1"},
        {"rsa1024.test.example", "weak_key", "too weak"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.host);
        auto r = curl_via(s.proxy, s.root(), s.origins.url(c.host));
        INFO(r.output << r.headers);
        // The client's TLS to the proxy succeeded (curl verified the forged leaf against the
        // root only); the answer is the proxy's error page, not upstream content.
        REQUIRE(r.exit_code == 0);
        CHECK(r.status == 502);
        CHECK(header_value(r.headers, "x-proxy-error") == c.reason);
        CHECK_THAT(r.body, ContainsSubstring(c.words));
        CHECK_THAT(r.body, ContainsSubstring(c.host));
        CHECK(r.body.find("hello from") == std::string::npos);
        auto rec = s.proxy.last_record(c.host);
        CHECK(rec["decision"] == "blocked");
        CHECK(rec["reason"] == c.reason);
        CHECK(rec["bytes_upstream_to_client"] == 0);
        CHECK_FALSE(rec["upstream_cert_sha256"].get<std::string>().empty());
    }
}

TEST_CASE("servers offering only TLS 1.0 or only 3DES/CBC suites are refused", "[proxy][upstream]") {
    auto& s = shared();
    auto dir = work_dir("weak-tls");
    CertSpec spec;
    spec.dns_names = {"tls10.test.example", "cbc.test.example"};
    spec.key = KeyKind::rsa2048;
    write_cert_and_key(s.origins.pki.issue(spec), dir / "cert.pem", dir / "key.pem");
    struct Case {
        std::string host;
        std::vector<std::string> args;
        std::string reason;
    };
    const std::vector<Case> cases = {
        {"tls10.test.example", {"-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"}, "protocol_version"},
        {"cbc.test.example", {"-no_tls1_3", "-cipher", "DES-CBC3-SHA:AES128-SHA:AES256-SHA256:ECDHE-RSA-AES128-SHA:@SECLEVEL=0"}, "insecure_cipher"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.host);
        auto port = free_port();
        std::vector<std::string> argv = {"openssl", "s_server", "-quiet", "-www", "-accept", std::to_string(port),
                                         "-cert", (dir / "cert.pem").string(), "-key", (dir / "key.pem").string()};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        Child server(argv, dir / (c.host + ".log"));
        REQUIRE(wait_for_listener(port));
        auto r = curl_via(s.proxy, s.root(), "https://" + c.host + ":" + std::to_string(port) + "/");
        INFO(r.output << r.headers << read_file(dir / (c.host + ".log")));
        REQUIRE(r.exit_code == 0);
        CHECK(r.status == 502);
        CHECK(header_value(r.headers, "x-proxy-error") == c.reason);
        CHECK(s.proxy.last_record(c.host)["reason"] == c.reason);
    }
}

TEST_CASE("a stapled OCSP response that says revoked is refused; one that says good passes", "[proxy][upstream][ocsp]") {
    auto& s = shared();
    auto dir = work_dir("ocsp");
    write_cert_and_key(s.origins.pki.root_identity(), dir / "root.pem", dir / "root.key");
    struct Case {
        std::string host;
        char status;  // OpenSSL CA index status: R revoked, V valid
    };
    for (const Case& c : {Case{"revoked.test.example", 'R'}, Case{"stapled.test.example", 'V'}}) {
        CAPTURE(c.host);
        const auto cert = dir / (c.host + ".pem");
        const auto key = dir / (c.host + ".key");
        write_cert_and_key(s.origins.pki.issue(valid_for({c.host})), cert, key);
        auto serial = run({"openssl", "x509", "-in", cert.string(), "-noout", "-serial"});
        REQUIRE(serial.exit_code == 0);
        const std::string hex = serial.output.substr(serial.output.find('=') + 1, serial.output.find('\n') - serial.output.find('=') - 1);
        std::ofstream(dir / (c.host + ".index"))
            << c.status << "\t491231235959Z\t" << (c.status == 'R' ? "261101000000Z" : "") << "\t" << hex
            << "\tunknown\t/CN=" << c.host << "\n";
        // The origin root answers for its own leaf; s_server staples the response.
        auto req = run({"openssl", "ocsp", "-issuer", (dir / "root.pem").string(), "-cert", cert.string(), "-no_nonce",
                        "-reqout", (dir / (c.host + ".req")).string()});
        REQUIRE(req.exit_code == 0);
        auto resp = run({"openssl", "ocsp", "-index", (dir / (c.host + ".index")).string(), "-rsigner",
                         (dir / "root.pem").string(), "-rkey", (dir / "root.key").string(), "-CA",
                         (dir / "root.pem").string(), "-reqin", (dir / (c.host + ".req")).string(), "-respout",
                         (dir / (c.host + ".resp")).string(), "-ndays", "1"});
        INFO(resp.output);
        REQUIRE(resp.exit_code == 0);
        auto port = free_port();
        Child server({"openssl", "s_server", "-quiet", "-www", "-accept", std::to_string(port), "-cert", cert.string(),
                      "-key", key.string(), "-status_file", (dir / (c.host + ".resp")).string()},
                     dir / (c.host + ".log"));
        REQUIRE(wait_for_listener(port));
        auto r = curl_via(s.proxy, s.root(), "https://" + c.host + ":" + std::to_string(port) + "/");
        INFO(r.output << r.headers << read_file(dir / (c.host + ".log")));
        REQUIRE(r.exit_code == 0);
        if (c.status == 'R') {
            CHECK(r.status == 502);
            CHECK(header_value(r.headers, "x-proxy-error") == "revoked");
            CHECK(s.proxy.last_record(c.host)["reason"] == "revoked");
            CHECK(s.proxy.last_record(c.host)["bytes_upstream_to_client"] == 0);
        } else {
            CHECK(r.status == 200);
            CHECK(s.proxy.last_record(c.host)["decision"] == "intercepted");
        }
    }
}

TEST_CASE("ALPN: the client is told exactly what the upstream selected", "[proxy][alpn]") {
    auto& s = shared();
    // The shared origin selects no protocol: a client offering h2 must not be told h2.
    auto r = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(s.proxy.port()) +
                " -connect good.test.example:" + std::to_string(s.origins.server->port()) +
                " -servername good.test.example -alpn h2,http/1.1 -CAfile " + s.root().string() + " 2>&1");
    INFO(r.output);
    CHECK_THAT(r.output, ContainsSubstring("No ALPN negotiated"));
    // With inspection off (it reads HTTP/1.1 only; see proxy_inspect_test for it on), an
    // origin that selects h2 gets h2 passed through (the relay is protocol-agnostic).
    ProxyNode plain(s.ca, s.service.port(), work_dir("node-no-inspection"), s.origins.dir / "origin-root.pem",
                    resolving(kTestNames, [] {
                        ProxyOptions o;
                        o.inspection = "enabled = false\n";
                        return o;
                    }()));
    OriginServer h2(s.origins.certs.at("good.test.example"), {}, OriginOptions{1, "h2", false});
    auto r2 = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(plain.port()) +
                 " -connect good.test.example:" + std::to_string(h2.port()) +
                 " -servername good.test.example -alpn h2,http/1.1 -CAfile " + s.root().string() + " 2>&1");
    INFO(r2.output);
    CHECK_THAT(r2.output, ContainsSubstring("ALPN protocol: h2"));
    // and a client that offered only http/1.1 is never given h2
    auto r3 = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(plain.port()) +
                 " -connect good.test.example:" + std::to_string(h2.port()) +
                 " -servername good.test.example -alpn http/1.1 -CAfile " + s.root().string() + " 2>&1");
    INFO(r3.output);
    CHECK_THAT(r3.output, ContainsSubstring("No ALPN negotiated"));
}

TEST_CASE("upstream sessions resume: a TLS 1.2 session while valid, a TLS 1.3 ticket once", "[proxy][upstream][resumption]") {
    auto& s = shared();
    for (const bool tls12 : {true, false}) {
        CAPTURE(tls12);
        OriginServer origin(s.origins.certs.at("cached.test.example"), {}, OriginOptions{1, "", tls12});
        auto metrics = [&] { return run({"curl", "-s", s.proxy.mgmt_url("/metrics")}).output; };
        auto count = [](const std::string& m, const std::string& resumed) {
            const std::string key = "proxy_upstream_tls_handshakes_total{resumed=\"" + resumed + "\"} ";
            auto p = m.find(key);
            return p == std::string::npos ? -1L : std::stol(m.substr(p + key.size()));
        };
        const auto before = metrics();
        constexpr int kConnections = 20;
        for (int i = 0; i < kConnections; ++i) {
            auto r = curl_via(s.proxy, s.root(), "https://cached.test.example:" + std::to_string(origin.port()) + "/");
            REQUIRE(r.status == 200);
        }
        s.proxy.settle();
        const auto after = metrics();
        const long resumed = count(after, "true") - count(before, "true");
        const long full = count(after, "false") - count(before, "false");
        INFO("resumed " << resumed << ", full " << full);
        CHECK(resumed + full == kConnections);
        CHECK(full <= 1);  // only the first: every later connection resumes (>= 95%)
        auto rec = s.proxy.last_record("cached.test.example");
        CHECK(rec["upstream_tls"]["version"] == (tls12 ? "TLSv1.2" : "TLSv1.3"));
        CHECK(rec["upstream_tls"]["resumed"] == true);
    }
}

TEST_CASE("an unreachable upstream gives an error page, not a silent failure", "[proxy][upstream]") {
    auto& s = shared();
    auto r = curl_via(s.proxy, s.root(), "https://good.test.example:" + std::to_string(free_port()) + "/");
    INFO(r.output << r.headers);
    REQUIRE(r.exit_code == 0);
    CHECK(r.status == 502);
    CHECK(header_value(r.headers, "x-proxy-error") == "connect_failed");
}

TEST_CASE("metrics and health on the management listener", "[proxy][mgmt]") {
    auto& s = shared();
    curl_via(s.proxy, s.root(), s.origins.url("good.test.example"));
    auto h = run({"curl", "-sS", s.proxy.mgmt_url("/healthz")});
    INFO(h.output);
    auto j = Json::parse(h.output);
    CHECK(j["status"] == "ok");
    CHECK(j["ca_service"] == "available");
    auto m = run({"curl", "-sS", s.proxy.mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_connections_total{decision=\"intercepted\"}"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_leaf_issued_total"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_ca_service_available 1"));
    // The proxy listener does not serve management paths.
    auto p = run({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", s.proxy.proxy_url() + "/metrics"});
    CHECK(p.output == "405");
}
