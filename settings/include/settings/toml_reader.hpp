#pragma once
// Typed, validated access to a TOML configuration file. Every error names the file and the
// key and says what is accepted, so an operator can fix it without reading the code.

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace settings {

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
};

// "host:port" or "[ipv6]:port"; throws std::invalid_argument saying what is wrong.
Endpoint parse_endpoint(std::string_view text);

class TomlReader {
public:
    // Parses `file`; throws std::runtime_error "FILE: not valid TOML at LINE:COL: ..." or
    // "cannot read configuration FILE: ...".
    static toml::table parse_file(const std::filesystem::path& file);

    // `reference` names where the keys are documented (added to unknown-key errors).
    TomlReader(const toml::table& root, std::filesystem::path file, std::string reference = {});

    [[noreturn]] void fail(const std::string& key, const std::string& what) const;
    const toml::node* node(const std::string& key) const;

    // Every key of `table` ("" = the top level) must be in `known`; a missing table is fine.
    void only_keys(const std::string& table, const std::set<std::string>& known) const;

    std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;
    // Empty when absent and not required.
    std::filesystem::path path(const std::string& key, bool required = true) const;
    std::filesystem::path existing_file(const std::string& key, bool required = true) const;
    std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) const;
    double number(const std::string& key, double fallback, double min, double max) const;
    bool boolean(const std::string& key, bool fallback) const;
    std::vector<std::string> strings(const std::string& key, std::vector<std::string> fallback = {}) const;
    Endpoint endpoint(const std::string& key, std::optional<std::string> fallback = std::nullopt) const;

private:
    const toml::table& root_;
    std::filesystem::path file_;
    std::string reference_;
};

}  // namespace settings
