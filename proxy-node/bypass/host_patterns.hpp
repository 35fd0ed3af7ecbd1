#pragma once
// Host names whose TLS is tunnelled without decrypting: exact names ("app.example.com",
// also IP literals) and suffix patterns ("*.example.com": every name below example.com,
// at any depth, but not example.com itself). Matching is case-insensitive and ignores a
// trailing dot.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace proxy::bypass {

struct HostPattern {
    std::string text;   // normalised, as logged: "pattern:<text>"
    bool suffix = false;  // "*.example.com"
    std::string name;   // the exact name, or the suffix's base ("example.com")
};

// Nullopt with `error` set when `text` is not an exact name, an IP literal or "*.name".
std::optional<HostPattern> parse_host_pattern(std::string_view text, std::string& error);

// A list file: one pattern per line; blank lines and text after '#' are ignored. Throws
// std::runtime_error naming the file and line of the first bad entry.
std::vector<HostPattern> load_host_list(const std::filesystem::path& file);

class HostPatterns {
public:
    explicit HostPatterns(const std::vector<HostPattern>& patterns);
    // The pattern matching `host` (already normalised), exact names first; nullptr if none.
    const HostPattern* match(std::string_view host) const;
    bool empty() const { return exact_.empty() && suffixes_.empty(); }

private:
    std::unordered_map<std::string, HostPattern> exact_;
    std::unordered_map<std::string, HostPattern> suffixes_;  // keyed by base name
};

}  // namespace proxy::bypass
