// hsm-setup, the real script, against SoftHSM in temporary directories.

#include "ossl/pem.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;

namespace {

const std::map<std::string, std::string> kToolEnv = {{"HSM_TOOL", (kBinDir / "hsm-tool").string()}};

RunResult setup(const std::vector<std::string>& args, std::map<std::string, std::string> env = kToolEnv) {
    return run(hsm_setup_command(args), env);
}

RunResult verify(const std::filesystem::path& ca_file, const std::filesystem::path& cert) {
    return run({"openssl", "verify", "-CAfile", ca_file.string(), cert.string()});
}

// A node identity: the node-identity CA is the intermediate, the service CA the anchor.
RunResult verify_node(const TestCa& ca, const std::filesystem::path& cert, const std::string& purpose = "sslclient") {
    return run({"openssl", "verify", "-CAfile", (ca.dir / "pki/service-ca.pem").string(), "-untrusted",
                (ca.dir / "pki/node-identity-ca.pem").string(), "-purpose", purpose, cert.string()});
}

long lifetime_seconds(const std::filesystem::path& cert_file) {
    auto cert = ossl::load_certificate(cert_file);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get()));
    return days * 86400L + secs;
}

}  // namespace

TEST_CASE("hsm-setup init builds a complete CA", "[hsm-setup]") {
    auto ca = TestCa::create({"--nodes", "2", "--ca-listen", "127.0.0.1:18443", "--proxy-listen", "127.0.0.1:13128"});
    for (const char* f : {"pki/root-ca.pem", "pki/issuing-ca.pem", "pki/audit.pem", "pki/service-ca.pem",
                          "ca-service/ca-service.toml", "nodes/node-1/proxy-node.toml", "nodes/node-2/proxy-node.toml",
                          "nodes/node-2/node.pem", "admin/admin.pem"})
        CHECK(std::filesystem::exists(ca.dir / f));
    CHECK_THAT(read_file(ca.dir / "nodes/node-2/proxy-node.toml"), ContainsSubstring("127.0.0.1:13129"));
    CHECK_THAT(read_file(ca.dir / "ca-service/ca-service.toml"), ContainsSubstring("127.0.0.1:18443"));

    // PIN files are owner-only
    for (const char* f : {"secrets/root-token.pin", "ca-service/issuing-token.pin"})
        CHECK((std::filesystem::status(ca.dir / f).permissions() & std::filesystem::perms(077)) ==
              std::filesystem::perms::none);
    // the ca-service config does not reference the root token's PIN
    CHECK_THAT(read_file(ca.dir / "ca-service/ca-service.toml"), !ContainsSubstring("root-token.pin"));

    // two separate PKIs: neither authenticates under the other
    CHECK(verify_node(ca, ca.dir / "nodes/node-1/node.pem").exit_code == 0);
    CHECK(verify(ca.dir / "pki/root-ca.pem", ca.dir / "nodes/node-1/node.pem").exit_code != 0);
    // A node identity authenticates a client and nothing else: no server accepts it, and
    // the node-identity CA cannot certify a TLS server either.
    CHECK(verify_node(ca, ca.dir / "nodes/node-1/node.pem", "sslserver").exit_code != 0);
    CHECK(verify(ca.dir / "pki/service-ca.pem", ca.dir / "pki/node-identity-ca.pem").exit_code == 0);
    // 24 hours by default (plus the 5 minutes of backdating), the key owner-only.
    CHECK(lifetime_seconds(ca.dir / "nodes/node-1/node.pem") == 24 * 3600 + 300);
    CHECK((std::filesystem::status(ca.dir / "nodes/node-1/node.key").permissions() & std::filesystem::perms(077)) ==
          std::filesystem::perms::none);
    CHECK_THAT(read_file(ca.dir / "ca-service/ca-service.toml"), ContainsSubstring("[node_identity]"));
    CHECK(verify(ca.dir / "pki/service-ca.pem", ca.dir / "pki/issuing-ca.pem").exit_code != 0);
    CHECK(verify(ca.dir / "pki/service-ca.pem", ca.dir / "ca-service/tls.pem").exit_code == 0);
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("hsm-setup prints the root fingerprint and client instructions", "[hsm-setup]") {
    auto dir = make_temp_dir("splitca-fp");
    auto r = setup({"init", "--out", dir.string()});
    REQUIRE(r.exit_code == 0);
    auto root = ossl::load_certificate(dir / "pki/root-ca.pem");
    std::string fp = ossl::fingerprint_sha256(*root);
    std::string colon;
    for (std::size_t i = 0; i < fp.size(); i += 2) colon += (i ? ":" : "") + fp.substr(i, 2);
    std::transform(colon.begin(), colon.end(), colon.begin(), ::toupper);
    CHECK_THAT(r.output, ContainsSubstring(colon));
    for (const char* how : {"update-ca-certificates", "Firefox", "certutil", "security add-trusted-cert"})
        CHECK_THAT(r.output, ContainsSubstring(how));
    std::filesystem::remove_all(dir);
}

TEST_CASE("hsm-setup refuses to overwrite a CA unless forced", "[hsm-setup]") {
    auto dir = make_temp_dir("splitca-overwrite");
    REQUIRE(setup({"init", "--out", dir.string()}).exit_code == 0);
    const std::string before = read_file(dir / "pki/root-ca.pem");
    auto again = setup({"init", "--out", dir.string()});
    CHECK(again.exit_code != 0);
    CHECK_THAT(again.output, ContainsSubstring("already holds a CA; refusing to overwrite"));
    CHECK(read_file(dir / "pki/root-ca.pem") == before);
    auto forced = setup({"init", "--out", dir.string(), "--force"});
    INFO(forced.output);
    CHECK(forced.exit_code == 0);
    CHECK(read_file(dir / "pki/root-ca.pem") != before);
    std::filesystem::remove_all(dir);
}

TEST_CASE("hsm-setup reports what is missing or wrong", "[hsm-setup][errors]") {
    auto dir = make_temp_dir("splitca-errors");
    SECTION("module that does not exist") {
        auto r = setup({"init", "--out", dir.string(), "--module", "/nonexistent/module.so"});
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("PKCS#11 module /nonexistent/module.so does not exist"));
    }
    SECTION("a file that is not a PKCS#11 module, and nothing partial left behind") {
        auto r = setup({"init", "--out", dir.string(), "--module", "/usr/lib/x86_64-linux-gnu/libc.so.6"});
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("is not a PKCS#11 module"));
        CHECK_FALSE(std::filesystem::exists(dir / "secrets"));
        CHECK(setup({"init", "--out", dir.string()}).exit_code == 0);
    }
    SECTION("hsm-tool missing") {
        auto r = setup({"init", "--out", dir.string()}, {{"HSM_TOOL", "/nonexistent/hsm-tool"}});
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("HSM_TOOL=/nonexistent/hsm-tool is not an executable"));
    }
    SECTION("openssl missing") {
        auto bin = make_temp_dir("splitca-path");
        for (const char* t : {"bash", "dirname", "mkdir", "chmod", "rm", "cat", "date", "cut", "tr", "mktemp", "cp",
                              "mv", "sed", "env"})
            std::filesystem::create_symlink(run({"bash", "-c", std::string("command -v ") + t}).output.substr(
                                                0, run({"bash", "-c", std::string("command -v ") + t}).output.find('\n')),
                                            bin / t);
        auto env = kToolEnv;
        env["PATH"] = bin.string();
        auto r = setup({"init", "--out", dir.string()}, env);
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("'openssl' is not installed"));
        std::filesystem::remove_all(bin);
    }
    SECTION("PINs are refused on the command line") {
        auto r = setup({"init", "--out", dir.string(), "--pin", "1234"});
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("PINs are generated into files"));
        auto t = run({(kBinDir / "hsm-tool").string(), "keygen", "--pin", "1234"});
        CHECK(t.exit_code == 2);
        CHECK_THAT(t.output, ContainsSubstring("use --pin-file"));
    }
    SECTION("bad option values") {
        CHECK_THAT(setup({"init", "--out", dir.string(), "--nodes", "0"}).output, ContainsSubstring("--nodes must be"));
        CHECK_THAT(setup({"init", "--out", dir.string(), "--algorithm", "dsa"}).output,
                   ContainsSubstring("--algorithm must be"));
        CHECK_THAT(setup({"init", "--out", dir.string(), "--ca-listen", "nohost"}).output,
                   ContainsSubstring("is not HOST:PORT"));
        CHECK_THAT(setup({"init", "--out", dir.string(), "--upstream-ca", "/etc/hostname"}).output,
                   ContainsSubstring("holds no PEM certificate"));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("hsm-setup supports P-384 and RSA-3072 CA keys", "[hsm-setup][algorithms]") {
    for (const char* alg : {"ec-p384", "rsa-3072"}) {
        INFO(alg);
        auto ca = TestCa::create({"--algorithm", alg});
        CHECK(verify(ca.dir / "pki/root-ca.pem", ca.dir / "pki/issuing-ca.pem").exit_code == 0);
        auto text = run({"openssl", "x509", "-in", (ca.dir / "pki/issuing-ca.pem").string(), "-noout", "-text"});
        CHECK_THAT(text.output, ContainsSubstring(std::string(alg) == "rsa-3072" ? "Public-Key: (3072 bit)"
                                                                                  : "Public-Key: (384 bit)"));
        std::filesystem::remove_all(ca.dir);
    }
}

TEST_CASE("hsm-setup add-node and rotate-issuing", "[hsm-setup]") {
    auto ca = TestCa::create();
    auto r = setup({"add-node", "edge-7", "--out", ca.dir.string()});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(verify_node(ca, ca.dir / "nodes/edge-7/node.pem").exit_code == 0);
    CHECK(ossl::common_name(*ossl::load_certificate(ca.dir / "nodes/edge-7/node.pem")) == "edge-7");
    CHECK_THAT(read_file(ca.dir / "nodes/edge-7/proxy-node.toml"), ContainsSubstring("127.0.0.1:3129"));
    CHECK(setup({"add-node", "edge-7", "--out", ca.dir.string()}).exit_code != 0);
    CHECK_THAT(setup({"add-node", "Bad_Name", "--out", ca.dir.string()}).output, ContainsSubstring("node name"));

    const std::string old_issuing = read_file(ca.dir / "pki/issuing-ca.pem");
    const std::string old_toml = read_file(ca.dir / "ca-service/ca-service.toml");
    auto rot = setup({"rotate-issuing", "--out", ca.dir.string()});
    INFO(rot.output);
    REQUIRE(rot.exit_code == 0);
    CHECK(read_file(ca.dir / "pki/issuing-ca.pem") != old_issuing);
    CHECK(read_file(ca.dir / "pki/issuing-ca.previous.pem") == old_issuing);
    CHECK(read_file(ca.dir / "ca-service/ca-service.toml") != old_toml);
    CHECK(verify(ca.dir / "pki/root-ca.pem", ca.dir / "pki/issuing-ca.pem").exit_code == 0);

    // a wrong root PIN is reported as such
    {
        std::ofstream(ca.dir / "secrets/root-token.pin", std::ios::trunc) << "00000000";
    }
    auto bad = setup({"rotate-issuing", "--out", ca.dir.string()});
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.output, ContainsSubstring("token 'splitca-root' rejected the PIN"));
    CHECK_THAT(bad.output, !ContainsSubstring("00000000"));
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("hsm-setup renew-node gives a node a new key and identity; --node-hours sets the lifetime",
          "[hsm-setup][identity]") {
    auto ca = TestCa::create({"--node-hours", "2"});
    const auto node = ca.dir / "nodes/node-1";
    CHECK(lifetime_seconds(node / "node.pem") == 2 * 3600 + 300);
    const std::string old_key = read_file(node / "node.key");
    const std::string old_fp = ossl::fingerprint_sha256(*ossl::load_certificate(node / "node.pem"));

    auto r = setup({"renew-node", "node-1", "--out", ca.dir.string()});
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, ContainsSubstring("restart the node"));
    CHECK(read_file(node / "node.key") != old_key);
    CHECK(ossl::fingerprint_sha256(*ossl::load_certificate(node / "node.pem")) != old_fp);
    CHECK(verify_node(ca, node / "node.pem").exit_code == 0);
    CHECK(lifetime_seconds(node / "node.pem") == 2 * 3600 + 300);
    // the new certificate is for the new key
    CHECK(run({"bash", "-c", "cmp -s <(openssl pkey -in '" + (node / "node.key").string() +
                                 "' -pubout) <(openssl x509 -in '" + (node / "node.pem").string() + "' -noout -pubkey)"})
              .exit_code == 0);
    CHECK((std::filesystem::status(node / "node.key").permissions() & std::filesystem::perms(077)) ==
          std::filesystem::perms::none);
    CHECK(!std::filesystem::exists(node / "node.key.new"));

    auto unknown = setup({"renew-node", "node-9", "--out", ca.dir.string()});
    CHECK(unknown.exit_code != 0);
    CHECK_THAT(unknown.output, ContainsSubstring("no node 'node-9'"));
    CHECK(setup({"init", "--out", (ca.dir / "x").string(), "--node-hours", "0"}).exit_code != 0);
    std::filesystem::remove_all(ca.dir);
}
