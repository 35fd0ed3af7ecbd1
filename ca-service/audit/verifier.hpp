#pragma once
// Offline verification of an audit log (`ca-audit verify`): recomputes every record hash, the
// chain across files, every checkpoint's head and Merkle root and its signature with the
// audit certificate, and compares the log with the signed head in audit.head to detect a
// truncated tail. Stops at the first problem and names the record, file and line.

#include "ossl/handles.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ca::audit {

struct VerifyReport {
    bool intact = false;
    std::string problem;                  // the first problem found; "" when intact
    std::vector<std::string> notes;       // worth knowing, not failures
    std::vector<std::string> file_names;  // the files checked, in chain order
    std::uint64_t records = 0;            // records checked
    std::uint64_t first_seq = 0;          // seq of the first record checked
    std::uint64_t checkpoints = 0;
    std::optional<std::uint64_t> last_checkpoint_seq;
    std::optional<std::uint64_t> last_signed_tree_size;
    std::uint64_t unsigned_records = 0;                // after the last checkpoint: hash chain only
    std::optional<std::uint64_t> head_checkpoint_seq;  // audit.head's checkpoint, when compared
};

// `log` is an audit directory (every file, from audit-000001.jsonl, and audit.head) or one
// log file (a rotated file is checked from its rotation record on; audit.head only when it
// is the newest file of its directory). Throws std::runtime_error when `log` does not exist
// or cannot be read, or the certificate's key is unsupported; every finding about the log
// itself is in the report.
VerifyReport verify_log(const std::filesystem::path& log, const X509& audit_certificate);

}  // namespace ca::audit
