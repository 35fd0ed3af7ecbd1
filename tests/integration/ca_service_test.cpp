// The ca-service binary against a SoftHSM CA made by hsm-setup, driven by curl and
// openssl s_client over real mTLS on loopback.

#include "ossl/pem.hpp"
#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>
#include <set>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {


HttpReply post_leaf(const TestCa& ca, const CaService& svc, const Identity& id, const std::string& body) {
    return curl_request(ca, svc.url("/v1/leaf"), id.cert, id.key, "POST", body);
}

std::string error_code(const HttpReply& r) {
    auto j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("error")) return "(no error body: " + r.body + ")";
    return j["error"]["code"];
}

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-" + name); }

struct LeafCheck {
    ossl::X509Ptr cert;
    std::vector<std::string> dns;
};

LeafCheck parse_leaf(const std::string& pem) {
    LeafCheck out{ossl::certificate_from_pem(pem), {}};
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(out.cert.get(), NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS)
            out.dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                                 static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
    return out;
}

}  // namespace

TEST_CASE("a node gets a leaf that chains to the root and obeys the profile", "[ca-service][invariant3]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("happy"));
    auto reply = post_leaf(ca, svc, node_identity(ca),
                           leaf_request_json({"example.com", "www.example.com"}, new_public_key_b64(), 3600));
    INFO(reply.body << svc.log());
    REQUIRE(reply.status == 200);
    auto j = Json::parse(reply.body);
    auto tmp = work_dir("happy-files");
    std::ofstream(tmp / "leaf.pem") << j["certificate"].get<std::string>();
    std::ofstream(tmp / "chain.pem") << j["chain"][0].get<std::string>();
    auto v = run({"openssl", "verify", "-CAfile", (ca.dir / "pki/root-ca.pem").string(), "-untrusted",
                  (tmp / "chain.pem").string(), "-purpose", "sslserver", (tmp / "leaf.pem").string()});
    INFO(v.output);
    CHECK(v.exit_code == 0);
    // not valid without the issuing CA, and not under the service PKI
    CHECK(run({"openssl", "verify", "-CAfile", (ca.dir / "pki/root-ca.pem").string(), (tmp / "leaf.pem").string()})
              .exit_code != 0);
    CHECK(run({"openssl", "verify", "-CAfile", (ca.dir / "pki/service-ca.pem").string(), "-untrusted",
               (tmp / "chain.pem").string(), (tmp / "leaf.pem").string()})
              .exit_code != 0);

    auto leaf = parse_leaf(j["certificate"]);
    X509* c = leaf.cert.get();
    CHECK(leaf.dns == std::vector<std::string>{"example.com", "www.example.com"});
    CHECK(X509_check_host(c, "www.example.com", 0, 0, nullptr) == 1);
    CHECK(X509_check_ca(c) == 0);
    int crit = -1;
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(c, NID_basic_constraints, &crit, nullptr));
    REQUIRE(bc != nullptr);
    CHECK_FALSE(bc->ca);
    CHECK(crit == 1);
    BASIC_CONSTRAINTS_free(bc);
    CHECK(X509_get_key_usage(c) == KU_DIGITAL_SIGNATURE);
    auto* ku = static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(c, NID_key_usage, &crit, nullptr));
    CHECK(crit == 1);
    ASN1_BIT_STRING_free(ku);
    CHECK(X509_get_extended_key_usage(c) == XKU_SSL_SERVER);
    auto* eku = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(c, NID_ext_key_usage, nullptr, nullptr));
    REQUIRE(eku != nullptr);
    CHECK(sk_ASN1_OBJECT_num(eku) == 1);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    CHECK(X509_get0_subject_key_id(c) != nullptr);
    CHECK(X509_get0_authority_key_id(c) != nullptr);
    ossl::BigNum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
    CHECK(BN_num_bits(serial.get()) >= 64);
    CHECK(j["serial"].get<std::string>().size() >= 16);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c));
    CHECK(days * 86400 + secs == 3600 + 300);  // requested lifetime plus the 5-minute backdate
    std::filesystem::remove_all(tmp);
}

TEST_CASE("two leaves never share a serial", "[ca-service][invariant3]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("serials"));
    std::set<std::string> serials;
    const auto key = new_public_key_b64();
    // More than two of the issuer's 64-serial blocks of randomness.
    constexpr int kLeaves = 150;
    for (int i = 0; i < kLeaves; ++i) {
        auto r = post_leaf(ca, svc, node_identity(ca), leaf_request_json({"s" + std::to_string(i) + ".example.com"}, key));
        REQUIRE(r.status == 200);
        const auto serial = Json::parse(r.body)["serial"].get<std::string>();
        INFO(serial);
        CHECK(serial.size() == 32);                       // 16 octets, no leading zero octet
        CHECK(std::string("4567").find(serial[0]) != std::string::npos);  // positive, top bit clear
        serials.insert(serial);
    }
    CHECK(serials.size() == kLeaves);
}

