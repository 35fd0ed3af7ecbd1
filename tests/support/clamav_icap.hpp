#pragma once
// A real ICAP anti-virus engine for tests and benchmarks: Debian's c-icap with its
// virus_scan service (libc-icap-mod-virus-scan) backed by clamd (clamav-daemon), both
// started on loopback with configurations, logs and a signature database of their own
// (temporary; the official database cannot be downloaded here):
//   Test.EICAR-MD5            an MD5 (.hdb) signature of the 68-byte EICAR test file
//   Test.Custom-Malware       a hex (.ndb) signature of kCustomMalware, found anywhere in a file
// c-icap serves it as icap://127.0.0.1:<port>/avscan (Preview 1024, Allow 204). stop_icap()
// and start_icap() stop and restart c-icap alone (clamd keeps running), on the same port.
// Given a certificate, c-icap also serves ICAP over TLS (TlsPort) as icaps://.

#include "support/origin_pki.hpp"
#include "support/process.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace testing_support {

inline constexpr const char* kCustomMalware = "PROXY-TEST-MALWARE-SIGNATURE-7f3a91c2";
inline constexpr const char* kEicarThreat = "Test.EICAR-MD5";
inline constexpr const char* kCustomThreat = "Test.Custom-Malware";

class ClamavIcap {
public:
    explicit ClamavIcap(const std::filesystem::path& dir, const OriginCert* tls = nullptr);
    ~ClamavIcap();
    ClamavIcap(const ClamavIcap&) = delete;
    ClamavIcap& operator=(const ClamavIcap&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url() const { return "icap://127.0.0.1:" + std::to_string(port_) + "/avscan"; }
    std::string tls_url() const { return "icaps://127.0.0.1:" + std::to_string(tls_port_) + "/avscan"; }
    void stop_icap();
    void start_icap();
    // c-icap's access log: one line per transaction (method, service, status).
    std::string access_log() const;
    // The engine's processes: c-icap, the server processes it forked, clamd (for CPU figures).
    std::vector<int> pids() const;

private:
    void write_icap_config() const;
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    std::uint16_t tls_port_ = 0;  // 0: no TLS listener
    std::unique_ptr<Child> clamd_;
    std::unique_ptr<Child> icap_;
};

}  // namespace testing_support
