// The hand-written encoders of the issuance hot path, checked against OpenSSL's own.
#include "ossl/der.hpp"
#include "ossl/digest.hpp"
#include "ossl/encoding.hpp"
#include "ossl/pem.hpp"

#include <catch2/catch_test_macros.hpp>
#include <openssl/asn1.h>
#include <openssl/evp.h>

#include <string>

using namespace std::chrono;

namespace {

ossl::Bytes counting(std::size_t n) {
    ossl::Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 11);
    return b;
}

std::string openssl_base64(const ossl::Bytes& b) {
    std::string out(4 * ((b.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), b.data(), static_cast<int>(b.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// The time an encoded UTCTime/GeneralizedTime names, as OpenSSL reads it.
std::tm openssl_time(const ossl::Bytes& der) {
    const unsigned char* p = der.data();
    ASN1_TIME* t = d2i_ASN1_TIME(nullptr, &p, static_cast<long>(der.size()));
    REQUIRE(t != nullptr);
    CHECK(ASN1_TIME_check(t) == 1);
    std::tm tm{};
    CHECK(ASN1_TIME_to_tm(t, &tm) == 1);
    ASN1_TIME_free(t);
    return tm;
}

}  // namespace

TEST_CASE("to_base64 matches OpenSSL for every padding and round-trips", "[ossl][encoding]") {
    for (std::size_t n = 0; n <= 70; ++n) {
        INFO(n);
        const auto bytes = counting(n);
        const auto text = ossl::to_base64(bytes);
        CHECK(text == openssl_base64(bytes));
        CHECK(ossl::from_base64(text) == bytes);
    }
}

TEST_CASE("der_to_pem wraps at 64 columns and reads back", "[ossl][encoding]") {
    const auto der = counting(100);  // 136 base64 characters: lines of 64, 64 and 8
    const auto pem = ossl::der_to_pem(der, "TEST");
    CHECK(pem == "-----BEGIN TEST-----\n" + openssl_base64(der).substr(0, 64) + "\n" + openssl_base64(der).substr(64, 64) +
                     "\n" + openssl_base64(der).substr(128) + "\n-----END TEST-----\n");
}

TEST_CASE("der::time writes UTCTime through 2049 and GeneralizedTime from 2050", "[ossl][der]") {
    const auto t = sys_days{2026y / November / 7} + 3h + 4min + 5s;
    const auto utc = der::time(t);
    CHECK(utc.front() == der::tag::kUtcTime);
    CHECK(std::string(utc.begin() + 2, utc.end()) == "261107030405Z");
    auto tm = openssl_time(utc);
    CHECK((tm.tm_year + 1900 == 2026 && tm.tm_mon == 10 && tm.tm_mday == 7 && tm.tm_hour == 3 && tm.tm_min == 4 &&
           tm.tm_sec == 5));

    const auto last_utc = der::time(sys_days{2049y / December / 31} + 23h + 59min + 59s);
    CHECK(std::string(last_utc.begin() + 2, last_utc.end()) == "491231235959Z");
    const auto first_utc = der::time(sys_days{1950y / January / 1});
    CHECK(std::string(first_utc.begin() + 2, first_utc.end()) == "500101000000Z");

    const auto gen = der::time(sys_days{2050y / January / 1} + 12h);
    CHECK(gen.front() == der::tag::kGeneralizedTime);
    CHECK(std::string(gen.begin() + 2, gen.end()) == "20500101120000Z");
    tm = openssl_time(gen);
    CHECK((tm.tm_year + 1900 == 2050 && tm.tm_mon == 0 && tm.tm_mday == 1 && tm.tm_hour == 12));
    const auto early = der::time(sys_days{1949y / December / 31});
    CHECK(std::string(early.begin() + 2, early.end()) == "19491231000000Z");
}

TEST_CASE("sha256 equals the EVP digest, whole or in pieces", "[ossl][digest]") {
    for (std::size_t n : {0, 1, 55, 56, 64, 1000}) {
        INFO(n);
        const auto data = counting(n);
        ossl::Sha256 expected{};
        unsigned len = 0;
        REQUIRE(EVP_Digest(data.data(), data.size(), expected.data(), &len, EVP_sha256(), nullptr) == 1);
        CHECK(ossl::sha256(data) == expected);
        const std::span<const std::uint8_t> all(data);
        CHECK(ossl::sha256({all.first(n / 2), all.subspan(n / 2)}) == expected);
    }
}
