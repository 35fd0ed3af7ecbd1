#include "privsep/messages.hpp"

#include "protocol/limits.hpp"

#include <chrono>
#include <stdexcept>
#include <iterator>
#include <type_traits>

namespace ca::privsep {

namespace {

class Writer {
public:
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u32(std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
    }
    void u64(std::uint64_t v) {
        for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
    }
    void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
    void boolean(bool v) { u8(v ? 1 : 0); }
    void bytes(std::span<const std::uint8_t> v, std::size_t max, const char* field) {
        if (v.size() > max) throw std::length_error(std::string("privsep: ") + field + " over its bound");
        u32(static_cast<std::uint32_t>(v.size()));
        out_.insert(out_.end(), v.begin(), v.end());
    }
    void string(std::string_view v, std::size_t max, const char* field) {
        bytes({reinterpret_cast<const std::uint8_t*>(v.data()), v.size()}, max, field);
    }
    void strings(const std::vector<std::string>& v, std::size_t max_items, std::size_t max_each, const char* field) {
        if (v.size() > max_items) throw std::length_error(std::string("privsep: too many ") + field);
        u32(static_cast<std::uint32_t>(v.size()));
        for (const auto& s : v) string(s, max_each, field);
    }
    std::vector<std::uint8_t> take() {
        if (out_.size() > kMaxMessageBytes) throw std::length_error("privsep: message over kMaxMessageBytes");
        return std::move(out_);
    }

private:
    std::vector<std::uint8_t> out_;
};

struct Malformed {
    std::string problem;
};

class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
    std::uint8_t u8(const char* field) {
        need(1, field);
        return in_[pos_++];
    }
    std::uint32_t u32(const char* field) {
        need(4, field);
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_++];
        return v;
    }
    std::uint64_t u64(const char* field) {
        need(8, field);
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | in_[pos_++];
        return v;
    }
    std::int64_t i64(const char* field) { return static_cast<std::int64_t>(u64(field)); }
    bool boolean(const char* field) {
        const auto v = u8(field);
        if (v > 1) throw Malformed{std::string(field) + ": a boolean must be 0 or 1"};
        return v == 1;
    }
    std::span<const std::uint8_t> raw(std::size_t max, const char* field) {
        const std::uint32_t n = u32(field);
        if (n > max) throw Malformed{std::string(field) + ": " + std::to_string(n) + " bytes, over its bound of " +
                                     std::to_string(max)};
        need(n, field);
        auto out = in_.subspan(pos_, n);
        pos_ += n;
        return out;
    }
    ossl::Bytes bytes(std::size_t max, const char* field) {
        auto r = raw(max, field);
        return {r.begin(), r.end()};
    }
    std::string string(std::size_t max, const char* field) {
        auto r = raw(max, field);
        return {reinterpret_cast<const char*>(r.data()), r.size()};
    }
    std::uint32_t count(std::size_t max, const char* field) {
        const std::uint32_t n = u32(field);
        if (n > max) throw Malformed{std::string(field) + ": " + std::to_string(n) + " items, over its bound of " +
                                     std::to_string(max)};
        // Each item takes at least 4 bytes: a count beyond what is left is a lie.
        if (n > (in_.size() - pos_) / 4 + 1) throw Malformed{std::string(field) + ": more items than bytes left"};
        return n;
    }
    std::vector<std::string> strings(std::size_t max_items, std::size_t max_each, const char* field) {
        const auto n = count(max_items, field);
        std::vector<std::string> out;
        out.reserve(n);
        for (std::uint32_t i = 0; i < n; ++i) out.push_back(string(max_each, field));
        return out;
    }
    void end() const {
        if (pos_ != in_.size())
            throw Malformed{std::to_string(in_.size() - pos_) + " bytes after the end of the message"};
    }

private:
    void need(std::size_t n, const char* field) const {
        if (in_.size() - pos_ < n) throw Malformed{std::string("message ends inside ") + field};
    }
    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
};

// ---- bodies ----------------------------------------------------------------------------------

constexpr std::size_t kFingerprintHex = 64;
constexpr std::size_t kMaxNodeName = 256;
constexpr std::size_t kMaxErrorCodeLength = 64;
constexpr std::size_t kMaxRfc3339Length = 40;
// system_clock counts nanoseconds in 64 bits: it ends in 2262. 9e9 s is in 2255.
constexpr std::int64_t kMaxUnixSeconds = 9'000'000'000;

