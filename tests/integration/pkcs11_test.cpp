// The pkcs11 library against a real SoftHSM token created by hsm-setup.

#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/signer.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;

namespace {

bool verifies(std::span<const std::uint8_t> spki, std::span<const std::uint8_t> data,
              std::span<const std::uint8_t> sig) {
    const unsigned char* p = spki.data();
    ossl::PKey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    return key && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("CA keys are sensitive, non-extractable and unreadable", "[pkcs11][invariant1]") {
    const auto& ca = TestCa::shared();
    pkcs11::Module module(kSoftHsmModule);
    struct KeyOnToken {
        pkcs11::HsmConfig token;
        std::string label;
    };
    const std::vector<KeyOnToken> keys = {{ca.root_token(), "root-ca"},
                                          {ca.issuing_token(), ca.issuing_key_label()},
                                          {ca.issuing_token(), "audit"}};
    for (const auto& k : keys) {
        INFO("key " << k.label << " on " << k.token.token_label);
        pkcs11::Session s(module, module.slot_for_token(k.token.token_label));
        s.login(pkcs11::read_pin(k.token.pin), k.token.token_label);
        CK_OBJECT_HANDLE h = s.find_one(CKO_PRIVATE_KEY, k.label);
        CHECK(s.get_bool(h, CKA_SENSITIVE));
        CHECK_FALSE(s.get_bool(h, CKA_EXTRACTABLE));
        CHECK(s.get_bool(h, CKA_ALWAYS_SENSITIVE));
        CHECK(s.get_bool(h, CKA_NEVER_EXTRACTABLE));
        pkcs11::Bytes value;
        CHECK(s.get_attribute(h, CKA_VALUE, value) == CKR_ATTRIBUTE_SENSITIVE);
        CHECK(value.empty());
    }
}

TEST_CASE("the signer's in-memory copy of the key is as locked down as the key", "[pkcs11][invariant1]") {
    const auto& ca = TestCa::shared();
    pkcs11::HsmSigner signer(ca.issuing_signer());
    const std::string msg = "signed with the session copy";
    REQUIRE(verifies(signer.public_key_info(), ossl::as_bytes(msg), signer.sign(ossl::as_bytes(msg))));
    // Concurrent signatures open more pooled sessions, each with its own copy of the key.
    std::atomic<int> bad{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 50; ++i)
                    if (!verifies(signer.public_key_info(), ossl::as_bytes(msg), signer.sign(ossl::as_bytes(msg)))) ++bad;
            });
    }
    CHECK(bad == 0);

    // Every private-key session object this process can see (the signer's copy, and any
    // pkcs11-provider made) keeps the token key's protection.
    pkcs11::Module module(kSoftHsmModule);
    pkcs11::Session s(module, module.slot_for_token(ca.issuing_token().token_label));
    s.login(pkcs11::read_pin(ca.issuing_token().pin), ca.issuing_token().token_label);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL session_only = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &session_only, sizeof session_only}};
    const auto copies = s.find(tmpl);
    CHECK_FALSE(copies.empty());
    for (CK_OBJECT_HANDLE h : copies) {
        CHECK(s.get_bool(h, CKA_SENSITIVE));
        CHECK_FALSE(s.get_bool(h, CKA_EXTRACTABLE));
        pkcs11::Bytes value;
        CHECK(s.get_attribute(h, CKA_VALUE, value) == CKR_ATTRIBUTE_SENSITIVE);
        CHECK(value.empty());
    }
}

TEST_CASE("the issuing token's credential cannot reach the root key", "[pkcs11][separation]") {
    const auto& ca = TestCa::shared();
    pkcs11::Module module(kSoftHsmModule);
    pkcs11::Session s(module, module.slot_for_token("splitca-root"));
    auto pin = pkcs11::read_pin(ca.issuing_token().pin);
    CHECK_THROWS_WITH(s.login(pin, "splitca-root"), ContainsSubstring("rejected the PIN"));
}

