#include "audit/files.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ca::audit {

namespace {
constexpr std::string_view kPrefix = "audit-";
constexpr std::string_view kSuffix = ".jsonl";
constexpr std::size_t kIndexDigits = 6;
}  // namespace

std::string log_file_name(std::uint32_t index) {
    std::string digits = std::to_string(index);
    if (digits.size() < kIndexDigits) digits.insert(0, kIndexDigits - digits.size(), '0');
    return std::string(kPrefix) + digits + std::string(kSuffix);
}

std::optional<std::uint32_t> parse_log_file_name(std::string_view name) {
    if (name.size() != kPrefix.size() + kIndexDigits + kSuffix.size() || !name.starts_with(kPrefix) ||
        !name.ends_with(kSuffix))
        return std::nullopt;
    std::string_view digits = name.substr(kPrefix.size(), kIndexDigits);
    std::uint32_t index = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec != std::errc{} || end != digits.data() + digits.size() || index == 0) return std::nullopt;
    return index;
}

std::vector<LogFile> list_log_files(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::directory_iterator it(dir, ec);
    if (ec) throw std::runtime_error("cannot list audit log directory " + dir.string() + ": " + ec.message());
    std::vector<LogFile> out;
    for (const auto& entry : it) {
        if (auto index = parse_log_file_name(entry.path().filename().string()))
            out.push_back({*index, entry.path()});
    }
    std::sort(out.begin(), out.end(), [](const LogFile& a, const LogFile& b) { return a.index < b.index; });
    return out;
}

std::string read_whole_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string() + ": " + std::strerror(errno));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw std::runtime_error("error while reading " + file.string());
    return std::move(buf).str();
}

}  // namespace ca::audit
