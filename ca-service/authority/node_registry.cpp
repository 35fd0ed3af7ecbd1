#include "authority/node_registry.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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

std::set<std::string> read_lines(const std::filesystem::path& file) {
    std::set<std::string> out;
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line.front() == '#') continue;
        out.insert(line);
    }
    return out;
}

bool is_fingerprint(std::string_view id) {
    return id.size() == 64 &&
           std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace

NodeRegistry::NodeRegistry(std::filesystem::path state_dir)
    : file_(state_dir / "revoked-nodes"), known_file_(state_dir / "known-nodes") {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) throw std::runtime_error("cannot create state directory " + state_dir.string() + ": " + ec.message());
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all, ec);
    revoked_ = read_lines(file_);
    load_known();
}

void NodeRegistry::load_known() {
    known_.merge(read_lines(known_file_));
}

RevocationTarget NodeRegistry::classify(std::string& id) {
    if (is_fingerprint(id)) {
        std::transform(id.begin(), id.end(), id.begin(), [](unsigned char c) { return std::tolower(c); });
        return RevocationTarget::fingerprint;
    }
    std::lock_guard lock(mu_);
    auto known = [&] { return known_.contains(id) || seen_.contains(id) || revoked_.contains(id); };
    if (known()) return RevocationTarget::node_name;
    load_known();
    return known() ? RevocationTarget::node_name : RevocationTarget::unknown;
}

std::vector<std::string> NodeRegistry::known_names() const {
    std::lock_guard lock(mu_);
    std::set<std::string> names = known_;
    for (const auto& [name, stats] : seen_) names.insert(name);
    for (const auto& r : revoked_)
        if (!is_fingerprint(r)) names.insert(r);
    return {names.begin(), names.end()};
}

bool NodeRegistry::is_revoked(const NodeIdentity& node) const {
    std::lock_guard lock(mu_);
    return revoked_.contains(node.name) || revoked_.contains(node.fingerprint);
}

void NodeRegistry::persist_revoked() const {
    std::string content = "# revoked node names or certificate SHA-256 fingerprints, one a line\n";
    for (const auto& r : revoked_) content += r + "\n";
    write_durably(file_, content);
}

bool NodeRegistry::revoke(const std::string& id) {
    std::lock_guard lock(mu_);
    if (!revoked_.insert(id).second) return false;
    persist_revoked();  // on failure the revocation stays in force in memory
    return true;
}

bool NodeRegistry::unrevoke(const std::string& id) {
    std::lock_guard lock(mu_);
    if (revoked_.erase(id) == 0) return false;
    try {
        persist_revoked();
    } catch (...) {
        revoked_.insert(id);
        throw;
    }
    return true;
}

void NodeRegistry::record(const NodeIdentity& node, bool issued) {
    std::lock_guard lock(mu_);
    if (!known_.contains(node.name)) {
        // First sight of a name not enrolled by hsm-setup (a node from an earlier setup):
        // remember it, so an operator can revoke it by name after a restart. Best effort:
        // a full disk must not stop issuance, and the name stays known in memory.
        load_known();  // keep names hsm-setup appended since start
        known_.insert(node.name);
        std::string content = "# node names this CA knows, one a line (hsm-setup and first sight)\n";
        for (const auto& name : known_) content += name + "\n";
        try {
            write_durably(known_file_, content);
        } catch (const std::runtime_error&) {
        }
    }
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
