#pragma once
// One JSON line per connection: who, which host, where it went, the TLS parameters on both
// sides, the upstream certificate's fingerprint, the decision with its reason, bytes each
// way and duration. Never any payload.

#include "upstream/reason.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace proxy {

struct TlsSummary {
    std::string version;  // "TLSv1.3"; empty when there was no TLS on that side
    std::string cipher;
    std::string alpn;
    bool resumed = false;  // an abbreviated handshake (session ticket) rather than a full one
};

namespace decision {
inline constexpr const char* kIntercepted = "intercepted";  // TLS terminated, upstream verified, relayed
inline constexpr const char* kProxied = "proxied";          // plain HTTP forwarded
inline constexpr const char* kBlocked = "blocked";          // refused on validation or policy grounds
inline constexpr const char* kFailed = "failed";            // could not be completed (unreachable, timeout, ...)
inline constexpr const char* kBypassed = "bypassed";        // tunnelled without decrypting (reason says why)
}  // namespace decision

struct ConnectionRecord {
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point started_mono = std::chrono::steady_clock::now();
    std::string client;          // address:port
    std::string mode;            // "connect", "http" or "transparent"
    std::string requested_host;  // SNI, else the CONNECT/URL host
    std::string connect_target;  // as the client wrote it (transparent: the original destination)
    std::string upstream;        // address:port actually connected
    TlsSummary client_tls;
    TlsSummary upstream_tls;
    std::string upstream_cert_sha256;
    std::string leaf;  // "cache" or "issued"
    std::string decision = decision::kFailed;
    Reason reason = Reason::none;
    std::string reason_text;  // logged instead of code(reason) when set ("pattern:*.bank.example")
    std::string detail;
    std::string rule;        // the inspection rule that blocked, if any
    // With inspection enabled: "on" (all of the decrypted traffic went through the inspector),
    // "partial" (HTTP did, then an upgrade relayed uninspected), "off" (none did).
    std::string inspection;
    std::uint64_t bytes_client_to_upstream = 0;
    std::uint64_t bytes_upstream_to_client = 0;
};

// One JSON line per mail transaction relayed over SMTP (mail/smtp_relay.hpp), besides the
// connection's own line: the envelope and the verdict, never any content (not even the
// subject or the recipients' addresses: their count only).
struct MailRecord {
    std::string client;       // address:port
    std::string server;       // the mail server's name
    std::string mail_from;    // the envelope sender ("" for the null sender <>)
    std::size_t recipients = 0;
    std::uint64_t size = 0;   // content bytes (canonical: unstuffed, CRLF line ends)
    std::size_t parts = 0;    // MIME leaf parts inspected
    std::string framing;      // "DATA" or "BDAT"
    // "relayed" (the server took it), "blocked" (inspection refused it, 554 5.7.1),
    // "refused" (too big: 552; the engine unavailable: 451), "rejected" (the server
    // refused it; its reply code in `reply`).
    std::string decision;
    std::string rule;    // the inspection rule that blocked it
    std::string detail;  // why, in words; never content
    int reply = 0;       // the reply code the client got
    bool tls = false;    // both sides encrypted when the message went
};

class ConnectionLog {
public:
    // Every line names the node (`node`), so logs merged from several nodes stay attributable.
    ConnectionLog(const std::filesystem::path& file, std::string node);  // file empty: stdout
    ~ConnectionLog();
    ConnectionLog(const ConnectionLog&) = delete;
    ConnectionLog& operator=(const ConnectionLog&) = delete;

    void write(const ConnectionRecord& record);
    // The record's line as write() appends it (without the newline), lasting `duration_us`.
    std::string format(const ConnectionRecord& record, long long duration_us) const;
    void mail(const MailRecord& record);
    // Service events (start, drain, stop) in the same stream.
    void event(const std::string& what, const std::string& detail = "");

    // Opens the file again by its name (SIGHUP, after logrotate moved it): later lines go to
    // the new file. On failure the old stream is kept and the error returned. Stdout: no-op.
    std::optional<std::string> reopen();
    const std::filesystem::path& file() const { return file_; }

private:
    std::mutex mu_;
    std::string node_;
    std::filesystem::path file_;  // empty: stdout
    std::FILE* out_;
    bool owned_;
};

}  // namespace proxy