TEST_CASE("only verified service-PKI identities are served", "[ca-service][invariant2]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("auth"));
    const auto body = leaf_request_json({"example.com"}, new_public_key_b64());

    SECTION("no client certificate: the TLS handshake fails") {
        auto r = curl_request(ca, svc.url("/v1/leaf"), "", "", "POST", body);
        CHECK(r.status == 0);
    }
    SECTION("a certificate from another CA") {
        auto tmp = work_dir("other-ca");
        auto gen = sh("cd " + tmp.string() +
                      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
                      "-out ca.pem -subj '/CN=rogue CA' -days 2 2>/dev/null"
                      " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout n.key -out n.csr "
                      "-subj '/O=splitca/OU=nodes/CN=node-1' 2>/dev/null"
                      " && openssl x509 -req -in n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out n.pem 2>/dev/null");
        REQUIRE(gen.exit_code == 0);
        auto r = curl_request(ca, svc.url("/v1/leaf"), (tmp / "n.pem").string(), (tmp / "n.key").string(), "POST", body);
        CHECK(r.status == 0);
        std::filesystem::remove_all(tmp);
    }
    SECTION("a certificate under the interception root never authenticates") {
        // A real leaf from this CA, with its key, presented as a client identity.
        auto tmp = work_dir("root-leaf");
        auto gen = sh("cd " + tmp.string() + " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem "
                      "&& openssl pkey -in k.pem -pubout -outform DER | base64 -w0 > pub.b64");
        REQUIRE(gen.exit_code == 0);
        auto issued = post_leaf(ca, svc, node_identity(ca), leaf_request_json({"node-1.example.com"}, read_file(tmp / "pub.b64")));
        REQUIRE(issued.status == 200);
        auto j = Json::parse(issued.body);
        std::ofstream(tmp / "leaf.pem") << j["certificate"].get<std::string>() << j["chain"][0].get<std::string>();
        auto r = curl_request(ca, svc.url("/v1/leaf"), (tmp / "leaf.pem").string(), (tmp / "k.pem").string(), "POST", body);
        CHECK(r.status == 0);
        std::filesystem::remove_all(tmp);
    }
    SECTION("TLS 1.2 is refused") {
        auto r = run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(svc.port()), "-tls1_2", "-cert",
                      node_identity(ca).cert, "-key", node_identity(ca).key, "-CAfile", (ca.dir / "pki/service-ca.pem").string()},
                     {}, std::chrono::seconds(20));
        CHECK_THAT(r.output, ContainsSubstring("alert protocol version"));
    }
    SECTION("a node cannot use admin endpoints; an admin cannot request leaves") {
        auto r = curl_request(ca, svc.url("/v1/admin/nodes"), node_identity(ca).cert, node_identity(ca).key);
        CHECK(r.status == 403);
        CHECK(error_code(r) == "forbidden");
        auto a = post_leaf(ca, svc, admin_identity(ca), body);
        CHECK(a.status == 403);
    }
    SECTION("identity comes from the certificate, not from headers") {
        auto r = run({"curl", "-sS", "--cacert", (ca.dir / "pki/service-ca.pem").string(), "--cert", node_identity(ca).cert,
                      "--key", node_identity(ca).key, "-H", "X-Forwarded-For: admin", "-H", "REMOTE_ADDR: 10.0.0.1", "-H",
                      "X-Client-Cert: admin", svc.url("/v1/admin/nodes")});
        CHECK_THAT(r.output, ContainsSubstring("\"forbidden\""));
    }
}

