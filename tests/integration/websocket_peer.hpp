#pragma once
// The real WebSocket server of the tests (python3-websockets, websocket_peer.py) on
// 127.0.0.1 with a certificate from a test origin PKI; see the script for its paths.

#include "support/origin_pki.hpp"
#include "support/process.hpp"

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace testing_support {

// Debian's interpreter, which has python3-websockets (another python3 may come first on PATH).
inline constexpr const char* kPython = "/usr/bin/python3";

inline std::filesystem::path websocket_peer_script() {
    return std::filesystem::path(SPLITCA_SOURCE_DIR) / "tests/integration/websocket_peer.py";
}

class WebSocketServer {
public:
    // TLS with `cert`; plaintext (ws://, http://) when it is null.
    WebSocketServer(const OriginCert* cert, std::filesystem::path dir) : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        std::string cert_file = "-", key_file = "-";
        if (cert != nullptr) {
            write_cert_and_key(*cert, dir_ / "origin.pem", dir_ / "origin.key");
            cert_file = (dir_ / "origin.pem").string();
            key_file = (dir_ / "origin.key").string();
        }
        child_ = std::make_unique<Child>(
            std::vector<std::string>{kPython, websocket_peer_script().string(), "server", cert_file, key_file,
                                     (dir_ / "port").string(), (dir_ / "received.log").string()},
            dir_ / "server.log");
        for (int i = 0; i < 300 && !std::filesystem::exists(dir_ / "port") && child_->running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::string port = read_file(dir_ / "port");
        if (port.empty()) throw std::runtime_error("the WebSocket server did not start:\n" + read_file(dir_ / "server.log"));
        port_ = static_cast<std::uint16_t>(std::stoi(port));
    }
    std::uint16_t port() const { return port_; }
    // The messages it has received so far ("<kind> <length> <sha256>" lines).
    std::string received() const { return read_file(dir_ / "received.log"); }
    std::string log() const { return read_file(dir_ / "server.log"); }

private:
    std::filesystem::path dir_;
    std::unique_ptr<Child> child_;
    std::uint16_t port_ = 0;
};

}  // namespace testing_support
