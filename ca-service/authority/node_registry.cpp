#include "authority/node_registry.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ca {

namespace {

void write_durably(const std::filesystem::path& file, const std::string& content) {
    const auto tmp = file.string() + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0)
        throw std::runtime_error("cannot write " + file.string() + ": " + std::strerror(errno));
    int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

}  // namespace

NodeRegistry::NodeRegistry(std::filesystem::path state_dir) : file_(state_dir / "revoked-nodes") {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) throw std::runtime_error("cannot create state directory " + state_dir.string() + ": " + ec.message());
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, ec);
    std::ifstream in(file_);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line.front() == '#') continue;
        revoked_.insert(line);
    }
}

bool NodeRegistry::is_revoked(const NodeIdentity& node) const {
    std::lock_guard lock(mu_);
    return revoked_.contains(node.name) || revoked_.contains(node.fingerprint);
}

void NodeRegistry::persist() const {
    std::string content = "# revoked node names or certificate SHA-256 fingerprints, one a line\n";
    for (const auto& r : revoked_) content += r + "\n";
    write_durably(file_, content);
}

void NodeRegistry::revoke(const std::string& id) {
    std::lock_guard lock(mu_);
    if (!revoked_.insert(id).second) return;
    try {
        persist();
    } catch (...) {
        revoked_.erase(id);
        throw;
    }
}

bool NodeRegistry::unrevoke(const std::string& id) {
    std::lock_guard lock(mu_);
    if (revoked_.erase(id) == 0) return false;
    try {
        persist();
    } catch (...) {
        revoked_.insert(id);
        throw;
    }
    return true;
}

void NodeRegistry::record(const NodeIdentity& node, bool issued) {
    std::lock_guard lock(mu_);
    auto& s = seen_[node.name];
    s.name = node.name;
    s.last_fingerprint = node.fingerprint;
    (issued ? s.issued : s.denied)++;
    s.last_seen = std::chrono::system_clock::now();
}

std::vector<NodeStats> NodeRegistry::nodes() const {
    std::lock_guard lock(mu_);
    std::vector<NodeStats> out;
    for (auto [name, s] : seen_) {
        s.revoked = revoked_.contains(name) || revoked_.contains(s.last_fingerprint);
        out.push_back(s);
    }
    return out;
}

std::vector<std::string> NodeRegistry::revoked() const {
    std::lock_guard lock(mu_);
    return {revoked_.begin(), revoked_.end()};
}

}  // namespace ca