TEST_CASE("revocation stops a node, survives restart, and can be undone", "[ca-service][invariant2]") {
    const auto& ca = TestCa::create({"--nodes", "2"});
    CaService svc(ca, work_dir("revoke"));
    const auto body = leaf_request_json({"example.com"}, new_public_key_b64());
    REQUIRE(post_leaf(ca, svc, node_identity(ca, 1), body).status == 200);

    auto rev = curl_request(ca, svc.url("/v1/admin/revoke"), admin_identity(ca).cert, admin_identity(ca).key, "POST", R"({"node":"node-1"})");
    INFO(rev.body);
    REQUIRE(rev.status == 200);
    auto refused = post_leaf(ca, svc, node_identity(ca, 1), body);
    CHECK(refused.status == 403);
    CHECK(error_code(refused) == "node_revoked");
    CHECK(post_leaf(ca, svc, node_identity(ca, 2), body).status == 200);
    // The revoked node's attempt is on the record, as a denial naming the node.
    auto shown = run({(kBinDir / "ca-audit").string(), "show", svc.audit_dir().string(), "--node", "node-1"});
    INFO(shown.output);
    CHECK_THAT(shown.output, ContainsSubstring("\"reason\":\"node_revoked\""));
    CHECK_THAT(shown.output, ContainsSubstring("\"denied\""));

    svc.stop();
    svc.start();
    CHECK(error_code(post_leaf(ca, svc, node_identity(ca, 1), body)) == "node_revoked");
    auto nodes = curl_request(ca, svc.url("/v1/admin/nodes"), admin_identity(ca).cert, admin_identity(ca).key);
    CHECK_THAT(nodes.body, ContainsSubstring("node-1"));

    CHECK(curl_request(ca, svc.url("/v1/admin/unrevoke"), admin_identity(ca).cert, admin_identity(ca).key, "POST", R"({"node":"node-1"})")
              .status == 200);
    CHECK(post_leaf(ca, svc, node_identity(ca, 1), body).status == 200);
    CHECK(curl_request(ca, svc.url("/v1/admin/revoke"), admin_identity(ca).cert, admin_identity(ca).key, "POST", R"({"nod":1})").status == 400);
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("a revocation names a node of this CA or a certificate, and is on the record first",
          "[ca-service][invariant2][audit]") {
    const auto& ca = TestCa::create({"--nodes", "2"});
    CaService svc(ca, work_dir("revoke-names"));
    const auto body = leaf_request_json({"example.com"}, new_public_key_b64());
    const auto& a = admin_identity(ca);

    // A typo is not a revocation: 404 with the names enrolled by hsm-setup, nothing recorded.
    auto typo = curl_request(ca, svc.url("/v1/admin/revoke"), a.cert, a.key, "POST", R"({"node":"node1"})");
    INFO(typo.body);
    CHECK(typo.status == 404);
    CHECK(error_code(typo) == "not_found");
    CHECK_THAT(typo.body, ContainsSubstring("node-1, node-2"));
    CHECK(post_leaf(ca, svc, node_identity(ca, 1), body).status == 200);
    CHECK(curl_request(ca, svc.url("/v1/admin/unrevoke"), a.cert, a.key, "POST", R"({"node":"nobody"})").status == 404);

    // node-2 was never seen by this service: known from hsm-setup's enrolment all the same.
    auto by_name = curl_request(ca, svc.url("/v1/admin/revoke"), a.cert, a.key, "POST", R"({"node":"node-2"})");
    INFO(by_name.body);
    REQUIRE(by_name.status == 200);
    const auto seq = Json::parse(by_name.body)["audit_seq"].get<std::uint64_t>();
    CHECK(seq > 0);
    CHECK(error_code(post_leaf(ca, svc, node_identity(ca, 2), body)) == "node_revoked");

    // A certificate fingerprint is accepted whether or not it was seen, in either case.
    const auto cert = ossl::certificate_from_pem(read_file(node_identity(ca, 1).cert));
    std::string fp = ossl::fingerprint_sha256(*cert);
    std::transform(fp.begin(), fp.end(), fp.begin(), [](unsigned char c) { return std::toupper(c); });
    auto by_fp = curl_request(ca, svc.url("/v1/admin/revoke"), a.cert, a.key, "POST", "{\"node\":\"" + fp + "\"}");
    INFO(by_fp.body);
    REQUIRE(by_fp.status == 200);
    CHECK(error_code(post_leaf(ca, svc, node_identity(ca, 1), body)) == "node_revoked");
    CHECK(curl_request(ca, svc.url("/v1/admin/revoke"), a.cert, a.key, "POST", R"({"node":")" + std::string(64, 'f') +
                       R"("})").status == 200);

    // Each action is in the audit log, with the seq the answer gave, before the denial it caused.
    auto shown = run({(kBinDir / "ca-audit").string(), "show", svc.audit_dir().string()});
    INFO(shown.output);
    CHECK_THAT(shown.output, ContainsSubstring("\"seq\":" + std::to_string(seq) + ","));
    CHECK_THAT(shown.output, ContainsSubstring("node node-2 by admin"));
    CHECK_THAT(shown.output, ContainsSubstring("certificate " + ossl::fingerprint_sha256(*cert)));
    CHECK_THAT(shown.output, !ContainsSubstring("node1"));
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("the policy refuses what it must, each with its code", "[ca-service][policy]") {
    const auto& ca = TestCa::shared();
    ServiceOptions opts;
    opts.policy_extra = "max_names = 3\ndenied_names = [\".bank.example\"]\nmax_lifetime_seconds = 7200\n"
                        "allow_ip_addresses = false\n";
    CaService svc(ca, work_dir("policy"));
    CaService strict(ca, work_dir("policy-strict"), opts);
    const auto key = new_public_key_b64();
    struct Case {
        std::vector<std::string> names;
        std::string code;
    };
    const std::vector<Case> cases = {
        {{"online.bank.example"}, "name_denied"},
        {{"a.example.com", "b.example.com", "c.example.com", "d.example.com"}, "too_many_names"},
        {{"*.com"}, "public_suffix"},
        {{"*.co.uk"}, "public_suffix"},
        {{"co.uk"}, "public_suffix"},
        {{"a.*.example.com"}, "invalid_name"},
        {{"*a.example.com"}, "invalid_name"},
        {{"exa mple.com"}, "invalid_name"},
        {{"-bad.example.com"}, "invalid_name"},
        {{std::string(64, 'a') + ".example.com"}, "invalid_name"},
        {{"b\\u00fccher.example"}, "invalid_name"},
        {{"192.0.2.7"}, "ip_not_allowed"},
        {{"example.com", "EXAMPLE.com"}, "duplicate_name"},
    };
    for (const auto& c : cases) {
        INFO(c.names.front() << " -> " << c.code);
        auto r = post_leaf(ca, strict, node_identity(ca), leaf_request_json(c.names, key));
        CHECK(r.status >= 400);
        CHECK(error_code(r) == c.code);
    }
    // the default policy accepts a wildcard over a registrable domain and IP SANs
    CHECK(post_leaf(ca, svc, node_identity(ca), leaf_request_json({"*.example.com", "example.com"}, key)).status == 200);
    CHECK(post_leaf(ca, svc, node_identity(ca), leaf_request_json({"192.0.2.7"}, key)).status == 200);

    SECTION("lifetime is capped to the policy maximum") {
        auto r = post_leaf(ca, strict, node_identity(ca), leaf_request_json({"long.example.com"}, key, 7 * 86400));
        REQUIRE(r.status == 200);
        auto leaf = parse_leaf(Json::parse(r.body)["certificate"]);
        int days = 0, secs = 0;
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf.cert.get()), X509_get0_notAfter(leaf.cert.get()));
        CHECK(days * 86400 + secs <= 7200 + 300);
    }
    SECTION("a node cannot ask for a CA certificate or another EKU: the request has no such fields") {
        auto r = post_leaf(ca, svc, node_identity(ca),
                           R"({"names":["example.com"],"public_key":")" + key + R"(","basic_constraints":{"ca":true}})");
        CHECK(r.status == 400);
        CHECK(error_code(r) == "unknown_field");
        auto e = post_leaf(ca, svc, node_identity(ca), R"({"names":["example.com"],"public_key":")" + key + R"(","eku":["clientAuth"]})");
        CHECK(error_code(e) == "unknown_field");
    }
}

