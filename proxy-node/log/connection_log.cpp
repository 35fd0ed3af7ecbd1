#include "log/connection_log.hpp"

#include "protocol/json_text.hpp"
#include "protocol/time.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace proxy {

namespace {

nlohmann::json tls_json(const TlsSummary& t) {
    if (t.version.empty()) return nullptr;
    return {{"version", t.version}, {"cipher", t.cipher}, {"alpn", t.alpn}, {"resumed", t.resumed}};
}

// The line as nlohmann's dump() writes it (keys sorted, no spaces), written directly: building
// the JSON tree took about 3% of the node's CPU on short connections. nullopt when a field
// holds a byte outside ASCII, which the tree's dump() then handles (invalid UTF-8 replaced).
class AsciiLine {
public:
    explicit AsciiLine(std::size_t reserve) { out_.reserve(reserve); }
    AsciiLine& key(std::string_view k) {
        out_.push_back(first_ ? '{' : ',');
        first_ = false;
        out_.push_back('"');
        out_ += k;
        out_ += "\":";
        return *this;
    }
    void string(std::string_view v) { ok_ = protocol::json_text::append_ascii_string(out_, v) && ok_; }
    void number(std::uint64_t v) { out_ += std::to_string(v); }
    // Microseconds as milliseconds, as dump() writes the double us / 1000: shortest digits, at
    // least one decimal.
    void milliseconds_of_us(long long us) {
        out_ += std::to_string(us / 1000);
        out_.push_back('.');
        int frac = static_cast<int>(us % 1000);
        int digits = 3;
        while (digits > 1 && frac % 10 == 0) {
            frac /= 10;
            --digits;
        }
        const std::string f = std::to_string(frac);
        out_.append(static_cast<std::size_t>(digits) - f.size(), '0');
        out_ += f;
    }
    void tls(const TlsSummary& t) {
        if (t.version.empty()) {
            out_ += "null";
            return;
        }
        out_ += "{\"alpn\":";
        string(t.alpn);
        out_ += ",\"cipher\":";
        string(t.cipher);
        out_ += t.resumed ? ",\"resumed\":true" : ",\"resumed\":false";
        out_ += ",\"version\":";
        string(t.version);
        out_.push_back('}');
    }
    std::optional<std::string> finish() && {
        if (!ok_) return std::nullopt;
        out_.push_back('}');
        return std::move(out_);
    }

private:
    std::string out_;
    bool first_ = true;
    bool ok_ = true;
};

const std::string& reason_of(const ConnectionRecord& r, std::string& storage) {
    if (!r.reason_text.empty()) return r.reason_text;
    storage = code(r.reason);
    return storage;
}

std::optional<std::string> ascii_line(const ConnectionRecord& r, std::string_view node, long long duration_us) {
    std::string reason;
    AsciiLine line(640);
    line.key("bytes_client_to_upstream").number(r.bytes_client_to_upstream);
    line.key("bytes_upstream_to_client").number(r.bytes_upstream_to_client);
    line.key("client").string(r.client);
    line.key("client_tls").tls(r.client_tls);
    line.key("decision").string(r.decision);
    line.key("detail").string(r.detail);
    line.key("duration_ms").milliseconds_of_us(duration_us);
    line.key("host").string(r.requested_host);
    if (!r.inspection.empty()) line.key("inspection").string(r.inspection);
    line.key("leaf").string(r.leaf);
    line.key("mode").string(r.mode);
    line.key("node").string(node);
    line.key("reason").string(reason_of(r, reason));
    if (!r.rule.empty()) line.key("rule").string(r.rule);
    line.key("target").string(r.connect_target);
    line.key("ts").string(protocol::rfc3339(r.started));
    line.key("type").string("connection");
    line.key("upstream").string(r.upstream);
    line.key("upstream_cert_sha256").string(r.upstream_cert_sha256);
    line.key("upstream_tls").tls(r.upstream_tls);
    return std::move(line).finish();
}

std::string tree_line(const ConnectionRecord& r, const std::string& node, long long duration_us) {
    std::string reason;
    nlohmann::json j = {
        {"ts", protocol::rfc3339(r.started)},
        {"type", "connection"},
        {"node", node},
        {"client", r.client},
        {"mode", r.mode},
        {"host", r.requested_host},
        {"target", r.connect_target},
        {"upstream", r.upstream},
        {"client_tls", tls_json(r.client_tls)},
        {"upstream_tls", tls_json(r.upstream_tls)},
        {"upstream_cert_sha256", r.upstream_cert_sha256},
        {"leaf", r.leaf},
        {"decision", r.decision},
        {"reason", reason_of(r, reason)},
        {"detail", r.detail},
        {"bytes_client_to_upstream", r.bytes_client_to_upstream},
        {"bytes_upstream_to_client", r.bytes_upstream_to_client},
        {"duration_ms", static_cast<double>(duration_us) / 1000},
    };
    if (!r.rule.empty()) j["rule"] = r.rule;
    if (!r.inspection.empty()) j["inspection"] = r.inspection;
    // Replace invalid UTF-8 rather than throw: names come from clients.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Durations are logged to the microsecond, as milliseconds.
long long elapsed_us(const ConnectionRecord& r) {
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r.started_mono);
    return static_cast<long long>(ms.count() * 1000);
}

// Opens `file` for appending; a new file is created readable by its owner and group only
// (client addresses and the hosts they visit are personal data).
std::FILE* open_append(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return nullptr;
    std::FILE* out = ::fdopen(fd, "a");
    if (out == nullptr) {
        const int err = errno;  // for the caller's message, past close()
        ::close(fd);
        errno = err;
    }
    return out;
}

}  // namespace

