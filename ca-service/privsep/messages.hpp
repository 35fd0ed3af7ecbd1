#pragma once
// The messages between the ca-service's front (network, TLS, HTTP, JSON) and its signer
// (PIN, HSM sessions, policy, registry, audit log), over a SOCK_SEQPACKET socketpair: one
// datagram per message, so a message is never split, merged or half-read.
//
// Layout, all integers big-endian:
//   u8 version (kVersion) | u8 type | u64 id | u32 epoch | body
// Body fields are u8 / u32 / u64 / i64 integers, bool as u8 0 or 1, strings and byte strings
// as u32 length + octets, lists as u32 count + items. Every field has a bound (below or in
// protocol/limits.hpp); the decoder refuses anything out of bounds, an unknown type or
// version, a non-0/1 bool, and trailing bytes. It never trusts a length before checking it
// against the bytes left, so it can be fed arbitrary input (see tests/fuzz).
//
// id: chosen by the requester, echoed by the reply. epoch: the signer's incarnation (the
// supervisor counts restarts); a signer drops requests stamped with another epoch, which
// were meant for a signer that died.

#include "authority/node_registry.hpp"
#include "ossl/encoding.hpp"
#include "protocol/errors.hpp"
#include "protocol/identity.hpp"
#include "protocol/leaf.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace ca::privsep {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 1 + 1 + 8 + 4;
// The largest message either side sends or accepts (an audit tail of 1,000 records fits).
inline constexpr std::size_t kMaxMessageBytes = 1024 * 1024;
inline constexpr std::size_t kMaxCertificateBytes = 16 * 1024;  // a client certificate, DER
inline constexpr std::size_t kMaxTargetLength = 256;            // a node name or fingerprint
inline constexpr std::size_t kMaxReasonLength = 4096;           // error messages, reasons
inline constexpr std::size_t kMaxPemBytes = 64 * 1024;          // certificates, chains
inline constexpr std::size_t kMaxRecordBytes = 64 * 1024;       // one audit record line
inline constexpr std::size_t kMaxTextBytes = 512 * 1024;        // metrics text
inline constexpr std::size_t kMaxListItems = 100'000;           // nodes, revocations, records
inline constexpr std::uint32_t kMaxTailRecords = 1000;

// ---- front -> signer -------------------------------------------------------------------------

// Every request names the client by the certificate its TLS handshake verified; the signer
// verifies it again against the service CA and takes name and role from it.
struct Attach {};  // a front (re)starting asks for the signer's Hello
struct IssueRequest {
    ossl::Bytes client_certificate;
    protocol::LeafRequest leaf;
};
struct RevokeRequest {
    ossl::Bytes client_certificate;
    std::string target;  // node name or certificate SHA-256
};
struct UnrevokeRequest {
    ossl::Bytes client_certificate;
    std::string target;
};
struct NodesRequest {
    ossl::Bytes client_certificate;
};
struct AuditTailRequest {
    ossl::Bytes client_certificate;
    std::uint32_t count = 0;  // 1..kMaxTailRecords
};
struct HealthRequest {};
// A node renewing its own identity: the certificate it authenticated with, and a CSR for a
// key it has just made.
struct RenewIdentityRequest {
    ossl::Bytes client_certificate;
    ossl::Bytes csr;
};

// ---- signer -> front -------------------------------------------------------------------------

struct Hello {
    std::string ca_bundle_pem;         // issuing CA then root, for GET /v1/ca
    std::vector<std::string> revoked;  // names and fingerprints, so the front can refuse early
};
struct Issued {
    protocol::LeafResponse leaf;
};
struct Refused {
    protocol::Error error;
    std::uint32_t retry_after_seconds = 0;
};
struct RevocationDone {
    std::string target;  // normalised
    bool revoked = false;
    bool changed = false;
    std::uint64_t audit_seq = 0;
    std::vector<std::string> revoked_now;
};
struct NodeList {
    std::vector<NodeStats> nodes;
    std::vector<std::string> revoked;
};
struct AuditTail {
    std::vector<std::string> records;  // oldest first
    bool truncated = false;            // fewer than asked, to fit kMaxMessageBytes
};
struct HealthReport {
    bool hsm_available = false;
    std::uint64_t hsm_reconnects = 0;
    std::string hsm_error;
    bool audit_writable = false;
    std::string audit_error;
    std::string checkpoint_error;
    std::optional<std::uint64_t> audit_last_seq;
    std::string metrics;  // the signer's Prometheus text
    std::vector<std::string> revoked;
};
struct IdentityRenewed {
    protocol::RenewedIdentity identity;
};
// Written by the supervisor into the signer's end when the signer died: the front fails
// what is in flight and answers 503 with the reason until the next Hello.
struct SignerDown {
    std::string reason;
};

// The type byte on the wire is the alternative's index + 1.
using Body = std::variant<Attach, IssueRequest, RevokeRequest, UnrevokeRequest, NodesRequest, AuditTailRequest,
                          HealthRequest, Hello, Issued, Refused, RevocationDone, NodeList, AuditTail, HealthReport,
                          SignerDown, RenewIdentityRequest, IdentityRenewed>;

struct Message {
    std::uint64_t id = 0;
    std::uint32_t epoch = 0;
    Body body;
};

// Throws std::length_error when the message would exceed kMaxMessageBytes or a field its
// bound: the sender's bug, never sent half.
std::vector<std::uint8_t> encode(const Message& message);

struct DecodeError {
    std::string problem;                // what is wrong, for the log
    std::optional<std::uint64_t> id;    // when the header was readable: who to refuse
    std::optional<std::uint32_t> epoch;
};
std::variant<Message, DecodeError> decode(std::span<const std::uint8_t> bytes);

// "issue", "hello", ...: for logs.
const char* type_name(const Body& body);

}  // namespace ca::privsep
