#pragma once
// Where the audit log lives on disk: numbered JSON Lines files plus the signed head sidecar.
//
//   <dir>/audit-000001.jsonl, audit-000002.jsonl, ...   the records, oldest file first
//   <dir>/audit.head                                      the latest signed checkpoint
//   <dir>/audit.lock                                      held (flock) by the writing process

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ca::audit {

inline constexpr std::string_view kHeadFileName = "audit.head";
inline constexpr std::string_view kLockFileName = "audit.lock";
// Six digits keep `ls` order equal to chain order; at 64 MiB a file that is ~60 TiB of log.
inline constexpr std::uint32_t kMaxFileIndex = 999'999;

struct LogFile {
    std::uint32_t index = 0;
    std::filesystem::path path;
};

// "audit-000042.jsonl"
std::string log_file_name(std::uint32_t index);
// The index of a log file name, nullopt for any other name (temporary files, the sidecar...).
std::optional<std::uint32_t> parse_log_file_name(std::string_view name);

// The log files of `dir` in chain order. Throws if the directory cannot be listed.
std::vector<LogFile> list_log_files(const std::filesystem::path& dir);

// The whole content of a file; throws naming the file when it cannot be read.
std::string read_whole_file(const std::filesystem::path& file);

}  // namespace ca::audit