TEST_CASE("malformed and oversized requests get clear errors", "[ca-service][invariant7]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("malformed"));
    auto big = post_leaf(ca, svc, node_identity(ca), std::string(64 * 1024, 'x'));
    CHECK(big.status == 413);
    CHECK(error_code(big) == "body_too_large");
    auto bad = post_leaf(ca, svc, node_identity(ca), R"({"names": ["example.com"], )");
    CHECK(bad.status == 400);
    CHECK(error_code(bad) == "malformed_request");
    CHECK_THAT(bad.body, ContainsSubstring("message"));
    auto type = post_leaf(ca, svc, node_identity(ca), R"({"names": "example.com", "public_key": "AAAA"})");
    CHECK(type.status == 400);
    CHECK(error_code(type) == "invalid_field");
    auto key = post_leaf(ca, svc, node_identity(ca), R"({"names": ["example.com"], "public_key": "bm90IGEga2V5"})");
    CHECK(error_code(key) == "invalid_public_key");
    auto media = curl_request(ca, svc.url("/v1/leaf"), node_identity(ca).cert, node_identity(ca).key, "POST", "names=x", "text/plain");
    CHECK(media.status == 415);
    auto missing = curl_request(ca, svc.url("/v1/nothing"), node_identity(ca).cert, node_identity(ca).key);
    CHECK(missing.status == 404);
    CHECK(error_code(missing) == "not_found");
    // garbage instead of TLS, then the service still answers
    sh("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 5 bash -c 'cat > /dev/tcp/127.0.0.1/" + std::to_string(svc.port()) +
       "'");
    CHECK(post_leaf(ca, svc, node_identity(ca), leaf_request_json({"example.com"}, new_public_key_b64())).status == 200);
    CHECK(svc.running());
}

