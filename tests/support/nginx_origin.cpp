#include "support/nginx_origin.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace testing_support {

NginxOrigin::NginxOrigin(const OriginCert& cert, const std::filesystem::path& dir, std::uint16_t upload_backend)
    : dir_(dir) {
    std::filesystem::create_directories(dir_ / "www");
    std::filesystem::create_directories(dir_ / "tmp");
    write_cert_and_key(cert, dir_ / "cert.pem", dir_ / "key.pem");
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_port();
        h2c_port_ = free_port();
        const std::string d = dir_.string();
        std::ofstream conf(dir_ / "nginx.conf");
        conf << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << d << "/nginx.pid;\n"
             << "error_log " << d << "/error.log warn;\n"
             << "events { worker_connections 4096; }\n"
             << "http {\n  access_log off;\n  sendfile on;\n"
             << "  client_body_temp_path " << d << "/tmp/body;\n  proxy_temp_path " << d << "/tmp/proxy;\n"
             << "  fastcgi_temp_path " << d << "/tmp/fastcgi;\n  uwsgi_temp_path " << d << "/tmp/uwsgi;\n"
             << "  scgi_temp_path " << d << "/tmp/scgi;\n"
             << "  types { text/html html; text/plain txt; application/octet-stream bin; }\n"
             << "  keepalive_requests 100000000;\n  http2_max_concurrent_streams 128;\n"
             << "  server {\n    listen 127.0.0.1:" << port_ << " ssl http2;\n"
             << "    listen 127.0.0.1:" << h2c_port_ << " http2;\n"
             << "    ssl_certificate " << d << "/cert.pem;\n    ssl_certificate_key " << d << "/key.pem;\n"
             << "    ssl_protocols TLSv1.2 TLSv1.3;\n    root " << d << "/www;\n"
             << "    location = /upload { client_max_body_size 0; proxy_pass https://127.0.0.1:" << upload_backend
             << "; proxy_http_version 1.1; proxy_ssl_server_name off; }\n"
             << "  }\n}\n";
        conf.close();
        child_ = std::make_unique<Child>(
            std::vector<std::string>{"/usr/sbin/nginx", "-p", d, "-c", (dir_ / "nginx.conf").string()},
            dir_ / "nginx.out");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline && child_->running() &&
               !(loopback_accepting(port_) && loopback_accepting(h2c_port_)))
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (child_->running() && loopback_accepting(port_) && loopback_accepting(h2c_port_)) return;
        child_.reset();
    }
    throw std::runtime_error("nginx did not start; see " + (dir_ / "error.log").string());
}

NginxOrigin::~NginxOrigin() = default;

void NginxOrigin::put(const std::string& name, const std::string& content) const {
    std::ofstream(dir_ / "www" / name, std::ios::binary) << content;
}

}  // namespace testing_support
