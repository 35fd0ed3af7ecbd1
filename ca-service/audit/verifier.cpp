#include "audit/verifier.hpp"

#include "audit/chain.hpp"
#include "audit/checkpoint.hpp"
#include "audit/files.hpp"

#include <stdexcept>

namespace ca::audit {

namespace {

// How far ahead to look for a missing seq before calling a gap a deletion.
constexpr std::size_t kReorderLookahead = 64;

std::vector<std::string_view> split_lines(const std::string& content) {
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos < content.size();) {
        std::size_t end = content.find('\n', pos);
        if (end == std::string::npos) end = content.size();  // a last line without newline
        lines.emplace_back(content.data() + pos, end - pos);
        pos = end + 1;
    }
    return lines;
}

std::optional<std::uint64_t> quick_seq(std::string_view line) {
    const Json j = Json::parse(line, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto it = j.find(field::kSeq);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
}

class Verification {
public:
    Verification(const X509& cert) : signatures_(cert) {}

    VerifyReport run(const std::filesystem::path& log) {
        std::error_code ec;
        if (std::filesystem::is_directory(log, ec)) {
            dir_ = log;
            files_ = list_log_files(log);
            if (files_.empty()) return fail("no audit log files (audit-NNNNNN.jsonl) in " + log.string());
            if (!check_numbering()) return std::move(report_);
            whole_chain_ = true;
        } else if (std::filesystem::is_regular_file(log, ec)) {
            dir_ = log.parent_path().empty() ? std::filesystem::path(".") : log.parent_path();
            const auto index = parse_log_file_name(log.filename().string());
            files_.push_back({index.value_or(0), log});
            single_file_ = true;
            whole_chain_ = index == 1u;
        } else {
            throw std::runtime_error("no audit log at " + log.string() +
                                     ": give the audit directory or one audit-NNNNNN.jsonl file");
        }

        for (std::size_t i = 0; i < files_.size(); ++i)
            if (!check_file(i)) return std::move(report_);
        if (!check_head(log)) return std::move(report_);

        report_.intact = true;
        report_.records = chain_.next_seq() - chain_.first_seq();
        report_.first_seq = chain_.first_seq();
        report_.checkpoints = chain_.checkpoints();
        report_.last_checkpoint_seq = chain_.last_checkpoint_seq();
        report_.last_signed_tree_size = chain_.last_signed_tree_size();
        report_.unsigned_records = chain_.records_since_checkpoint();
        return std::move(report_);
    }

private:
    VerifyReport fail(std::string problem) {
        report_.intact = false;
        report_.problem = std::move(problem);
        report_.records = chain_.next_seq() - chain_.first_seq();
        report_.checkpoints = chain_.checkpoints();
        return std::move(report_);
    }
    bool failed(std::string problem) {
        report_.problem = std::move(problem);
        report_.records = chain_.next_seq() - chain_.first_seq();
        report_.checkpoints = chain_.checkpoints();
        return false;
    }

    bool check_numbering() {
        if (files_.front().index != 1)
            return failed(log_file_name(1) + " is missing: the oldest file is " +
                          log_file_name(files_.front().index) +
                          " — the first files were deleted (verification needs the whole chain)");
        for (std::size_t i = 1; i < files_.size(); ++i) {
            if (files_[i].index != files_[i - 1].index + 1)
                return failed(log_file_name(files_[i - 1].index + 1) + " is missing: the files jump from " +
                              log_file_name(files_[i - 1].index) + " to " + log_file_name(files_[i].index) +
                              " — a log file was deleted");
        }
        return true;
    }

    bool check_file(std::size_t i) {
        const LogFile& file = files_[i];
        const std::string name = file.path.filename().string();
        report_.file_names.push_back(name);
        const std::string content = read_whole_file(file.path);
        if (content.empty()) {
            if (i == 0 && files_.size() == 1 && file.index == 1) return true;  // a log that has no record yet
            return failed(name + " is empty: its records were removed");
        }
        const std::vector<std::string_view> lines = split_lines(content);
        if (content.back() != '\n')
            return failed(name + " line " + std::to_string(lines.size()) +
                          " is incomplete (no newline): a torn write, or the file was cut inside a record");

        std::optional<std::string> previous_file;
        if (whole_chain_ && i > 0) previous_file = files_[i - 1].path.filename().string();
        for (std::size_t j = 0; j < lines.size(); ++j) {
            const RecordLocation where{name, j + 1};
            ParseResult parsed = parse_record(lines[j], where);
            if (!parsed.record) return failed(parsed.problem);
            if (i == 0 && j == 0 && !whole_chain_) {
                if (auto problem = chain_.start_at_rotation(*parsed.record, where)) return failed(*problem);
                report_.notes.push_back(
                    "verified " + name + " alone: the chain starts at seq " +
                    std::to_string(parsed.record->seq) +
                    "; its link to the previous file is not checked (verify the directory for that)");
            }
            Finding f = chain_.accept(*parsed.record, lines[j], {where, j == 0, previous_file}, &signatures_);
            if (f.kind == ChainProblem::kSeqAhead) {
                // A gap whose missing seq shows up a little later is a reordering, not a deletion.
                const std::uint64_t expected = chain_.next_seq();
                for (std::size_t k = j + 1; k < lines.size() && k <= j + kReorderLookahead; ++k) {
                    if (quick_seq(lines[k]) == expected)
                        return failed("record at " + where.describe() + " has seq " +
                                      std::to_string(parsed.record->seq) + " but seq " +
                                      std::to_string(expected) + " comes later, at line " +
                                      std::to_string(k + 1) + ": records reordered");
                }
            }
            if (f) return failed(f.message);
        }
        return true;
    }

    // The signed head in audit.head proves how long the log was; a shorter log lost its tail.
    bool check_head(const std::filesystem::path& log) {
        if (single_file_) {
            // audit.head speaks about a single file only when it is the newest of its directory.
            if (files_.front().index == 0) {
                report_.notes.push_back("audit.head not compared: " + log.filename().string() +
                                        " is not named like a log file (audit-NNNNNN.jsonl)");
                return true;
            }
            const auto all = list_log_files(dir_);
            if (all.empty() || all.back().index != files_.front().index) {
                report_.notes.push_back("audit.head not compared: " + log.filename().string() +
                                        " is not the newest file of its directory");
                return true;
            }
        }
        const auto path = dir_ / kHeadFileName;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
            if (chain_.checkpoints() > 0)
                return failed(
                    std::string(kHeadFileName) +
                    " is missing although the log holds signed checkpoints: a truncated tail cannot be "
                    "ruled out (was it deleted?)");
            report_.notes.push_back(
                "no signed checkpoint yet: the log is hash-chained, but a truncated tail could "
                "not be detected");
            return true;
        }
        std::string content = read_whole_file(path);
        if (!content.empty() && content.back() == '\n') content.pop_back();
        ParseResult head = parse_record(content, {std::string(kHeadFileName), 1});
        if (!head.record) return failed(head.problem);
        if (head.record->type != record_type::kCheckpoint)
            return failed(std::string(kHeadFileName) +
                          " does not hold a checkpoint record — it was modified");
        const std::uint64_t seq = head.record->seq;
        if (auto problem = check_checkpoint_signature(
                *head.record, signatures_,
                std::string(kHeadFileName) + " (checkpoint at seq " + std::to_string(seq) + ")"))
            return failed(*problem);
        if (seq >= chain_.next_seq()) {
            const std::uint64_t tree_size = head.record->body.value(field::kTreeSize, std::uint64_t{0});
            return failed("log truncated: the signed checkpoint in " + std::string(kHeadFileName) +
                          " is record " + std::to_string(seq) + " (covering " + std::to_string(tree_size) +
                          " records before it), so the log held at least " + std::to_string(seq + 1) +
                          " records, but only " + std::to_string(chain_.next_seq()) + " remain");
        }
        if (seq >= chain_.first_seq()) {
            if (chain_.checkpoint_hash(seq) != head.record->hash)
                return failed(std::string(kHeadFileName) + " (checkpoint at seq " + std::to_string(seq) +
                              ") differs from record " + std::to_string(seq) +
                              " of the log — one of them was altered");
            report_.head_checkpoint_seq = seq;
            if (chain_.last_checkpoint_seq() != seq)
                report_.notes.push_back(std::string(kHeadFileName) + " holds the checkpoint at seq " +
                                        std::to_string(seq) + ", the log a later one at seq " +
                                        std::to_string(chain_.last_checkpoint_seq().value_or(0)) +
                                        " (the service stopped before updating it)");
        } else {
            report_.notes.push_back(std::string(kHeadFileName) + " names seq " + std::to_string(seq) +
                                    ", before this file: not compared");
        }
        return true;
    }

    CheckpointVerifier signatures_;
    std::filesystem::path dir_;
    std::vector<LogFile> files_;
    bool single_file_ = false;  // one file was given, not the directory
    bool whole_chain_ = false;  // starting at seq 0
    ChainState chain_;
    VerifyReport report_;
};

}  // namespace

VerifyReport verify_log(const std::filesystem::path& log, const X509& audit_certificate) {
    return Verification(audit_certificate).run(log);
}

}  // namespace ca::audit
