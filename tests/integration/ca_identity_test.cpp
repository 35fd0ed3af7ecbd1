// Short-lived node identities: a node renews its own over mTLS, the signer certifies the
// new key with the node-identity CA, and refuses what it must, each on the record.

#include "ossl/encoding.hpp"
#include "ossl/pem.hpp"
#include "pki/certificates.hpp"
#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fstream>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {


ossl::PKey new_key(const char* type = "EC") {
    if (std::string(type) == "RSA1024") return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
    return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

ossl::PKey read_key(const std::string& path) {
    ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
    return ossl::PKey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// A CSR carrying `subject_key`, signed by `signing_key` (the same key for an honest one).
std::string csr_b64(const EVP_PKEY& subject_key, const EVP_PKEY& signing_key, const std::string& cn = "evil.example") {
    ossl::X509Req req(X509_REQ_new());
    ossl::X509Name name(X509_NAME_new());
    X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                               -1, 0);
    X509_REQ_set_subject_name(req.get(), name.get());
    X509_REQ_set_pubkey(req.get(), const_cast<EVP_PKEY*>(&subject_key));
    REQUIRE(X509_REQ_sign(req.get(), const_cast<EVP_PKEY*>(&signing_key), EVP_sha256()) > 0);
    unsigned char* der = nullptr;
    const int len = i2d_X509_REQ(req.get(), &der);
    ossl::Bytes bytes(der, der + len);
    OPENSSL_free(der);
    return ossl::to_base64(bytes);
}

HttpReply renew(const TestCa& ca, const CaService& svc, const Identity& id, const std::string& csr) {
    return curl_request(ca, svc.url("/v1/identity/renew"), id.cert, id.key, "POST", Json{{"csr", csr}}.dump());
}

std::string error_code(const HttpReply& r) {
    auto j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.contains("error")) return "(no error body: " + r.body + ")";
    return j["error"]["code"];
}

void write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
    std::filesystem::permissions(p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::string key_pem(const EVP_PKEY& key) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), const_cast<EVP_PKEY*>(&key), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

