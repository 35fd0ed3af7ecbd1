#pragma once
// Checking records one after another: the shared core of `ca-audit verify` and of the
// log's own recovery at start-up, so both agree on what an intact chain is.

#include "audit/checkpoint.hpp"
#include "audit/merkle.hpp"
#include "audit/record.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ca::audit {

struct RecordLocation {
    std::string file;              // file name, e.g. "audit-000001.jsonl"
    std::size_t line = 0;          // 1-based
    std::string describe() const;  // "audit-000001.jsonl line 18"
};

struct ParsedRecord {
    Json body;  // the record without its "hash" field
    std::string type;
    std::uint64_t seq = 0;
    Sha256 prev{};
    Sha256 hash{};
};

struct ParseResult {
    std::optional<ParsedRecord> record;
    std::string problem;  // set when record is empty
};

// Checks one line on its own: a JSON object of the expected shape, in canonical form, with
// seq/time/type/prev/hash, whose hash matches its content.
ParseResult parse_record(std::string_view line, const RecordLocation& where);

enum class ChainProblem {
    kNone,
    kSeqAhead,   // seq larger than expected: deletion (or a reordering, seen from its first half)
    kSeqBehind,  // seq smaller than expected: reordering or insertion
    kOther,
};

struct Finding {
    ChainProblem kind = ChainProblem::kNone;
    std::string message;
    explicit operator bool() const { return kind != ChainProblem::kNone; }
};

struct RecordContext {
    RecordLocation where;
    bool first_in_file = false;
    std::optional<std::string> previous_file;  // name of the file before this one, when known
};

// Checks a checkpoint record's signature (and that it names the certificate's key); returns
// the problem, prefixed with `what`, or nullopt when it verifies.
std::optional<std::string> check_checkpoint_signature(const ParsedRecord& checkpoint,
                                                      const CheckpointVerifier& signatures,
                                                      const std::string& what);

class ChainState {
public:
    ChainState() = default;  // a chain that starts at seq 0

    // Resumes the chain at a rotation record (a single rotated file, or the log's recovery),
    // trusting the previous hash and Merkle frontier it carries. The record must still be
    // passed to accept() afterwards. Returns a problem message if the record cannot seed.
    std::optional<std::string> start_at_rotation(const ParsedRecord& rotation, const RecordLocation& where);

    // Checks `record` (the next line, `line` its exact bytes) against the chain and takes it
    // in. `signatures` null skips checkpoint signature checks (recovery does).
    Finding accept(const ParsedRecord& record, std::string_view line, const RecordContext& context,
                   const CheckpointVerifier* signatures);

    std::uint64_t next_seq() const { return next_seq_; }
    std::uint64_t first_seq() const { return first_seq_; }
    const Sha256& head() const { return head_; }
    MerkleFrontier frontier() const { return frontier_at(next_seq_); }

    std::uint64_t checkpoints() const { return checkpoints_; }
    std::optional<std::uint64_t> last_checkpoint_seq() const { return last_checkpoint_seq_; }
    std::optional<std::uint64_t> last_signed_tree_size() const { return last_signed_tree_size_; }
    // Records after the last checkpoint record, i.e. not yet covered by a signature.
    std::uint64_t records_since_checkpoint() const { return records_since_checkpoint_; }
    // Hash of the checkpoint record at `seq`, if there is one.
    std::optional<Sha256> checkpoint_hash(std::uint64_t seq) const;

private:
    MerkleFrontier frontier_at(std::uint64_t size) const;
    Sha256 head_at(std::uint64_t size) const;
    void advance_base(std::uint64_t size);
    Finding check_checkpoint(const ParsedRecord& r, const RecordContext& c, const CheckpointVerifier* sig);
    Finding check_rotation(const ParsedRecord& r, const RecordContext& c);
    Finding check_payload(const ParsedRecord& r, const RecordContext& c);

    std::uint64_t first_seq_ = 0;
    std::uint64_t next_seq_ = 0;
    Sha256 head_{};
    // The Merkle state is kept lazily: the frontier at base_size_ (the last checkpoint) plus
    // the leaves since, because a checkpoint may cover fewer records than precede it.
    MerkleFrontier base_;
    Sha256 base_head_{};
    std::vector<std::pair<Sha256, Sha256>> window_;  // (leaf hash, record hash) from base_.size()

    std::uint64_t checkpoints_ = 0;
    std::optional<std::uint64_t> last_checkpoint_seq_;
    std::optional<std::uint64_t> last_signed_tree_size_;
    std::uint64_t records_since_checkpoint_ = 0;
    std::map<std::uint64_t, Sha256> checkpoint_hashes_;
};

}  // namespace ca::audit
