#include "tls/client_hello.hpp"

#include <algorithm>
#include <optional>

namespace proxy::tls {

namespace {

constexpr std::uint8_t kHandshakeRecord = 0x16;
constexpr std::uint8_t kClientHelloType = 0x01;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordPayload = 16384 + 2048;  // TLSCiphertext bound (RFC 8446 5.2)
constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;
constexpr std::uint8_t kSniHostName = 0;

// A bounds-checked reader over the handshake bytes.
class Cursor {
public:
    explicit Cursor(std::span<const std::uint8_t> d) : d_(d) {}
    bool take(std::size_t n, std::span<const std::uint8_t>& out) {
        if (n > d_.size() - pos_) return false;
        out = d_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    bool u8(std::size_t& v) {
        std::span<const std::uint8_t> b;
        if (!take(1, b)) return false;
        v = b[0];
        return true;
    }
    bool u16(std::size_t& v) {
        std::span<const std::uint8_t> b;
        if (!take(2, b)) return false;
        v = (std::size_t{b[0]} << 8) | b[1];
        return true;
    }
    bool u24(std::size_t& v) {
        std::span<const std::uint8_t> b;
        if (!take(3, b)) return false;
        v = (std::size_t{b[0]} << 16) | (std::size_t{b[1]} << 8) | b[2];
        return true;
    }
    bool vec8(std::span<const std::uint8_t>& out) {
        std::size_t n;
        return u8(n) && take(n, out);
    }
    bool vec16(std::span<const std::uint8_t>& out) {
        std::size_t n;
        return u16(n) && take(n, out);
    }
    bool empty() const { return pos_ == d_.size(); }

private:
    std::span<const std::uint8_t> d_;
    std::size_t pos_ = 0;
};

bool parse_extensions(std::span<const std::uint8_t> exts, ClientHello& out) {
    Cursor c(exts);
    while (!c.empty()) {
        std::size_t type;
        std::span<const std::uint8_t> body;
        if (!c.u16(type) || !c.vec16(body)) return false;
        if (type == kExtServerName) {
            Cursor s(body);
            std::span<const std::uint8_t> list;
            if (!s.vec16(list) || !s.empty()) return false;
            Cursor l(list);
            while (!l.empty()) {
                std::size_t name_type;
                std::span<const std::uint8_t> name;
                if (!l.u8(name_type) || !l.vec16(name)) return false;
                if (name_type == kSniHostName && out.server_name.empty()) {
                    if (name.empty()) return false;
                    out.server_name.assign(name.begin(), name.end());
                }
            }
        } else if (type == kExtAlpn) {
            Cursor s(body);
            std::span<const std::uint8_t> list;
            if (!s.vec16(list) || !s.empty()) return false;
            Cursor l(list);
            while (!l.empty()) {
                std::span<const std::uint8_t> proto;
                if (!l.vec8(proto) || proto.empty()) return false;
                out.alpn.emplace_back(proto.begin(), proto.end());
            }
        } else if (type == kExtSupportedVersions) {
            Cursor s(body);
            std::span<const std::uint8_t> list;
            if (!s.vec8(list) || !s.empty() || list.empty() || list.size() % 2 != 0) return false;
            for (std::size_t i = 0; i < list.size(); i += 2)
                out.supported_versions.push_back(static_cast<std::uint16_t>((list[i] << 8) | list[i + 1]));
        }
    }
    return true;
}

}  // namespace

HelloStatus parse_client_hello(std::span<const std::uint8_t> data, std::size_t max_bytes, ClientHello& out) {
    if (data.empty()) return HelloStatus::need_more;
    if (data[0] != kHandshakeRecord) return HelloStatus::not_tls;
    // Gather handshake payload across records until the ClientHello's declared length is in.
    std::vector<std::uint8_t> hs;
    std::size_t pos = 0;
    std::optional<std::size_t> total;
    while (!total || hs.size() < *total) {
        if (pos + kRecordHeader > data.size()) return pos > max_bytes ? HelloStatus::too_large : HelloStatus::need_more;
        if (data[pos] != kHandshakeRecord || data[pos + 1] != 0x03) return HelloStatus::malformed;
        std::size_t len = (std::size_t{data[pos + 3]} << 8) | data[pos + 4];
        if (len == 0 || len > kMaxRecordPayload) return HelloStatus::malformed;
        if (pos + kRecordHeader + len > max_bytes) return HelloStatus::too_large;
        if (pos + kRecordHeader + len > data.size()) return HelloStatus::need_more;
        hs.insert(hs.end(), data.begin() + static_cast<long>(pos + kRecordHeader),
                  data.begin() + static_cast<long>(pos + kRecordHeader + len));
        pos += kRecordHeader + len;
        if (!total && hs.size() >= 4) {
            if (hs[0] != kClientHelloType) return HelloStatus::malformed;
            total = 4 + ((std::size_t{hs[1]} << 16) | (std::size_t{hs[2]} << 8) | hs[3]);
            if (*total > max_bytes) return HelloStatus::too_large;
        }
    }
    Cursor c(std::span<const std::uint8_t>(hs).first(*total));
    std::size_t type, length, version;
    std::span<const std::uint8_t> random, session_id, suites, compression, extensions;
    if (!c.u8(type) || !c.u24(length) || !c.u16(version) || !c.take(32, random) || !c.vec8(session_id) ||
        !c.vec16(suites) || !c.vec8(compression))
        return HelloStatus::malformed;
    if (suites.empty() || suites.size() % 2 != 0 || compression.empty()) return HelloStatus::malformed;
    out.legacy_version = static_cast<std::uint16_t>(version);
    for (std::size_t i = 0; i < suites.size(); i += 2)
        out.cipher_suites.push_back(static_cast<std::uint16_t>((suites[i] << 8) | suites[i + 1]));
    if (!c.empty()) {
        if (!c.vec16(extensions) || !c.empty()) return HelloStatus::malformed;
        if (!parse_extensions(extensions, out)) return HelloStatus::malformed;
    }
    return HelloStatus::complete;
}

std::vector<std::uint8_t> alpn_wire(const std::vector<std::string>& offered, const std::vector<std::string>& allowed) {
    std::vector<std::uint8_t> wire;
    for (const auto& p : offered) {
        if (p.size() > 255 || std::find(allowed.begin(), allowed.end(), p) == allowed.end()) continue;
        wire.push_back(static_cast<std::uint8_t>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
    }
    return wire;
}

}  // namespace proxy::tls