void put(Writer&, const Attach&) {}
void put(Writer&, const HealthRequest&) {}
void put(Writer& w, const IssueRequest& m) {
    w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate");
    w.strings(m.leaf.names, protocol::kMaxNames, protocol::kMaxNameLength, "names");
    w.bytes(m.leaf.public_key, protocol::kMaxPublicKeyBytes, "public_key");
    w.boolean(m.leaf.lifetime_seconds.has_value());
    w.u32(m.leaf.lifetime_seconds.value_or(0));
}
void put(Writer& w, const RevokeRequest& m) {
    w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate");
    w.string(m.target, kMaxTargetLength, "target");
}
void put(Writer& w, const UnrevokeRequest& m) {
    w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate");
    w.string(m.target, kMaxTargetLength, "target");
}
void put(Writer& w, const NodesRequest& m) { w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate"); }
void put(Writer& w, const AuditTailRequest& m) {
    w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate");
    w.u32(m.count);
}
void put(Writer& w, const Hello& m) {
    w.string(m.ca_bundle_pem, kMaxPemBytes, "ca_bundle");
    w.strings(m.revoked, kMaxListItems, kMaxTargetLength, "revoked");
}
void put(Writer& w, const Issued& m) {
    w.string(m.leaf.certificate_pem, kMaxPemBytes, "certificate");
    w.strings(m.leaf.chain_pem, protocol::kMaxChainLength, kMaxPemBytes, "chain");
    w.string(m.leaf.serial_hex, protocol::kMaxSerialHexLength, "serial");
    w.string(m.leaf.not_before, kMaxRfc3339Length, "not_before");
    w.string(m.leaf.not_after, kMaxRfc3339Length, "not_after");
    w.u64(m.leaf.audit_seq);
}
void put(Writer& w, const Refused& m) {
    w.string(protocol::to_string(m.error.code), kMaxErrorCodeLength, "error_code");
    w.string(m.error.message, kMaxReasonLength, "error_message");
    w.u32(m.retry_after_seconds);
}
void put(Writer& w, const RevocationDone& m) {
    w.string(m.target, kMaxTargetLength, "target");
    w.boolean(m.revoked);
    w.boolean(m.changed);
    w.u64(m.audit_seq);
    w.strings(m.revoked_now, kMaxListItems, kMaxTargetLength, "revoked");
}
void put(Writer& w, const NodeList& m) {
    if (m.nodes.size() > kMaxListItems) throw std::length_error("privsep: too many nodes");
    w.u32(static_cast<std::uint32_t>(m.nodes.size()));
    for (const auto& n : m.nodes) {
        w.string(n.name, kMaxNodeName, "node_name");
        w.string(n.last_fingerprint, kFingerprintHex, "fingerprint");
        w.u64(n.issued);
        w.u64(n.denied);
        w.i64(std::chrono::duration_cast<std::chrono::seconds>(n.last_seen.time_since_epoch()).count());
        w.boolean(n.revoked);
    }
    w.strings(m.revoked, kMaxListItems, kMaxTargetLength, "revoked");
}
void put(Writer& w, const AuditTail& m) {
    w.strings(m.records, kMaxTailRecords, kMaxRecordBytes, "records");
    w.boolean(m.truncated);
}
void put(Writer& w, const HealthReport& m) {
    w.boolean(m.hsm_available);
    w.u64(m.hsm_reconnects);
    w.string(m.hsm_error, kMaxReasonLength, "hsm_error");
    w.boolean(m.audit_writable);
    w.string(m.audit_error, kMaxReasonLength, "audit_error");
    w.string(m.checkpoint_error, kMaxReasonLength, "checkpoint_error");
    w.boolean(m.audit_last_seq.has_value());
    w.u64(m.audit_last_seq.value_or(0));
    w.string(m.metrics, kMaxTextBytes, "metrics");
    w.strings(m.revoked, kMaxListItems, kMaxTargetLength, "revoked");
}
void put(Writer& w, const SignerDown& m) { w.string(m.reason, kMaxReasonLength, "reason"); }
void put(Writer& w, const RenewIdentityRequest& m) {
    w.bytes(m.client_certificate, kMaxCertificateBytes, "client_certificate");
    w.bytes(m.csr, protocol::kMaxCsrBytes, "csr");
}
void put(Writer& w, const IdentityRenewed& m) {
    w.string(m.identity.certificate_pem, kMaxPemBytes, "certificate");
    w.string(m.identity.serial_hex, protocol::kMaxSerialHexLength, "serial");
    w.string(m.identity.not_after, kMaxRfc3339Length, "not_after");
    w.u64(m.identity.audit_seq);
}

template <class T>
T get(Reader& r);

template <>
Attach get(Reader&) { return {}; }
template <>
HealthRequest get(Reader&) { return {}; }
template <>
IssueRequest get(Reader& r) {
    IssueRequest m;
    m.client_certificate = r.bytes(kMaxCertificateBytes, "client_certificate");
    m.leaf.names = r.strings(protocol::kMaxNames, protocol::kMaxNameLength, "names");
    m.leaf.public_key = r.bytes(protocol::kMaxPublicKeyBytes, "public_key");
    const bool has_lifetime = r.boolean("has_lifetime");
    const auto lifetime = r.u32("lifetime_seconds");
    if (has_lifetime) {
        if (lifetime == 0 || lifetime > protocol::kMaxLifetimeSeconds)
            throw Malformed{"lifetime_seconds out of range"};
        m.leaf.lifetime_seconds = lifetime;
    } else if (lifetime != 0) {
        throw Malformed{"lifetime_seconds without has_lifetime"};
    }
    return m;
}
template <>
RevokeRequest get(Reader& r) {
    RevokeRequest m;
    m.client_certificate = r.bytes(kMaxCertificateBytes, "client_certificate");
    m.target = r.string(kMaxTargetLength, "target");
    return m;
}
template <>
UnrevokeRequest get(Reader& r) {
    UnrevokeRequest m;
    m.client_certificate = r.bytes(kMaxCertificateBytes, "client_certificate");
    m.target = r.string(kMaxTargetLength, "target");
    return m;
}
template <>
NodesRequest get(Reader& r) {
    return {r.bytes(kMaxCertificateBytes, "client_certificate")};
}
template <>
AuditTailRequest get(Reader& r) {
    AuditTailRequest m;
    m.client_certificate = r.bytes(kMaxCertificateBytes, "client_certificate");
    m.count = r.u32("count");
    if (m.count == 0 || m.count > kMaxTailRecords) throw Malformed{"count out of range"};
    return m;
}
template <>
Hello get(Reader& r) {
    Hello m;
    m.ca_bundle_pem = r.string(kMaxPemBytes, "ca_bundle");
    m.revoked = r.strings(kMaxListItems, kMaxTargetLength, "revoked");
    return m;
}
template <>
Issued get(Reader& r) {
    Issued m;
    m.leaf.certificate_pem = r.string(kMaxPemBytes, "certificate");
    m.leaf.chain_pem = r.strings(protocol::kMaxChainLength, kMaxPemBytes, "chain");
    m.leaf.serial_hex = r.string(protocol::kMaxSerialHexLength, "serial");
    m.leaf.not_before = r.string(kMaxRfc3339Length, "not_before");
    m.leaf.not_after = r.string(kMaxRfc3339Length, "not_after");
    m.leaf.audit_seq = r.u64("audit_seq");
    return m;
}
template <>
Refused get(Reader& r) {
    Refused m;
    const auto code = r.string(kMaxErrorCodeLength, "error_code");
    const auto parsed = protocol::error_code_from_string(code);
    if (!parsed) throw Malformed{"unknown error code"};
    m.error.code = *parsed;
    m.error.message = r.string(kMaxReasonLength, "error_message");
    m.retry_after_seconds = r.u32("retry_after");
    return m;
}
template <>
RevocationDone get(Reader& r) {
    RevocationDone m;
    m.target = r.string(kMaxTargetLength, "target");
    m.revoked = r.boolean("revoked");
    m.changed = r.boolean("changed");
    m.audit_seq = r.u64("audit_seq");
    m.revoked_now = r.strings(kMaxListItems, kMaxTargetLength, "revoked");
    return m;
}
template <>
NodeList get(Reader& r) {
    NodeList m;
    const auto n = r.count(kMaxListItems, "nodes");
    for (std::uint32_t i = 0; i < n; ++i) {
        NodeStats s;
        s.name = r.string(kMaxNodeName, "node_name");
        s.last_fingerprint = r.string(kFingerprintHex, "fingerprint");
        s.issued = r.u64("issued");
        s.denied = r.u64("denied");
        const auto seen = r.i64("last_seen");
        // Seconds since 1970, within what the clock's type holds.
        if (seen < 0 || seen > kMaxUnixSeconds) throw Malformed{"last_seen out of range"};
        s.last_seen = std::chrono::system_clock::time_point(std::chrono::seconds(seen));
        s.revoked = r.boolean("revoked");
        m.nodes.push_back(std::move(s));
    }
    m.revoked = r.strings(kMaxListItems, kMaxTargetLength, "revoked");
    return m;
}
template <>
AuditTail get(Reader& r) {
    AuditTail m;
    m.records = r.strings(kMaxTailRecords, kMaxRecordBytes, "records");
    m.truncated = r.boolean("truncated");
    return m;
}
template <>
HealthReport get(Reader& r) {
    HealthReport m;
    m.hsm_available = r.boolean("hsm_available");
    m.hsm_reconnects = r.u64("hsm_reconnects");
    m.hsm_error = r.string(kMaxReasonLength, "hsm_error");
    m.audit_writable = r.boolean("audit_writable");
    m.audit_error = r.string(kMaxReasonLength, "audit_error");
    m.checkpoint_error = r.string(kMaxReasonLength, "checkpoint_error");
    const bool has_seq = r.boolean("has_last_seq");
    const auto seq = r.u64("last_seq");
    if (has_seq) m.audit_last_seq = seq;
    else if (seq != 0) throw Malformed{"last_seq without has_last_seq"};
    m.metrics = r.string(kMaxTextBytes, "metrics");
    m.revoked = r.strings(kMaxListItems, kMaxTargetLength, "revoked");
    return m;
}
template <>
SignerDown get(Reader& r) {
    return {r.string(kMaxReasonLength, "reason")};
}
template <>
RenewIdentityRequest get(Reader& r) {
    RenewIdentityRequest m;
    m.client_certificate = r.bytes(kMaxCertificateBytes, "client_certificate");
    m.csr = r.bytes(protocol::kMaxCsrBytes, "csr");
    if (m.csr.empty()) throw Malformed{"empty csr"};
    return m;
}
template <>
IdentityRenewed get(Reader& r) {
    IdentityRenewed m;
    m.identity.certificate_pem = r.string(kMaxPemBytes, "certificate");
    m.identity.serial_hex = r.string(protocol::kMaxSerialHexLength, "serial");
    m.identity.not_after = r.string(kMaxRfc3339Length, "not_after");
    m.identity.audit_seq = r.u64("audit_seq");
    return m;
}

constexpr const char* kTypeNames[] = {"attach",   "issue",     "revoke",       "unrevoke", "nodes",
                                     "audit_tail", "health",  "hello",        "issued",   "refused",
                                     "revocation", "node_list", "audit_records", "health_report", "signer_down",
                                     "renew_identity", "identity_renewed"};
static_assert(std::size(kTypeNames) == std::variant_size_v<Body>);

template <std::size_t I = 0>
Body get_body(std::size_t index, Reader& r) {
    if constexpr (I < std::variant_size_v<Body>) {
        if (index == I) return Body(std::in_place_index<I>, get<std::variant_alternative_t<I, Body>>(r));
        return get_body<I + 1>(index, r);
    } else {
        throw Malformed{"unknown message type"};
    }
}

}  // namespace

