#include "log/connection_log.hpp"

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
    const auto duration = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r.started_mono);
    nlohmann::json j = {
        {"ts", protocol::rfc3339(r.started)},
        {"type", "connection"},
        {"node", node_},
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
        {"reason", r.reason_text.empty() ? std::string(code(r.reason)) : r.reason_text},
        {"detail", r.detail},
        {"bytes_client_to_upstream", r.bytes_client_to_upstream},
        {"bytes_upstream_to_client", r.bytes_upstream_to_client},
        {"duration_ms", static_cast<double>(static_cast<long long>(duration.count() * 1000)) / 1000},
    };
    if (!r.rule.empty()) j["rule"] = r.rule;
    if (!r.inspection.empty()) j["inspection"] = r.inspection;
    // Replace invalid UTF-8 rather than throw: names come from clients.
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
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
