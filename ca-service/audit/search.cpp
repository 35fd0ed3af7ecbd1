#include "audit/search.hpp"

#include "audit/files.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <stdexcept>

namespace ca::audit {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// "00:AB:cd" -> "abcd": serials are written in many spellings by many tools.
std::string normalized_hex(std::string_view s) {
    std::string out;
    for (char c : s)
        if (c != ':') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    const auto first = out.find_first_not_of('0');
    return first == std::string::npos ? "0" : out.substr(first);
}

std::string string_value(const Json& record, const char* name) {
    auto it = record.find(name);
    return (it != record.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

bool is_hex(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

// A trailing dot names the same DNS name.
std::string dns_key(std::string_view name) {
    std::string out = lower(name);
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

}  // namespace

bool matches(const Json& record, const RecordQuery& q) {
    if (!record.is_object()) return false;
    if (q.type && string_value(record, field::kType) != *q.type) return false;
    if (q.name) {
        auto names = record.find(field::kNames);
        if (names == record.end() || !names->is_array()) return false;
        const std::string wanted = dns_key(*q.name);
        if (std::none_of(names->begin(), names->end(), [&](const Json& n) {
                return n.is_string() && dns_key(n.get<std::string>()) == wanted;
            }))
            return false;
    }
    if (q.serial) {
        const std::string serial = string_value(record, field::kSerial);
        if (serial.empty() || normalized_hex(serial) != normalized_hex(*q.serial)) return false;
    }
    if (q.node) {
        const bool by_name = string_value(record, field::kNodeName) == *q.node;
        const std::string wanted = lower(*q.node);
        const std::string fingerprint = lower(string_value(record, field::kNodeFingerprint));
        const bool by_fingerprint = is_hex(wanted) && wanted.size() >= kMinFingerprintPrefix &&
                                    !fingerprint.empty() && fingerprint.starts_with(wanted);
        if (!by_name && !by_fingerprint) return false;
    }
    return true;
}

SearchResult find_records(const std::filesystem::path& log, const RecordQuery& query) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    if (std::filesystem::is_directory(log, ec)) {
        for (const auto& f : list_log_files(log)) files.push_back(f.path);
    } else if (std::filesystem::is_regular_file(log, ec)) {
        files.push_back(log);
    } else {
        throw std::runtime_error("no audit log at " + log.string() +
                                 ": give the audit directory or one audit-NNNNNN.jsonl file");
    }

    SearchResult result;
    std::deque<std::string> found;  // bounded by limit: the most recent matches
    for (const auto& file : files) {
        const std::string content = read_whole_file(file);
        for (std::size_t pos = 0; pos < content.size();) {
            std::size_t end = content.find('\n', pos);
            if (end == std::string::npos) end = content.size();
            const std::string_view line(content.data() + pos, end - pos);
            pos = end + 1;
            const Json record = Json::parse(line, nullptr, false);
            if (!record.is_object()) {
                ++result.unreadable_lines;
                continue;
            }
            if (!matches(record, query)) continue;
            found.emplace_back(line);
            if (query.limit != 0 && found.size() > query.limit) found.pop_front();
        }
    }
    result.lines.assign(std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
    return result;
}

}  // namespace ca::audit
