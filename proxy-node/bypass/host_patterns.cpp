#include "bypass/host_patterns.hpp"

#include "certs/names.hpp"

#include <fstream>
#include <stdexcept>

namespace proxy::bypass {

namespace {

// Bounds a list file so that a wrong path (a log, a binary) fails clearly instead of
// filling memory.
constexpr std::size_t kMaxListLineBytes = 1024;
constexpr std::size_t kMaxListEntries = 1'000'000;

// LDH labels separated by dots; a single label is allowed ("*.bank" covers a TLD).
bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    for (;;) {
        auto end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        auto label = name.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
        if (end == name.size()) return true;
        start = end + 1;
    }
}

std::string trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::optional<HostPattern> parse_host_pattern(std::string_view text, std::string& error) {
    const std::string raw(text);
    if (is_ip_literal(raw)) return HostPattern{raw, false, raw};
    std::string n = normalise_name(raw);
    HostPattern p;
    if (n.rfind("*.", 0) == 0) {
        p.suffix = true;
        p.name = n.substr(2);
    } else {
        p.name = n;
    }
    if (!valid_name(p.name)) {
        error = "'" + raw + "' is not a host name, an IP address or '*.' followed by a host name";
        if (n.find('*') != std::string::npos)
            error += " (a wildcard is allowed only as the whole first label: *.example.com)";
        return std::nullopt;
    }
    p.text = p.suffix ? "*." + p.name : p.name;
    return p;
}

std::vector<HostPattern> load_host_list(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read the bypass list " + file.string());
    std::vector<HostPattern> out;
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
        const std::string where = file.string() + ":" + std::to_string(number) + ": ";
        if (line.size() > kMaxListLineBytes)
            throw std::runtime_error(where + "line longer than " + std::to_string(kMaxListLineBytes) + " bytes");
        const std::string entry = trim(std::string_view(line).substr(0, line.find('#')));
        if (entry.empty()) continue;
        std::string error;
        auto p = parse_host_pattern(entry, error);
        if (!p) throw std::runtime_error(where + error);
        if (out.size() >= kMaxListEntries)
            throw std::runtime_error(where + "more than " + std::to_string(kMaxListEntries) + " entries");
        out.push_back(std::move(*p));
    }
    return out;
}

HostPatterns::HostPatterns(const std::vector<HostPattern>& patterns) {
    for (const auto& p : patterns) (p.suffix ? suffixes_ : exact_).emplace(p.name, p);
}

const HostPattern* HostPatterns::match(std::string_view host) const {
    if (auto it = exact_.find(std::string(host)); it != exact_.end()) return &it->second;
    if (suffixes_.empty() || is_ip_literal(host)) return nullptr;
    // Each parent domain of the host, nearest first: a.b.example.com -> b.example.com, example.com, com.
    for (auto dot = host.find('.'); dot != std::string_view::npos; dot = host.find('.', dot + 1)) {
        if (auto it = suffixes_.find(std::string(host.substr(dot + 1))); it != suffixes_.end()) return &it->second;
    }
    return nullptr;
}

}  // namespace proxy::bypass
