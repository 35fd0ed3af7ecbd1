#pragma once
// Helpers for the audit log tests: scratch directories, editing log files line by line (to
// play the attacker), and sample records.

#include "audit/record.hpp"
#include "ossl/encoding.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace testing_support {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "audit-test") {
        std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

inline std::vector<std::string> read_lines(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

inline void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    for (const auto& l : lines) out << l << '\n';
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

// What a careful attacker does after editing records: recompute every hash from line `from`
// on so the chain links up again (only signatures and audit.head can then give it away).
inline void rechain(std::vector<std::string>& lines, std::size_t from) {
    using namespace ca::audit;
    Sha256 prev{};
    if (from > 0) prev = *parse_hash(Json::parse(lines[from - 1]).at(field::kHash).get<std::string>());
    for (std::size_t i = from; i < lines.size(); ++i) {
        Json j = Json::parse(lines[i]);
        j[field::kPrev] = ossl::to_hex(prev);
        j.erase(field::kHash);
        prev = record_hash(prev, canonical(j));
        j[field::kHash] = ossl::to_hex(prev);
        lines[i] = canonical(j);
    }
}

inline ca::audit::DecisionRecord sample_decision(int i, const std::string& node = "node-a") {
    ca::audit::DecisionRecord r;
    r.node_name = node;
    r.node_fingerprint = std::string(64, node == "node-a" ? 'a' : 'b');
    r.names = {"host" + std::to_string(i) + ".example.com"};
    r.decision = std::string(ca::audit::decision::kIssued);
    std::ostringstream serial;
    serial << std::hex << (0x1000 + i);
    r.serial = serial.str();
    r.spki_sha256 = std::string(64, 'c');
    r.not_before = "2024-05-01T12:00:00Z";
    r.not_after = "2024-05-01T20:00:00Z";
    r.requested_lifetime_s = 8 * 3600;
    return r;
}

}  // namespace testing_support
