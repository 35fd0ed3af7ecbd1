#include "audit/record.hpp"

#include "ossl/encoding.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace ca::audit {

Json to_json(const DecisionRecord& r) {
    if (r.decision != decision::kIssued && r.decision != decision::kDenied)
        throw std::invalid_argument("audit decision must be \"issued\" or \"denied\", not \"" + r.decision +
                                    "\"");
    Json j = Json::object();
    j[field::kType] = record_type::kDecision;
    j[field::kNodeName] = r.node_name;
    j[field::kNodeFingerprint] = r.node_fingerprint;
    j[field::kNames] = r.names;
    j[field::kDecision] = r.decision;
    j[field::kReason] = r.reason;
    j[field::kSerial] = r.serial;
    j[field::kSpkiSha256] = r.spki_sha256;
    j[field::kNotBefore] = r.not_before;
    j[field::kNotAfter] = r.not_after;
    if (r.requested_lifetime_s) j[field::kRequestedLifetime] = *r.requested_lifetime_s;
    return j;
}

Json to_json(const ServiceRecord& r) {
    Json j = Json::object();
    j[field::kType] = record_type::kService;
    j[field::kEvent] = r.event;
    j[field::kDetail] = r.detail;
    return j;
}

std::string canonical(const Json& value) {
    // Replacing invalid UTF-8 (instead of throwing) keeps a hostile name from making the
    // record unwritable; the replaced text is what gets hashed and verified.
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string rfc3339_millis(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(t.time_since_epoch());
    const std::time_t secs = static_cast<std::time_t>(floor<seconds>(ms).count());
    const auto millis = static_cast<int>((ms - floor<seconds>(ms)).count());
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];  // room for any int the compiler can imagine in each field
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return buf;
}

Sha256 record_hash(const Sha256& prev, std::string_view canonical_without_hash) {
    return ossl::sha256({std::span<const std::uint8_t>(prev), ossl::as_bytes(canonical_without_hash)});
}

std::string seal(Json& record, std::uint64_t seq, std::string_view time, const Sha256& prev,
                 Sha256& hash_out) {
    record[field::kSeq] = seq;
    record[field::kTime] = time;
    record[field::kPrev] = ossl::to_hex(prev);
    record.erase(field::kHash);
    std::string body = canonical(record);
    hash_out = record_hash(prev, body);
    const std::string hex = ossl::to_hex(hash_out);

    // The sealed line is the canonical dump with "hash" added. Keys are sorted, so splice the
    // member in before the first key after "hash" instead of serialising the record twice
    // (this runs under the log's lock). Falls back to a full dump if the spot is not found.
    const auto& members = record.get_ref<const Json::object_t&>();
    const std::string member = std::string("\"") + field::kHash + "\":\"" + hex + "\"";
    auto next = members.upper_bound(field::kHash);
    if (next == members.end()) {
        if (body.size() >= 2 && body.back() == '}') {
            body.insert(body.size() - 1, (body.size() > 2 ? "," : "") + member);
            record[field::kHash] = hex;
            return body;
        }
    } else {
        const std::string key = "\"" + next->first + "\":";
        const auto pos = body.find(key);
        if (pos != std::string::npos && pos > 0 && (body[pos - 1] == ',' || body[pos - 1] == '{')) {
            body.insert(pos, member + ",");
            record[field::kHash] = hex;
            return body;
        }
    }
    record[field::kHash] = hex;
    return canonical(record);
}

namespace {

bool plain(std::string_view s) {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') return false;
    }
    return true;
}

void member(std::string& out, std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":\"";
    out += value;
    out += '"';
}

}  // namespace

std::optional<PlainDecision> PlainDecision::from(const DecisionRecord& r) {
    if (r.decision != decision::kIssued && r.decision != decision::kDenied)
        throw std::invalid_argument("audit decision must be \"issued\" or \"denied\", not \"" + r.decision +
                                    "\"");
    if (!plain(r.node_name) || !plain(r.node_fingerprint) || !plain(r.reason) || !plain(r.serial) ||
        !plain(r.spki_sha256) || !plain(r.not_before) || !plain(r.not_after))
        return std::nullopt;
    for (const auto& n : r.names)
        if (!plain(n)) return std::nullopt;
    PlainDecision d;
    d.decision_ = std::string("{\"") + field::kDecision + "\":\"" + r.decision + "\"";
    std::string& p = d.to_prev_;
    p.reserve(160 + 32 * r.names.size());
    p += ",\"";
    p += field::kNames;
    p += "\":[";
    for (std::size_t i = 0; i < r.names.size(); ++i) {
        if (i > 0) p += ',';
        p += '"';
        p += r.names[i];
        p += '"';
    }
    p += ']';
    member(p, field::kNodeFingerprint, r.node_fingerprint);
    member(p, field::kNodeName, r.node_name);
    member(p, field::kNotAfter, r.not_after);
    member(p, field::kNotBefore, r.not_before);
    member(d.to_seq_, field::kReason, r.reason);
    if (r.requested_lifetime_s) {
        d.to_seq_ += ",\"";
        d.to_seq_ += field::kRequestedLifetime;
        d.to_seq_ += "\":";
        d.to_seq_ += std::to_string(*r.requested_lifetime_s);
    }
    member(d.to_time_, field::kSerial, r.serial);
    member(d.to_time_, field::kSpkiSha256, r.spki_sha256);
    return d;
}

std::string PlainDecision::seal(std::uint64_t seq, std::string_view time, const Sha256& prev, Sha256& hash_out) const {
    const std::string prev_hex = ossl::to_hex(prev);
    std::string rest;  // everything after the decision member
    rest.reserve(to_prev_.size() + to_seq_.size() + to_time_.size() + 200);
    rest += to_prev_;
    member(rest, field::kPrev, prev_hex);
    rest += to_seq_;
    rest += ",\"";
    rest += field::kSeq;
    rest += "\":";
    rest += std::to_string(seq);
    rest += to_time_;
    member(rest, field::kTime, time);
    member(rest, field::kType, record_type::kDecision);
    rest += '}';

    std::string body;
    body.reserve(decision_.size() + rest.size() + 80);
    body += decision_;
    body += rest;
    hash_out = record_hash(prev, body);
    body.resize(decision_.size());
    member(body, field::kHash, ossl::to_hex(hash_out));
    body += rest;
    return body;
}

std::optional<Sha256> parse_hash(std::string_view hex) {
    if (hex.size() != 2 * Sha256{}.size()) return std::nullopt;
    auto bytes = ossl::from_hex(hex);
    // Lower case only: one hash, one spelling, so a re-cased field cannot pass as canonical.
    if (!bytes || ossl::to_hex(*bytes) != hex) return std::nullopt;
    Sha256 out;
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
}

}  // namespace ca::audit
