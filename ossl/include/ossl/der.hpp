#pragma once
// A minimal DER writer: enough to assemble certificates from pre-encoded parts without
// OpenSSL's per-call encoder machinery (the issuance hot path).

#include "ossl/encoding.hpp"

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>

namespace der {

using ossl::Bytes;
using Span = std::span<const std::uint8_t>;

namespace tag {
inline constexpr std::uint8_t kBoolean = 0x01;
inline constexpr std::uint8_t kInteger = 0x02;
inline constexpr std::uint8_t kBitString = 0x03;
inline constexpr std::uint8_t kOctetString = 0x04;
inline constexpr std::uint8_t kOid = 0x06;
inline constexpr std::uint8_t kUtf8String = 0x0c;
inline constexpr std::uint8_t kUtcTime = 0x17;
inline constexpr std::uint8_t kGeneralizedTime = 0x18;
inline constexpr std::uint8_t kSequence = 0x30;
inline constexpr std::uint8_t kSet = 0x31;
inline constexpr std::uint8_t context(unsigned n, bool constructed) {
    return static_cast<std::uint8_t>(0x80 | (constructed ? 0x20 : 0) | n);
}
}  // namespace tag

// Appends tag, definite length and content to out.
void append_tlv(Bytes& out, std::uint8_t tag, Span content);
void append_header(Bytes& out, std::uint8_t tag, std::size_t content_length);
Bytes tlv(std::uint8_t tag, Span content);
Bytes sequence(std::initializer_list<Span> parts);

// INTEGER from big-endian magnitude bytes (a leading zero is added when the top bit is set).
Bytes unsigned_integer(Span magnitude);
Bytes bit_string(Span bits);  // zero unused bits
Bytes octet_string(Span bytes);
// UTCTime for years 1950-2049, GeneralizedTime otherwise (RFC 5280 section 4.1.2.5).
Bytes time(std::chrono::system_clock::time_point t);

// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
Bytes certificate(Span tbs, Span algorithm_identifier, Span signature);

}  // namespace der

namespace der {

// One TLV read from the front of `input`: its tag, its content, and what follows it.
struct Element {
    std::uint8_t tag;
    Span content;
    Span rest;
};
// Strict DER (definite, minimal lengths, single-byte tags); nullopt when malformed.
std::optional<Element> read(Span input);

// The subjectPublicKey bits of a DER SubjectPublicKeyInfo (BIT STRING content without its
// unused-bits byte); nullopt when malformed.
std::optional<Span> public_key_bits(Span spki);

}  // namespace der
