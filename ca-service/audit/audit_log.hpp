#pragma once
// The tamper-evident, fail-closed audit log of every issuance decision.
//
// Durability: append() returns only once its record is on disk (write + fdatasync). A writer
// thread group-commits: it writes what is queued as one batch and hands it to one of a few sync
// threads, so 64 workers share a handful of syncs instead of paying one each. When the disk is
// slow up to four commits are in flight at once (a new one starts once the newest has run
// 1 ms); each sync thread has its own file description, so each sees a writeback error. A
// record is acknowledged only once it and every record before it are durable, and after any
// failure nothing more is.
//
// Tamper evidence (format in record.hpp): records are hash-chained; a maintenance thread
// writes a checkpoint record every `checkpoint_every` records, and every
// `checkpoint_interval` when records arrived, signed by the audit key through
// pkcs11::Signer over (tree_size, head hash, RFC 6962 Merkle root, time). The latest signed
// checkpoint is also stored atomically in <dir>/audit.head, so cutting off the log's tail
// (with its last in-log checkpoint) is detected by `ca-audit verify`.
//
// Fail closed: if a record cannot be written, append() throws AuditUnavailable, and so does
// every later append(); failure() says why (for /healthz). The service must not answer a
// request whose record did not make it to disk. Nothing is retried: after a failed
// fdatasync the kernel may have dropped the data, so only a restart (which re-reads and
// re-checks the log) may continue.
//
// Checkpoint signing is different: if the HSM cannot sign (pkcs11::HsmUnavailable or any
// other error from the signer), that checkpoint is skipped and retried at the next interval.
// Decisions keep flowing, protected by the hash chain alone until the next signed
// checkpoint; checkpoint_failure() makes the outage visible. Signing happens outside the
// log's lock, so a slow HSM never delays a decision record; the checkpoint record then lands
// after the records that arrived meanwhile (its tree_size is smaller than its seq).
//
// Files: <dir>/audit-000001.jsonl, audit-000002.jsonl, ... Once a file passes
// `rotate_bytes`, the log writes a final checkpoint into it and starts the next file with a
// rotation record that links to the previous head and carries the Merkle frontier: the chain
// continues across files, and each file can be resumed on its own.
//
// Start-up re-reads and re-checks the newest file (hashes, chain, Merkle roots) and refuses to
// continue a damaged log, or one shorter than its audit.head says it was. One process at a
// time: <dir>/audit.lock is flock()ed.

#include "audit/disk.hpp"
#include "audit/record.hpp"
#include "pkcs11/signer.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ca::audit {

struct AuditConfig {
    std::filesystem::path dir;                         // created 0700 if missing
    std::size_t checkpoint_every = 1000;               // records between signed checkpoints
    std::chrono::seconds checkpoint_interval{10};      // longest unsigned stretch when records arrive
    std::uint64_t rotate_bytes = 64ull * 1024 * 1024;  // start a new file beyond this size
};

// The log cannot take records; issuance must stop. The message says why and what to do.
class AuditUnavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct AuditStats {
    std::uint64_t records_written = 0;  // durable records since start, checkpoints included
    std::uint64_t syncs = 0;            // fdatasync calls on log files: one per group commit
    std::uint64_t checkpoints_written = 0;
    std::uint64_t checkpoint_failures = 0;
    std::uint64_t rotations = 0;
};

class AuditLog {
public:
    // Opens or creates the log and resumes its chain. Throws std::invalid_argument for a bad
    // configuration, AuditUnavailable when the directory or files cannot be used, and
    // std::runtime_error when the existing log is damaged (run `ca-audit verify`).
    AuditLog(AuditConfig config, pkcs11::Signer& checkpoint_signer);
    // Same, with the disk operations supplied (tests inject failures).
    AuditLog(AuditConfig config, pkcs11::Signer& checkpoint_signer, Disk& disk);
    ~AuditLog();  // close()
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Blocks until the record is durably on disk and returns its seq. Thread-safe.
    // Throws AuditUnavailable when it is not written (now or ever again in this process).
    // Throws std::invalid_argument for a decision other than "issued"/"denied".
    std::uint64_t append(const DecisionRecord& record);
    std::uint64_t append(const ServiceRecord& record);

    // Queues the record and returns at once. `done(seq, nullptr)` runs once the record is
    // durable, or `done(0, &why)` once it can never be; on one of the log's threads (or the
    // caller's, when the log has already failed), so it must be quick: post elsewhere.
    using AppendDone = std::function<void(std::uint64_t seq, const std::string* error)>;
    void append_async(const DecisionRecord& record, AppendDone done);

    // The last n durable records (at most kTailCapacity), oldest first, as written.
    std::vector<std::string> tail(std::size_t n) const;
    static constexpr std::size_t kTailCapacity = 1000;

    // Why the log stopped taking records; nullopt while it works.
    std::optional<std::string> failure() const;
    // Why the last checkpoint could not be signed or stored; nullopt once one succeeds again.
    std::optional<std::string> checkpoint_failure() const;
    // seq of the last durable record; nullopt for an empty log.
    std::optional<std::uint64_t> last_seq() const;
    AuditStats stats() const;

    // Signs and writes a checkpoint now if records arrived since the last one. Returns false
    // when it could not (checkpoint_failure() says why).
    bool checkpoint_now();

    // Writes a final checkpoint, flushes and stops the threads; later appends throw.
    // Idempotent.
    void close();

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ca::audit
