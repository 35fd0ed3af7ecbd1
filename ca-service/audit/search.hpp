#pragma once
// Finding records in an audit log (`ca-audit show`): by requested name, serial or node.
// Searching does not verify; run `ca-audit verify` before relying on what it shows.

#include "audit/record.hpp"

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ca::audit {

struct RecordQuery {
    std::optional<std::string> name;    // one of the requested names; DNS case-insensitive
    std::optional<std::string> serial;  // hex; case, colons and leading zeros ignored
    std::optional<std::string> node;    // node name, its certificate fingerprint, or a prefix of
                                        // at least kMinFingerprintPrefix hex digits of it
    std::optional<std::string> type;    // record type ("decision", "checkpoint", ...)
    std::size_t limit = 0;              // 0: every match; otherwise the most recent `limit`
};

inline constexpr std::size_t kMinFingerprintPrefix = 8;

// True when `record` satisfies every criterion set in `query` (all unset: every record).
bool matches(const Json& record, const RecordQuery& query);

struct SearchResult {
    std::vector<std::string> lines;    // matching records as written, oldest first
    std::size_t unreadable_lines = 0;  // lines that are not JSON records (skipped)
};

// Searches an audit directory (all files, in order) or one log file. Throws
// std::runtime_error when `log` does not exist or cannot be read.
SearchResult find_records(const std::filesystem::path& log, const RecordQuery& query);

}  // namespace ca::audit