std::vector<std::uint8_t> encode(const Message& message) {
    Writer w;
    w.u8(kVersion);
    w.u8(static_cast<std::uint8_t>(message.body.index() + 1));
    w.u64(message.id);
    w.u32(message.epoch);
    std::visit([&](const auto& body) { put(w, body); }, message.body);
    return w.take();
}

std::variant<Message, DecodeError> decode(std::span<const std::uint8_t> bytes) {
    if (bytes.size() > kMaxMessageBytes) return DecodeError{"message over " + std::to_string(kMaxMessageBytes) + " bytes", {}, {}};
    if (bytes.size() < kHeaderBytes) return DecodeError{"message shorter than its header", {}, {}};
    Reader r(bytes);
    const auto version = r.u8("version");
    const auto type = r.u8("type");
    Message m;
    m.id = r.u64("id");
    m.epoch = r.u32("epoch");
    if (version != kVersion)
        return DecodeError{"protocol version " + std::to_string(version) + ", expected " + std::to_string(kVersion),
                           m.id, m.epoch};
    if (type == 0 || type > std::variant_size_v<Body>)
        return DecodeError{"unknown message type " + std::to_string(type), m.id, m.epoch};
    try {
        m.body = get_body(type - 1, r);
        r.end();
    } catch (const Malformed& e) {
        return DecodeError{"malformed " + std::string(kTypeNames[type - 1]) + " message: " + e.problem, m.id, m.epoch};
    }
    return m;
}

const char* type_name(const Body& body) {
    return kTypeNames[body.index()];
}

}  // namespace ca::privsep
