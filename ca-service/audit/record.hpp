#pragma once
// What an audit record says and how it is written down.
//
// One record is one line of canonical JSON: an object whose keys are sorted (nlohmann::json
// keeps objects in a std::map) dumped without whitespace, invalid UTF-8 replaced by U+FFFD.
// Every record carries
//   seq   0-based position in the whole log, continuous across rotated files
//   time  RFC 3339 UTC with milliseconds, when the record was appended
//   type  "decision" | "service" | "checkpoint" | "rotation"
//   prev  hex hash of the previous record (64 zeros for seq 0)
//   hash  hex SHA-256( prev bytes || canonical JSON of the record without "hash" )
// plus the fields of its type. The Merkle leaf of a record is SHA-256(0x00 || line bytes)
// (RFC 6962), so a signed tree root commits to the exact bytes on disk.

#include "ossl/digest.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ca::audit {

using Json = nlohmann::json;
using ossl::Sha256;

namespace record_type {
inline constexpr std::string_view kDecision = "decision";
inline constexpr std::string_view kService = "service";
inline constexpr std::string_view kCheckpoint = "checkpoint";
inline constexpr std::string_view kRotation = "rotation";
}  // namespace record_type

namespace decision {
inline constexpr std::string_view kIssued = "issued";
inline constexpr std::string_view kDenied = "denied";
}  // namespace decision

// JSON field names; the verifier and `ca-audit show` read the same names.
namespace field {
inline constexpr const char* kSeq = "seq";
inline constexpr const char* kTime = "time";
inline constexpr const char* kType = "type";
inline constexpr const char* kPrev = "prev";
inline constexpr const char* kHash = "hash";
// decision
inline constexpr const char* kNodeName = "node_name";
inline constexpr const char* kNodeFingerprint = "node_fingerprint";
inline constexpr const char* kNames = "names";
inline constexpr const char* kDecision = "decision";
inline constexpr const char* kReason = "reason";
inline constexpr const char* kSerial = "serial";
inline constexpr const char* kSpkiSha256 = "spki_sha256";
inline constexpr const char* kNotBefore = "not_before";
inline constexpr const char* kNotAfter = "not_after";
inline constexpr const char* kRequestedLifetime = "requested_lifetime_s";
// service
inline constexpr const char* kEvent = "event";
inline constexpr const char* kDetail = "detail";
// checkpoint
inline constexpr const char* kTreeSize = "tree_size";
inline constexpr const char* kHead = "head";
inline constexpr const char* kMerkleRoot = "merkle_root";
inline constexpr const char* kSignedAt = "signed_at";
inline constexpr const char* kSignature = "signature";
inline constexpr const char* kSignerSpki = "signer_spki_sha256";
// rotation
inline constexpr const char* kPreviousFile = "previous_file";
inline constexpr const char* kMerkleFrontier = "merkle_frontier";
}  // namespace field

// One issuance decision: what a node asked for and what the ca-service answered.
struct DecisionRecord {
    std::string node_name;           // subject CN of the node's client certificate
    std::string node_fingerprint;    // hex SHA-256 of the node's certificate (DER)
    std::vector<std::string> names;  // the names requested
    std::string decision;            // decision::kIssued or decision::kDenied
    std::string reason;              // error code when denied, "" when issued
    std::string serial;              // hex serial of the issued certificate, "" when denied
    std::string spki_sha256;         // hex SHA-256 of the requested public key (DER SPKI)
    std::string not_before;          // RFC 3339, "" when denied
    std::string not_after;           // RFC 3339, "" when denied
    std::optional<std::uint64_t> requested_lifetime_s;  // what the node asked for, if it asked
};

// A service life-cycle event (start, stop, configuration reload...).
struct ServiceRecord {
    std::string event;   // e.g. "start", "stop"
    std::string detail;  // free text: version, configuration summary
};

// The payload of a record (its type and type fields; no seq/time/prev/hash yet).
// Throws std::invalid_argument when the decision is neither "issued" nor "denied".
Json to_json(const DecisionRecord& record);
Json to_json(const ServiceRecord& record);

// The canonical serialization described above.
std::string canonical(const Json& value);

// RFC 3339 UTC with milliseconds: "2024-05-01T12:00:00.123Z".
std::string rfc3339_millis(std::chrono::system_clock::time_point t);

inline constexpr Sha256 kZeroHash{};

// Completes `record` with seq, time and prev, computes its hash and stores it in the record.
// Returns the line to write (without newline); `hash_out` receives the hash.
std::string seal(Json& record, std::uint64_t seq, std::string_view time, const Sha256& prev,
                 Sha256& hash_out);

// A decision record's canonical text without seq, time, prev and hash, built directly
// (no JSON tree) for the common case of fields that need no escaping: printable ASCII
// without quotes or backslashes. sealed() then gives exactly what to_json + seal would.
// nullopt when a field needs escaping (use to_json + seal). Throws std::invalid_argument
// like to_json for a decision other than "issued"/"denied".
class PlainDecision {
public:
    static std::optional<PlainDecision> from(const DecisionRecord& record);
    std::string seal(std::uint64_t seq, std::string_view time, const Sha256& prev, Sha256& hash_out) const;

private:
    // Sorted keys: decision [hash] names node_fingerprint node_name not_after not_before [prev]
    // reason requested_lifetime_s [seq] serial spki_sha256 [time] type
    std::string decision_;    // {"decision":"..."
    std::string to_prev_;     // ,"names":[...],...,"not_before":"..."
    std::string to_seq_;      // ,"reason":"..."[,"requested_lifetime_s":N]
    std::string to_time_;     // ,"serial":"...","spki_sha256":"..."
};

// SHA-256(prev || canonical_without_hash).
Sha256 record_hash(const Sha256& prev, std::string_view canonical_without_hash);

// Parses 64 hex digits; nullopt otherwise.
std::optional<Sha256> parse_hash(std::string_view hex);

}  // namespace ca::audit