TEST_CASE("each token holds only its own keys: enumerated, not assumed", "[pkcs11][separation]") {
    const auto& ca = TestCa::shared();
    pkcs11::Module module(kSoftHsmModule);
    // Every private key on a token, by label, seen through that token's own login.
    const auto private_keys = [&](const pkcs11::HsmConfig& token) {
        pkcs11::Session s(module, module.slot_for_token(token.token_label));
        s.login(pkcs11::read_pin(token.pin), token.token_label);
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_BBOOL on_token = CK_TRUE;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &on_token, sizeof on_token}};
        std::vector<std::string> labels;
        for (CK_OBJECT_HANDLE h : s.find(tmpl)) {
            pkcs11::Bytes label;
            REQUIRE(s.get_attribute(h, CKA_LABEL, label) == CKR_OK);
            labels.emplace_back(label.begin(), label.end());
        }
        std::sort(labels.begin(), labels.end());
        return labels;
    };
    const auto root_keys = private_keys(ca.root_token());
    const auto issuing_keys = private_keys(ca.issuing_token());
    CHECK(root_keys == std::vector<std::string>{"root-ca"});
    std::vector<std::string> expected = {"audit", "node-identity-ca", ca.issuing_key_label()};
    std::sort(expected.begin(), expected.end());
    CHECK(issuing_keys == expected);

    // Whatever the labels say: no key the ca-service's login can use signs as the root.
    const auto root_cert = ossl::load_certificate(ca.dir / "pki/root-ca.pem");
    const pkcs11::Bytes root_spki = ossl::public_key_der(*X509_get0_pubkey(root_cert.get()));
    const std::string msg = "am I the root?";
    for (const auto& label : issuing_keys) {
        INFO("issuing-token key " << label);
        pkcs11::HsmSigner key({ca.issuing_token(), pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=" + label)});
        CHECK(pkcs11::Bytes(key.public_key_info().begin(), key.public_key_info().end()) != root_spki);
        CHECK_FALSE(verifies(root_spki, ossl::as_bytes(msg), key.sign(ossl::as_bytes(msg))));
    }
}

TEST_CASE("the issuing CA certificate verifies to the root with openssl verify", "[pkcs11][setup]") {
    const auto& ca = TestCa::shared();
    auto r = run({"openssl", "verify", "-CAfile", (ca.dir / "pki/root-ca.pem").string(),
                  (ca.dir / "pki/issuing-ca.pem").string()});
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, ContainsSubstring(": OK"));
    auto issuing = ossl::load_certificate(ca.dir / "pki/issuing-ca.pem");
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(issuing.get(), NID_basic_constraints, nullptr, nullptr));
    REQUIRE(bc != nullptr);
    CHECK(bc->ca);
    CHECK(ASN1_INTEGER_get(bc->pathlen) == 0);
    BASIC_CONSTRAINTS_free(bc);
    CHECK((X509_get_extended_key_usage(issuing.get()) & XKU_SSL_SERVER) != 0);
    CHECK((X509_get_extended_key_usage(issuing.get()) & XKU_SSL_CLIENT) == 0);
}