TEST_CASE("per-node rate limits answer 429 with Retry-After", "[ca-service][rate-limit]") {
    const auto& ca = TestCa::shared();
    ServiceOptions opts;
    opts.rate_limit = "per_node_per_second = 0.5\nburst = 3\n";
    CaService svc(ca, work_dir("rate"), opts);
    const auto body = leaf_request_json({"example.com"}, new_public_key_b64());
    int ok = 0;
    HttpReply last;
    for (int i = 0; i < 6; ++i) {
        last = post_leaf(ca, svc, node_identity(ca), body);
        if (last.status == 200) ++ok;
    }
    CHECK(ok == 3);
    CHECK(last.status == 429);
    CHECK(error_code(last) == "rate_limited");
    CHECK_THAT(last.headers, ContainsSubstring("Retry-After: "));
}

TEST_CASE("health, metrics and the CA bundle", "[ca-service][ops]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("ops"));
    auto h = curl_request(ca, svc.url("/healthz"), node_identity(ca).cert, node_identity(ca).key);
    CHECK(h.status == 200);
    CHECK(Json::parse(h.body)["status"] == "ok");
    REQUIRE(post_leaf(ca, svc, node_identity(ca), leaf_request_json({"m.example.com"}, new_public_key_b64())).status == 200);
    auto m = curl_request(ca, svc.url("/metrics"), node_identity(ca).cert, node_identity(ca).key);
    CHECK_THAT(m.body, ContainsSubstring("splitca_certificates_issued_total 1"));
    CHECK_THAT(m.body, ContainsSubstring("splitca_hsm_available 1"));
    auto b = curl_request(ca, svc.url("/v1/ca"), node_identity(ca).cert, node_identity(ca).key);
    CHECK(b.body == read_file(ca.dir / "pki/issuing-ca.pem") + read_file(ca.dir / "pki/root-ca.pem"));
    auto tail = curl_request(ca, svc.url("/v1/admin/audit/tail?n=5"), admin_identity(ca).cert, admin_identity(ca).key);
    CHECK_THAT(tail.body, ContainsSubstring("m.example.com"));
    for (const char* bad : {"-1", "5x", "", "1e3", "99999999999999999999999"}) {
        CAPTURE(bad);
        auto refused = curl_request(ca, svc.url(std::string("/v1/admin/audit/tail?n=") + bad), admin_identity(ca).cert, admin_identity(ca).key);
        CHECK(refused.status == 400);
        CHECK(error_code(refused) == "invalid_field");
    }
}

TEST_CASE("the service refuses to start on a broken configuration", "[ca-service][errors]") {
    const auto& ca = TestCa::shared();
    auto dir = work_dir("badconf");
    auto write = [&](const std::string& text) {
        std::ofstream(dir / "c.toml") << text;
        return run({(kBinDir / "ca-service").string(), "--config", (dir / "c.toml").string()});
    };
    CHECK_THAT(write("[listen\n").output, ContainsSubstring("not valid TOML"));
    CHECK_THAT(write("[listen]\naddress = \"127.0.0.1:1\"\nbogus = 1\n").output,
               ContainsSubstring("listen.bogus: unknown key"));
    auto good = read_file(ca.dir / "ca-service/ca-service.toml");
    auto broken = good;
    broken.replace(broken.find("max_names = 20"), 14, "max_names = 5000");
    CHECK_THAT(write(broken).output, ContainsSubstring("policy.max_names: must be between"));
    auto wrong_pin = good;
    std::ofstream(dir / "pin") << "wrong-pin";
    std::filesystem::permissions(dir / "pin", std::filesystem::perms::owner_read);
    auto pos = wrong_pin.find("pin_file = \"");
    wrong_pin.replace(pos, wrong_pin.find('\n', pos) - pos, "pin_file = \"" + (dir / "pin").string() + "\"");
    auto r = write(wrong_pin);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, ContainsSubstring("rejected the PIN"));
    CHECK(run({(kBinDir / "ca-service").string()}).exit_code == 2);
    std::filesystem::remove_all(dir);
}
