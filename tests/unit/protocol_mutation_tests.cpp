// The always-built stand-in for tests/fuzz/protocol_fuzz.cpp: thousands of deterministic
// mutations of valid bodies must each decode to a value or an Error, never throw or crash
// (run it under -DSPLITCA_SANITIZE=ON to catch memory errors too).

#include "protocol/errors.hpp"
#include "protocol/leaf.hpp"

#include <catch2/catch_test_macros.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <variant>

namespace {

constexpr int kMutationsPerSeed = 2500;
constexpr int kMaxStackedMutations = 4;

// Fragments that push a JSON parser into its corners.
constexpr std::array<std::string_view, 16> kTokens = {
    "{",         "}",    "[",       "]",         "\"",
    ",",         ":",    "\\u0000", "\\ud800",   "1e999",
    "-0",        "null", "\xff",    "\"names\"", "18446744073709551616",
    "[[[[[[[[[["};

class Mutator {
public:
    explicit Mutator(std::uint32_t seed) : rng_(seed) {}

    std::string mutate(std::string body) {
        const int count = pick(1, kMaxStackedMutations);
        for (int i = 0; i < count; ++i) body = mutate_once(std::move(body));
        return body;
    }

private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    std::size_t position(const std::string& s) {
        return static_cast<std::size_t>(pick(0, static_cast<int>(s.size())));
    }

    std::string mutate_once(std::string s) {
        switch (pick(0, 6)) {
            case 0:  // flip a bit
                if (!s.empty()) s[position(s) % s.size()] ^= static_cast<char>(1 << pick(0, 7));
                break;
            case 1:  // random byte
                s.insert(position(s), 1, static_cast<char>(pick(0, 255)));
                break;
            case 2: {  // delete a range
                const auto at = position(s);
                s.erase(at, static_cast<std::size_t>(pick(1, 16)));
                break;
            }
            case 3: {  // duplicate a range (repeats keys, values, brackets)
                const auto at = position(s);
                const std::string piece = s.substr(at, static_cast<std::size_t>(pick(1, 32)));
                s.insert(position(s), piece);
                break;
            }
            case 4:  // a JSON-significant token
                s.insert(position(s), kTokens[static_cast<std::size_t>(pick(0, kTokens.size() - 1))]);
                break;
            case 5:  // truncate
                s.resize(position(s));
                break;
            default: {  // change a digit, to reach number limits
                const auto digit = s.find_first_of("0123456789", position(s));
                if (digit != std::string::npos) s[digit] = static_cast<char>('0' + pick(0, 9));
                break;
            }
        }
        return s;
    }

    std::mt19937 rng_;  // fixed algorithm and seed: the same mutations on every run
};

struct Tally {
    int values = 0;
    int errors = 0;
};

template <class T, class Decode, class Encode>
void run(const std::string& seed_body, std::uint32_t seed, Decode decode, Encode encode, Tally& tally) {
    Mutator mutator(seed);
    for (int i = 0; i < kMutationsPerSeed; ++i) {
        const std::string body = mutator.mutate(seed_body);
        protocol::Decoded<T> decoded;
        REQUIRE_NOTHROW(decoded = decode(body));
        if (const auto* value = std::get_if<T>(&decoded)) {
            ++tally.values;
            // Whatever was accepted must survive re-encoding unchanged.
            const auto again = decode(encode(*value));
            REQUIRE(std::holds_alternative<T>(again));
            REQUIRE(std::get<T>(again) == *value);
        } else {
            ++tally.errors;
            const auto& error = std::get<protocol::Error>(decoded);
            REQUIRE_FALSE(error.message.empty());
            // Garbage is the client's fault, never an internal error.
            REQUIRE(error.code != protocol::ErrorCode::internal_error);
        }
        REQUIRE_NOTHROW(protocol::decode_error(body));
    }
}

}  // namespace

TEST_CASE("mutated leaf requests decode to a value or an error", "[protocol][mutation]") {
    const std::string valid = protocol::encode_leaf_request(
        {{"example.com", "www.example.com", "*.example.org", "192.0.2.7"}, ossl::Bytes(91, 0x5a), 3600});
    Tally tally;
    for (std::uint32_t seed : {1U, 2U}) {
        run<protocol::LeafRequest>(valid, seed, protocol::decode_leaf_request, protocol::encode_leaf_request,
                                   tally);
    }
    // Both outcomes must occur, or the mutations are not exercising the decoder.
    CHECK(tally.values > 0);
    CHECK(tally.errors > tally.values);
}

TEST_CASE("mutated leaf responses decode to a value or an error", "[protocol][mutation]") {
    const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAK\n-----END CERTIFICATE-----\n";
    const std::string valid = protocol::encode_leaf_response(
        {pem, {pem}, "7f3a9c", "2024-05-01T12:00:00Z", "2024-05-01T18:00:00Z", 1234567});
    Tally tally;
    for (std::uint32_t seed : {3U, 4U}) {
        run<protocol::LeafResponse>(valid, seed, protocol::decode_leaf_response,
                                    protocol::encode_leaf_response, tally);
    }
    CHECK(tally.values > 0);
    CHECK(tally.errors > tally.values);
}