TEST_CASE("no CA private key exists as a file under the setup directory", "[pkcs11][invariant1]") {
    const auto& ca = TestCa::shared();
    pkcs11::HsmSigner root({ca.root_token(), pkcs11::Uri::parse("pkcs11:token=splitca-root;object=root-ca")});
    pkcs11::HsmSigner issuing(ca.issuing_signer());
    pkcs11::HsmSigner audit({ca.issuing_token(), pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=audit")});
    const std::vector<pkcs11::Bytes> ca_keys = {
        pkcs11::Bytes(root.public_key_info().begin(), root.public_key_info().end()),
        pkcs11::Bytes(issuing.public_key_info().begin(), issuing.public_key_info().end()),
        pkcs11::Bytes(audit.public_key_info().begin(), audit.public_key_info().end())};

    int private_key_files = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(ca.dir)) {
        if (!entry.is_regular_file()) continue;
        const std::string content = read_file(entry.path());
        if (content.find("PRIVATE KEY") == std::string::npos) continue;
        ++private_key_files;
        ossl::Bio bio(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
        ossl::PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
        REQUIRE(key);
        const pkcs11::Bytes spki = ossl::public_key_der(*key);
        INFO(entry.path());
        for (const auto& ca_key : ca_keys) CHECK(spki != ca_key);
        // service-PKI keys on disk are owner-only
        CHECK((std::filesystem::status(entry.path()).permissions() &
               (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
              std::filesystem::perms::none);
    }
    // service CA, ca-service TLS, admin and node-1 keys: the file keys that should exist
    CHECK(private_key_files == 4);
}

TEST_CASE("eight threads signing at once all produce valid signatures", "[pkcs11][signer]") {
    const auto& ca = TestCa::shared();
    auto config = ca.issuing_signer();
    config.max_concurrent_operations = 4;
    pkcs11::HsmSigner signer(config);
    constexpr int kThreads = 8;
    constexpr int kPerThread = 200;
    std::atomic<int> valid{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i) {
                std::string msg = "thread " + std::to_string(t) + " message " + std::to_string(i);
                try {
                    auto sig = signer.sign(ossl::as_bytes(msg));
                    (verifies(signer.public_key_info(), ossl::as_bytes(msg), sig) ? valid : failed)++;
                } catch (...) {
                    failed++;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(failed == 0);
    CHECK(valid == kThreads * kPerThread);
}

TEST_CASE("configuration mistakes give clear errors", "[pkcs11][errors]") {
    const auto& ca = TestCa::shared();
    auto tmp = make_temp_dir("splitca-pin");

    SECTION("wrong PIN") {
        auto cfg = ca.issuing_signer();
        std::ofstream(tmp / "wrong.pin") << "not-the-pin";
        std::filesystem::permissions(tmp / "wrong.pin", std::filesystem::perms::owner_read);
        cfg.hsm.pin = pkcs11::PinSource::parse("file:" + (tmp / "wrong.pin").string());
        auto msg = message_of([&] { pkcs11::HsmSigner s(cfg); });
        CHECK_THAT(msg, ContainsSubstring("token 'splitca-issuing' rejected the PIN"));
        CHECK_THAT(msg, ContainsSubstring("CKR_PIN_INCORRECT"));
        CHECK_THAT(msg, !ContainsSubstring("not-the-pin"));
    }
    SECTION("unknown token label") {
        auto cfg = ca.issuing_signer();
        cfg.hsm.token_label = "no-such-token";
        auto msg = message_of([&] { pkcs11::HsmSigner s(cfg); });
        CHECK_THAT(msg, ContainsSubstring("no token labelled 'no-such-token'"));
        CHECK_THAT(msg, ContainsSubstring("'splitca-issuing'"));
    }
    SECTION("missing module") {
        auto cfg = ca.issuing_signer();
        cfg.hsm.module = "/nonexistent/libpkcs11.so";
        auto msg = message_of([&] { pkcs11::HsmSigner s(cfg); });
        CHECK_THAT(msg, ContainsSubstring("PKCS#11 module /nonexistent/libpkcs11.so does not exist"));
    }
    SECTION("a file that is not a PKCS#11 module") {
        auto cfg = ca.issuing_signer();
        cfg.hsm.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
        auto msg = message_of([&] { pkcs11::HsmSigner s(cfg); });
        CHECK_THAT(msg, ContainsSubstring("is not a PKCS#11 module"));
    }
    SECTION("missing key") {
        auto cfg = ca.issuing_signer();
        cfg.key = pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=absent");
        auto msg = message_of([&] { pkcs11::HsmSigner s(cfg); });
        CHECK_THAT(msg, ContainsSubstring("object=absent"));
    }
    SECTION("PIN file readable by others") {
        std::ofstream(tmp / "loose.pin") << "1234";
        std::filesystem::permissions(tmp / "loose.pin", std::filesystem::perms(0644));
        auto msg = message_of([&] { pkcs11::read_pin(pkcs11::PinSource::parse((tmp / "loose.pin").string())); });
        CHECK_THAT(msg, ContainsSubstring("chmod 600"));
    }
    SECTION("PIN file missing, PIN variable unset") {
        CHECK_THAT(message_of([&] { pkcs11::read_pin(pkcs11::PinSource::parse((tmp / "absent").string())); }),
                   ContainsSubstring("cannot open PIN file"));
        CHECK_THAT(message_of([&] { pkcs11::read_pin(pkcs11::PinSource::parse("env:SPLITCA_TEST_UNSET_PIN")); }),
                   ContainsSubstring("environment variable SPLITCA_TEST_UNSET_PIN is not set"));
    }
    std::filesystem::remove_all(tmp);
}

TEST_CASE("the PIN can come from the environment", "[pkcs11][pin]") {
    const auto& ca = TestCa::shared();
    auto cfg = ca.issuing_signer();
    ::setenv("SPLITCA_TEST_PIN", pkcs11::read_pin(cfg.hsm.pin).c_str(), 1);
    cfg.hsm.pin = pkcs11::PinSource::parse("env:SPLITCA_TEST_PIN");
    pkcs11::HsmSigner signer(cfg);
    CHECK_FALSE(signer.sign(ossl::as_bytes("hello")).empty());
    ::unsetenv("SPLITCA_TEST_PIN");
}

TEST_CASE("the signer recovers after its sessions are closed underneath it", "[pkcs11][recovery]") {
    const auto& ca = TestCa::shared();
    pkcs11::HsmSigner signer(ca.issuing_signer());
    REQUIRE_FALSE(signer.sign(ossl::as_bytes("before")).empty());
    REQUIRE(signer.health().reconnects == 0);

    // Same module instance as the provider's (dlopen shares it): this invalidates every
    // session and the login state the provider holds.
    pkcs11::Module module(kSoftHsmModule);
    pkcs11::check(module.api()->C_CloseAllSessions(module.slot_for_token("splitca-issuing")), "C_CloseAllSessions");

    auto sig = signer.sign(ossl::as_bytes("after"));
    CHECK(verifies(signer.public_key_info(), ossl::as_bytes("after"), sig));
    CHECK(signer.health().available);
    CHECK(signer.health().reconnects == 1);

    // and again: recovery is not a one-off
    pkcs11::check(module.api()->C_CloseAllSessions(module.slot_for_token("splitca-issuing")), "C_CloseAllSessions");
    CHECK_FALSE(signer.sign(ossl::as_bytes("again")).empty());
    CHECK(signer.health().reconnects == 2);
}

TEST_CASE("pkcs11 URIs are parsed strictly", "[pkcs11][uri]") {
    auto u = pkcs11::Uri::parse("pkcs11:token=my%20token;object=issuing-ca;type=private");
    CHECK(u.token == "my token");
    CHECK(u.object == "issuing-ca");
    CHECK(u.type == "private");
    CHECK(pkcs11::Uri::parse(u.to_string()).token == "my token");
    CHECK_THROWS_WITH(pkcs11::Uri::parse("file:/etc/passwd"), ContainsSubstring("is not a pkcs11: URI"));
    CHECK_THROWS_WITH(pkcs11::Uri::parse("pkcs11:token=a?pin-value=1234"), ContainsSubstring("carries a PIN"));
    CHECK_THROWS_WITH(pkcs11::Uri::parse("pkcs11:object=x"), ContainsSubstring("names no token"));
    CHECK_THROWS_WITH(pkcs11::Uri::parse("pkcs11:token=a%2"), ContainsSubstring("malformed percent-escape"));
    CHECK_THROWS_WITH(pkcs11::Uri::parse("pkcs11:token=a;type=weird"), ContainsSubstring("type 'weird'"));
    CHECK_THROWS_WITH(pkcs11::Uri::parse("pkcs11:token=a;bogus=1"), ContainsSubstring("unknown path attribute"));
}