std::string ConnectionLog::format(const ConnectionRecord& r, long long duration_us) const {
    if (auto fast = ascii_line(r, node_, duration_us)) return std::move(*fast);
    return tree_line(r, node_, duration_us);
}

ConnectionLog::ConnectionLog(const std::filesystem::path& file, std::string node)
    : node_(std::move(node)), file_(file), out_(file.empty() ? stdout : open_append(file)), owned_(!file.empty()) {
    if (out_ == nullptr)
        throw std::runtime_error("cannot open the connection log " + file.string() + " for appending: " +
                                 std::strerror(errno));
}

std::optional<std::string> ConnectionLog::reopen() {
    if (!owned_) return std::nullopt;
    std::FILE* fresh = open_append(file_);
    if (fresh == nullptr) return "cannot open " + file_.string() + " for appending: " + std::strerror(errno);
    std::lock_guard lock(mu_);
    std::fclose(std::exchange(out_, fresh));
    return std::nullopt;
}

ConnectionLog::~ConnectionLog() {
    if (owned_) std::fclose(out_);
}

void ConnectionLog::write(const ConnectionRecord& r) {
    std::string line = format(r, elapsed_us(r));
    line += '\n';
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

void ConnectionLog::mail(const MailRecord& r) {
    nlohmann::json j = {{"ts", protocol::rfc3339(std::chrono::system_clock::now())},
                        {"type", "mail"},
                        {"node", node_},
                        {"client", r.client},
                        {"server", r.server},
                        {"mail_from", r.mail_from},
                        {"recipients", r.recipients},
                        {"size", r.size},
                        {"parts", r.parts},
                        {"framing", r.framing},
                        {"decision", r.decision},
                        {"detail", r.detail},
                        {"reply", r.reply},
                        {"tls", r.tls}};
    if (!r.rule.empty()) j["rule"] = r.rule;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

void ConnectionLog::event(const std::string& what, const std::string& detail) {
    nlohmann::json j = {{"ts", protocol::rfc3339(std::chrono::system_clock::now())},
                        {"type", "event"},
                        {"node", node_},
                        {"event", what},
                        {"detail", detail}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

}  // namespace proxy
