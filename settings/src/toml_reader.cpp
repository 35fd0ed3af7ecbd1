#include "settings/toml_reader.hpp"

#include <sstream>
#include <stdexcept>

namespace settings {

Endpoint parse_endpoint(std::string_view text) {
    std::string host, port;
    const std::string t(text);
    if (!t.empty() && t.front() == '[') {
        auto close = t.find(']');
        if (close == std::string::npos || close + 1 >= t.size() || t[close + 1] != ':')
            throw std::invalid_argument("'" + t + "' is not [IPv6]:PORT");
        host = t.substr(1, close - 1);
        port = t.substr(close + 2);
    } else {
        auto colon = t.rfind(':');
        if (colon == std::string::npos || colon == 0) throw std::invalid_argument("'" + t + "' is not HOST:PORT");
        host = t.substr(0, colon);
        port = t.substr(colon + 1);
    }
    if (host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        throw std::invalid_argument("'" + t + "' is not HOST:PORT with a port 1-65535");
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) throw std::invalid_argument("'" + t + "' is not HOST:PORT with a port 1-65535");
    return {host, static_cast<std::uint16_t>(p)};
}

toml::table TomlReader::parse_file(const std::filesystem::path& file) {
    try {
        return toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ": not valid TOML at " << e.source().begin << ": " << e.description();
        throw std::runtime_error(msg.str());
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot read configuration " + file.string() + ": " + e.what());
    }
}

TomlReader::TomlReader(const toml::table& root, std::filesystem::path file, std::string reference)
    : root_(root), file_(std::move(file)), reference_(std::move(reference)) {}

void TomlReader::fail(const std::string& key, const std::string& what) const {
    throw std::runtime_error(file_.string() + ": " + key + ": " + what);
}

const toml::node* TomlReader::node(const std::string& key) const { return root_.at_path(key).node(); }

void TomlReader::only_keys(const std::string& table, const std::set<std::string>& known) const {
    const toml::table* t = table.empty() ? &root_ : root_.at_path(table).as_table();
    if (t == nullptr) {
        if (node(table) != nullptr) fail(table, "must be a table");
        return;
    }
    for (const auto& [k, v] : *t) {
        (void)v;
        const std::string key(k.str());
        if (known.count(key) == 0)
            fail(table.empty() ? key : table + "." + key,
                 "unknown key" + (reference_.empty() ? std::string() : " (misspelt? see " + reference_ + ")"));
    }
}

std::string TomlReader::string(const std::string& key, std::optional<std::string> fallback) const {
    const auto* n = node(key);
    if (n == nullptr) {
        if (fallback) return *fallback;
        fail(key, "is required");
    }
    auto v = n->value_exact<std::string>();
    if (!v) fail(key, "must be a string");
    return *v;
}

std::filesystem::path TomlReader::path(const std::string& key, bool required) const {
    if (!required && node(key) == nullptr) return {};
    std::filesystem::path p = string(key);
    if (p.empty()) fail(key, "must not be empty");
    return p;
}

std::filesystem::path TomlReader::existing_file(const std::string& key, bool required) const {
    if (!required && node(key) == nullptr) return {};
    std::filesystem::path p = path(key);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec)) fail(key, "'" + p.string() + "' does not exist or is not a file");
    return p;
}

std::int64_t TomlReader::integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                                 std::int64_t max) const {
    const auto* n = node(key);
    if (n == nullptr) return fallback;
    auto v = n->value_exact<std::int64_t>();
    if (!v) fail(key, "must be an integer");
    if (*v < min || *v > max)
        fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (is " +
                      std::to_string(*v) + ")");
    return *v;
}

double TomlReader::number(const std::string& key, double fallback, double min, double max) const {
    const auto* n = node(key);
    if (n == nullptr) return fallback;
    auto v = n->value<double>();
    if (!v) fail(key, "must be a number");
    if (*v < min || *v > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    return *v;
}

bool TomlReader::boolean(const std::string& key, bool fallback) const {
    const auto* n = node(key);
    if (n == nullptr) return fallback;
    auto v = n->value_exact<bool>();
    if (!v) fail(key, "must be true or false");
    return *v;
}

std::vector<std::string> TomlReader::strings(const std::string& key, std::vector<std::string> fallback) const {
    const auto* n = node(key);
    if (n == nullptr) return fallback;
    const auto* arr = n->as_array();
    if (arr == nullptr) fail(key, "must be an array of strings");
    std::vector<std::string> out;
    for (const auto& e : *arr) {
        auto v = e.value_exact<std::string>();
        if (!v) fail(key, "must be an array of strings");
        out.push_back(*v);
    }
    return out;
}

Endpoint TomlReader::endpoint(const std::string& key, std::optional<std::string> fallback) const {
    try {
        return parse_endpoint(string(key, std::move(fallback)));
    } catch (const std::invalid_argument& e) {
        fail(key, e.what());
    }
}

}  // namespace settings