TEST_CASE("a node renews its own identity: new key, same name, clientAuth only, on the record",
          "[ca-service][identity]") {
    const auto ca = TestCa::create({"--nodes", "2"});
    const auto work = make_temp_dir("splitca-identity");
    CaService svc(ca, work / "svc");

    auto key = new_key();
    auto r = renew(ca, svc, node_identity(ca, 1), csr_b64(*key, *key));
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto answer = Json::parse(r.body);
    const std::string chain = answer["certificate"];
    auto certs = std::vector<ossl::X509Ptr>();
    {
        const auto file = work / "renewed.pem";
        write_text(file, chain);
        certs = ossl::load_certificates(file);
    }
    REQUIRE(certs.size() == 2);
    X509* leaf = certs[0].get();
    // The name is the verified identity's, not the CSR's; the key is the CSR's.
    CHECK(ossl::common_name(*leaf) == "node-1");
    CHECK(ossl::subject_field(*leaf, NID_organizationalUnitName) == "nodes");
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(leaf), key.get()) == 1);
    CHECK(ossl::common_name(*certs[1]) == ossl::common_name(*ossl::load_certificate(ca.dir / "pki/node-identity-ca.pem")));
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(leaf), X509_get0_notAfter(leaf));
    CHECK(days * 86400 + secs == 3600 + 300);
    CHECK(X509_check_ca(leaf) == 0);
    CHECK(X509_check_purpose(leaf, X509_PURPOSE_SSL_CLIENT, 0) == 1);
    CHECK(X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1);
    CHECK(answer["serial"].get<std::string>().size() >= 16);
    CHECK(answer["audit_seq"].get<std::uint64_t>() > 0);

    // The new identity works: for leaves, and for the next renewal.
    const Identity renewed{(work / "renewed.pem").string(), (work / "renewed.key").string()};
    write_text(renewed.key, key_pem(*key));
    auto leaf_reply = curl_request(ca, svc.url("/v1/leaf"), renewed.cert, renewed.key, "POST",
                                   leaf_request_json({"example.com"}, new_public_key_b64()));
    INFO(leaf_reply.body);
    CHECK(leaf_reply.status == 200);
    auto key2 = new_key();
    CHECK(renew(ca, svc, renewed, csr_b64(*key2, *key2)).status == 200);

    SECTION("what the signer refuses") {
        const auto id2 = node_identity(ca, 2);
        auto current = read_key(id2.key);
        REQUIRE(current);
        auto same = renew(ca, svc, id2, csr_b64(*current, *current));
        CHECK(same.status == 400);
        CHECK(error_code(same) == "invalid_public_key");
        CHECK_THAT(same.body, ContainsSubstring("new key"));

        auto other = new_key();
        auto forged = renew(ca, svc, id2, csr_b64(*key2, *other));  // key2 without its private half
        CHECK(error_code(forged) == "invalid_field");
        CHECK_THAT(forged.body, ContainsSubstring("proof of possession"));

        CHECK(error_code(renew(ca, svc, id2, ossl::to_base64(ossl::as_bytes("not a csr")))) == "invalid_field");
        CHECK(error_code(renew(ca, svc, id2, "!!!")) == "invalid_field");
        CHECK(error_code(curl_request(ca, svc.url("/v1/identity/renew"), id2.cert, id2.key, "POST", "{\"csr\":1}")) ==
              "invalid_field");
        auto weak = new_key("RSA1024");
        CHECK(error_code(renew(ca, svc, id2, csr_b64(*weak, *weak))) == "weak_public_key");
        CHECK(curl_request(ca, svc.url("/v1/identity/renew"), id2.cert, id2.key).status == 405);

        auto admin = renew(ca, svc, admin_identity(ca),
                           csr_b64(*other, *other));
        CHECK(admin.status == 403);
        CHECK(error_code(admin) == "forbidden");

        // A revoked node cannot renew, nor can the identity it renewed before.
        REQUIRE(curl_request(ca, svc.url("/v1/admin/revoke"), admin_identity(ca).cert, admin_identity(ca).key, "POST", R"({"node":"node-1"})")
                    .status == 200);
        auto fresh = new_key();
        auto revoked = renew(ca, svc, renewed, csr_b64(*fresh, *fresh));
        CHECK(revoked.status == 403);
        CHECK(error_code(revoked) == "node_revoked");

        auto shown = run({(kBinDir / "ca-audit").string(), "show", svc.audit_dir().string()});
        CHECK_THAT(shown.output, ContainsSubstring("identity_renewed"));
        CHECK_THAT(shown.output, ContainsSubstring("identity_renewal_refused"));
        CHECK_THAT(shown.output, ContainsSubstring("node_revoked"));
        auto metrics = curl_request(ca, svc.url("/metrics"), id2.cert, id2.key);
        CHECK_THAT(metrics.body, ContainsSubstring("splitca_identities_renewed_total 2"));
        svc.stop();
        auto verified = run({(kBinDir / "ca-audit").string(), "verify", svc.audit_dir().string(), "--cert",
                             (ca.dir / "pki/audit.pem").string()});
        INFO(verified.output);
        CHECK(verified.exit_code == 0);
    }
    std::filesystem::remove_all(work);
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("with renewal switched off, node identities still authenticate and renewal points to the operator",
          "[ca-service][identity]") {
    const auto ca = TestCa::create();
    const auto work = make_temp_dir("splitca-identity-off");
    ServiceOptions options;
    options.node_identity_extra = "renew = false\n";
    CaService svc(ca, work / "svc", options);
    const auto id = node_identity(ca, 1);
    CHECK(curl_request(ca, svc.url("/v1/leaf"), id.cert, id.key, "POST",
                       leaf_request_json({"example.com"}, new_public_key_b64()))
              .status == 200);
    auto key = new_key();
    auto r = renew(ca, svc, id, csr_b64(*key, *key));
    CHECK(r.status == 403);
    CHECK_THAT(r.body, ContainsSubstring("hsm-setup renew-node node-1"));
    std::filesystem::remove_all(work);
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("an expired identity cannot renew: it takes the operator", "[ca-service][identity]") {
    // Made in-process with the real node-identity CA key (only the shared CA's token is
    // reachable from this process), one hour past its end.
    const auto& ca = TestCa::shared();
    pkcs11::SignerConfig cfg;
    cfg.hsm = ca.issuing_token();
    cfg.key = pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=node-identity-ca");
    pkcs11::HsmSigner signer(cfg);
    auto issuer = ossl::load_certificate(ca.dir / "pki/node-identity-ca.pem");
    auto key = new_key();
    pki::CertificateRequest request;
    request.profile = pki::Profile::NodeIdentity;
    request.common_name = "node-1";
    request.organization = "splitca";
    request.backdate = std::chrono::hours(3);
    request.lifetime = -std::chrono::hours(1);
    request.subject_key = ossl::PKey(EVP_PKEY_dup(key.get()));
    request.issuer = issuer.get();
    auto expired = pki::make_certificate(request, signer);

    const auto work = make_temp_dir("splitca-identity-expired");
    const Identity id{(work / "expired.pem").string(), (work / "expired.key").string()};
    write_text(id.cert, ossl::to_pem(*expired) + ossl::to_pem(*issuer));
    write_text(id.key, key_pem(*key));
    CaService svc(ca, work / "svc");
    auto fresh = new_key();
    auto r = renew(ca, svc, id, csr_b64(*fresh, *fresh));
    INFO(r.status << " " << r.body << " " << r.curl_error);
    CHECK(r.status != 200);
    CHECK(r.body.find("BEGIN CERTIFICATE") == std::string::npos);
    // The same certificate, in date, would have been accepted: the expiry is what refuses it.
    request.lifetime = std::chrono::hours(1);
    request.subject_key = ossl::PKey(EVP_PKEY_dup(key.get()));
    write_text(id.cert, ossl::to_pem(*pki::make_certificate(request, signer)) + ossl::to_pem(*issuer));
    CHECK(renew(ca, svc, id, csr_b64(*fresh, *fresh)).status == 200);
    svc.stop();
    CHECK_THAT(run({(kBinDir / "ca-audit").string(), "show", svc.audit_dir().string()}).output,
               ContainsSubstring("identity_renewed"));
    std::filesystem::remove_all(work);
}
