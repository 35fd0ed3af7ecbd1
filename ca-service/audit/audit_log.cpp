#include "audit/audit_log.hpp"

#include "audit/chain.hpp"
#include "audit/files.hpp"
#include "audit/merkle.hpp"
#include "ossl/encoding.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace ca::audit {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMinRotateBytes = 4096;  // below this every few records would rotate
constexpr mode_t kFileMode = 0600;
// Group commits in flight at once. A record written while an fdatasync runs does not wait for
// it to finish before its own starts: the device merges concurrent flushes, so a commit costs
// about one flush of latency instead of one and a half (measured on this VM's virtio disk:
// 1 thread ~1,000 fdatasync/s, 2-4 threads ~3,700/s; with a slow disk four in flight keep the
// latency near one flush, at the price of more, smaller syncs). Each commit is acknowledged only once
// every record before it is durable too.
constexpr unsigned kSyncSlots = 4;
// A further commit starts only once the newest one in flight has run this long: a fast disk
// then sees one sync at a time with the records that arrived meanwhile (fewer syncs, less
// CPU), a slow one up to kSyncSlots overlapping syncs (latency near one flush).
constexpr std::chrono::microseconds kOverlapAfter{1000};
// Commits start at most this often unless kEagerCommitRecords are waiting: under load a
// commit then carries ~2x the records for half the fdatasyncs (each costs ~50-150 us of CPU
// on this VM's virtio disk, CPU the HSM signatures need). A lone request after a quiet
// spell still commits at once; a busy one waits at most this long.
constexpr std::chrono::microseconds kMinCommitGap{500};
constexpr std::size_t kEagerCommitRecords = 32;
constexpr std::string_view kTempSuffix = ".tmp";

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// A queued record, already sealed into the chain, waiting for the writer.
struct Entry {
    std::string line;
    std::uint32_t new_file_index = 0;  // non-zero: this record starts that file (rotation)
    std::uint64_t seq = 0;
    AuditLog::AppendDone done;         // asynchronous appends only
};

void validate(const AuditConfig& c) {
    if (c.dir.empty()) throw std::invalid_argument("audit log: dir is empty; set the audit directory");
    if (c.checkpoint_every == 0)
        throw std::invalid_argument(
            "audit log: checkpoint_every must be at least 1 (records between checkpoints)");
    if (c.checkpoint_interval < std::chrono::seconds(1))
        throw std::invalid_argument("audit log: checkpoint_interval must be at least 1 second");
    if (c.rotate_bytes < kMinRotateBytes)
        throw std::invalid_argument("audit log: rotate_bytes must be at least " +
                                    std::to_string(kMinRotateBytes));
}

}  // namespace

class AuditLog::Impl {
public:
    Impl(AuditConfig config, pkcs11::Signer& signer, Disk* disk)
        : config_(std::move(config)), signer_(signer), disk_(disk != nullptr ? *disk : posix_disk_) {
        validate(config_);
        signer_spki_sha256_ = ossl::to_hex(ossl::sha256(signer_.public_key_info()));
        open_directory();
        recover();
        durable_size_ = file_size_;
        writer_ = std::thread([this] { writer_loop(); });
        for (unsigned i = 0; i < kSyncSlots; ++i) syncers_.emplace_back([this] { sync_loop(); });
        maintenance_ = std::thread([this] { maintenance_loop(); });
    }

    ~Impl() {
        try {
            close();
        } catch (...) {
            // Destructors must not throw; a failed final checkpoint is already in checkpoint_failure_.
        }
    }

    // A failed or closing log takes nothing more: `done` hears why (with the lock released).
    bool refused_while_closed(std::unique_lock<std::mutex>& lk, const AuditLog::AppendDone& done) {
        if (!failure_ && !closing_) return false;
        const std::string why = failure_ ? *failure_ : "the audit log in " + config_.dir.string() + " is closed";
        lk.unlock();
        done(0, &why);
        return true;
    }

    void append_async(Json payload, AuditLog::AppendDone done) {
        std::unique_lock lk(mu_);
        if (refused_while_closed(lk, done)) return;
        enqueue_locked(std::move(payload), /*counts=*/true, 0, nullptr, std::move(done));
    }

    // Decision records whose fields need no escaping skip the JSON tree (see PlainDecision).
    void append_async(const DecisionRecord& record, AuditLog::AppendDone done) {
        std::optional<PlainDecision> plain = PlainDecision::from(record);
        if (!plain) return append_async(to_json(record), std::move(done));
        std::unique_lock lk(mu_);
        if (refused_while_closed(lk, done)) return;
        enqueue_sealed_locked(
            [&](std::uint64_t seq, std::string_view time, const Sha256& prev, Sha256& hash) {
                return plain->seal(seq, time, prev, hash);
            },
            /*counts=*/true, 0, nullptr, std::move(done));
    }

    std::uint64_t append(Json payload) {
        std::unique_lock lk(mu_);
        if (failure_) throw AuditUnavailable(*failure_);
        if (closing_) throw AuditUnavailable("the audit log in " + config_.dir.string() + " is closed");
        const std::uint64_t seq = enqueue_locked(std::move(payload), /*counts=*/true, 0, nullptr);
        // The record goes out with the next batch the writer takes; waiting on that batch's
        // condition spares the wake-ups of the batch being written now.
        auto& batch_cv = batch_cvs_[(batches_taken_ + 1) % 2];
        batch_cv.wait(lk, [&] { return durable_next_ > seq || failure_; });
        if (durable_next_ > seq) return seq;
        throw AuditUnavailable(*failure_);
    }

    std::vector<std::string> tail(std::size_t n) const {
        std::lock_guard lk(mu_);
        n = std::min(n, tail_.size());
        return {tail_.end() - static_cast<std::ptrdiff_t>(n), tail_.end()};
    }

    // Asked on every request: lock-free while the log works (append_async still checks
    // under the lock, so a failure this misses by a hair refuses the record anyway).
    std::optional<std::string> failure() const {
        if (!failed_.load(std::memory_order_acquire)) return std::nullopt;
        std::lock_guard lk(mu_);
        return failure_;
    }
    std::optional<std::string> checkpoint_failure() const {
        std::lock_guard lk(mu_);
        return checkpoint_failure_;
    }
    std::optional<std::uint64_t> last_seq() const {
        std::lock_guard lk(mu_);
        if (durable_next_ == 0) return std::nullopt;
        return durable_next_ - 1;
    }
    AuditStats stats() const {
        std::lock_guard lk(mu_);
        return stats_;
    }

    bool checkpoint_now() { return run_checkpoint(false); }

    void close() {
        std::lock_guard close_lock(close_mu_);
        {
            std::lock_guard lk(mu_);
            if (closed_) return;
            closing_ = true;
            maintenance_stop_ = true;
        }
        maintenance_cv_.notify_all();
        if (maintenance_.joinable()) maintenance_.join();
        run_checkpoint(false);  // the final one; a signing failure is kept in checkpoint_failure_
        {
            std::lock_guard lk(mu_);
            writer_stop_ = true;
        }
        writer_cv_.notify_all();
        if (writer_.joinable()) writer_.join();
        {
            std::lock_guard lk(mu_);
            sync_stop_ = true;
        }
        sync_cv_.notify_all();
        for (auto& t : syncers_)
            if (t.joinable()) t.join();
        log_fd_.reset();
        dir_fd_.reset();
        lock_fd_.reset();  // releases the flock
        std::lock_guard lk(mu_);
        closed_ = true;
    }

private:
    // ---- start-up -------------------------------------------------------------------------

    void open_directory() {
        const auto& dir = config_.dir;
        std::error_code ec;
        if (!std::filesystem::exists(dir, ec)) {
            std::filesystem::create_directories(dir, ec);
            if (ec)
                throw AuditUnavailable("cannot create the audit directory " + dir.string() + ": " +
                                       ec.message());
            // Records name nodes and hosts: only the service account may read them.
            std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::replace, ec);
            if (ec)
                throw AuditUnavailable("cannot restrict " + dir.string() + " to mode 0700: " + ec.message());
        } else if (!std::filesystem::is_directory(dir, ec)) {
            throw AuditUnavailable("the audit log path " + dir.string() + " exists but is not a directory");
        }
        dir_fd_ = Fd(disk_.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
        if (!dir_fd_)
            throw AuditUnavailable("cannot open the audit directory " + dir.string() + ": " +
                                   errno_text(errno));

        const auto lock_path = dir / kLockFileName;
        lock_fd_ = Fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode));
        if (!lock_fd_)
            throw AuditUnavailable("cannot create " + lock_path.string() + ": " + errno_text(errno));
        if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
            throw AuditUnavailable(
                "the audit log in " + dir.string() +
                " is in use by another process (audit.lock is held); two writers would fork "
                "the chain — stop the other ca-service first");
    }

    [[noreturn]] void damaged(const std::string& problem) const {
        throw std::runtime_error(
            "the audit log in " + config_.dir.string() + " is damaged: " + problem +
            ". The ca-service will not extend a log it cannot verify; run `ca-audit verify " +
            config_.dir.string() + " --cert AUDIT_CERT` and restore or repair the log first");
    }

    void recover() {
        const auto files = list_log_files(config_.dir);
        if (files.empty()) {
            check_head_sidecar(ChainState{});  // an audit.head without any log file: all deleted
            open_log_file(1, /*create=*/true);
            return;
        }
        const LogFile& last = files.back();
        const std::string name = last.path.filename().string();
        const std::string content = read_whole_file(last.path);
        if (content.empty() && last.index != 1)
            damaged(name + " is empty, but a rotated file must start with a rotation record");
        if (!content.empty() && content.back() != '\n') {
            const std::size_t good = content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1;
            throw std::runtime_error("the last line of " + last.path.string() + " is incomplete (" +
                                     std::to_string(content.size() - good) +
                                     " bytes without a newline): the service probably stopped while writing "
                                     "it, before the record was "
                                     "acknowledged. Run `ca-audit verify " +
                                     config_.dir.string() +
                                     " --cert AUDIT_CERT`; if everything before it verifies, cut the partial "
                                     "line with `truncate -s " +
                                     std::to_string(good) + " " + last.path.string() + "` and start again");
        }

        ChainState chain;
        std::optional<std::string> previous_file;
        if (files.size() > 1) previous_file = files[files.size() - 2].path.filename().string();
        std::size_t line_no = 0;
        for (std::size_t pos = 0; pos < content.size();) {
            const std::size_t end = content.find('\n', pos);
            const std::string_view line(content.data() + pos, end - pos);
            pos = end + 1;
            ++line_no;
            const RecordLocation where{name, line_no};
            ParseResult parsed = parse_record(line, where);
            if (!parsed.record) damaged(parsed.problem);
            if (line_no == 1 && last.index != 1) {
                if (auto problem = chain.start_at_rotation(*parsed.record, where)) damaged(*problem);
            }
            if (Finding f = chain.accept(*parsed.record, line, {where, line_no == 1, previous_file}, nullptr))
                damaged(f.message);
            tail_.emplace_back(line);
            if (tail_.size() > kTailCapacity) tail_.pop_front();
        }

        check_head_sidecar(chain);
        next_seq_ = durable_next_ = chain.next_seq();
        head_ = chain.head();
        frontier_ = chain.frontier();
        records_since_checkpoint_ = chain.records_since_checkpoint();
        open_log_file(last.index, /*create=*/false);
        file_size_ = content.size();
    }

    // A head sidecar that is ahead of the log means the log lost its tail: refuse.
    void check_head_sidecar(const ChainState& chain) const {
        const auto path = config_.dir / kHeadFileName;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) return;
        std::string content = read_whole_file(path);
        if (!content.empty() && content.back() == '\n') content.pop_back();
        ParseResult head = parse_record(content, {std::string(kHeadFileName), 1});
        if (!head.record || head.record->type != record_type::kCheckpoint)
            damaged(std::string(kHeadFileName) + " is not a valid checkpoint record");
        const std::uint64_t seq = head.record->seq;
        if (seq >= chain.next_seq())
            damaged("log truncated: " + std::string(kHeadFileName) + " holds the signed checkpoint at seq " +
                    std::to_string(seq) + ", but the log ends at " +
                    (chain.next_seq() == 0 ? std::string("no record")
                                           : "seq " + std::to_string(chain.next_seq() - 1)));
        if (seq >= chain.first_seq() && chain.checkpoint_hash(seq) != head.record->hash)
            damaged(std::string(kHeadFileName) + " (checkpoint at seq " + std::to_string(seq) +
                    ") does not match record " + std::to_string(seq) + " of the log");
    }

    void open_log_file(std::uint32_t index, bool create) {
        const auto path = config_.dir / log_file_name(index);
        const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? (O_CREAT | O_EXCL) : 0);
        log_fd_ = Fd(disk_.open(path, flags, kFileMode));
        if (!log_fd_)
            throw AuditUnavailable("cannot open the audit log file " + path.string() +
                                   " for appending: " + errno_text(errno));
        if (create && disk_.fsync(dir_fd_.get()) != 0)
            throw AuditUnavailable("cannot sync the audit directory " + config_.dir.string() + ": " +
                                   errno_text(errno));
        file_index_ = stream_file_index_ = index;
        file_size_ = 0;
    }

    // ---- the chain (all under mu_) ---------------------------------------------------------

    // Seals `record` as the next one in the chain and queues it for the writer.
    std::uint64_t enqueue_locked(Json record, bool counts, std::uint32_t new_file_index,
                                 std::string* line_copy, AuditLog::AppendDone done = {}) {
        return enqueue_sealed_locked(
            [&](std::uint64_t seq, std::string_view time, const Sha256& prev, Sha256& hash) {
                return seal(record, seq, time, prev, hash);
            },
            counts, new_file_index, line_copy, std::move(done));
    }

    // The same for a `sealer(seq, time, prev, hash_out)` that returns the sealed line.
    template <typename Sealer>
    std::uint64_t enqueue_sealed_locked(Sealer&& sealer, bool counts, std::uint32_t new_file_index,
                                        std::string* line_copy, AuditLog::AppendDone done) {
        Sha256 hash;
        std::string line = sealer(next_seq_, rfc3339_millis(std::chrono::system_clock::now()), head_, hash);
        frontier_.append(merkle_leaf_hash(ossl::as_bytes(line)));
        head_ = hash;
        const std::uint64_t seq = next_seq_++;
        if (line_copy != nullptr) *line_copy = line;
        pending_.push_back({std::move(line), new_file_index, seq, std::move(done)});
        // The writer sleeps on an empty queue, or briefly for a batch as large as the last one.
        if (pending_.size() == 1) writer_cv_.notify_one();
        if (counts && ++records_since_checkpoint_ == config_.checkpoint_every) maintenance_cv_.notify_one();
        return seq;
    }

    void enqueue_rotation_locked() {
        if (stream_file_index_ >= kMaxFileIndex) {
            fail_locked("the audit directory " + config_.dir.string() + " has reached the last file number " +
                        std::to_string(kMaxFileIndex) +
                        "; archive the old files and start a new audit directory");
            return;
        }
        Json rotation = Json::object();
        rotation[field::kType] = record_type::kRotation;
        rotation[field::kPreviousFile] = log_file_name(stream_file_index_);
        rotation[field::kTreeSize] = next_seq_;
        Json frontier = Json::array();
        for (const auto& h : frontier_.subtree_roots()) frontier.push_back(ossl::to_hex(h));
        rotation[field::kMerkleFrontier] = std::move(frontier);
        ++stream_file_index_;
        enqueue_locked(std::move(rotation), /*counts=*/true, stream_file_index_, nullptr);
        rotation_enqueued_ = true;
    }

    void fail_locked(std::string why) {
        if (!failure_) failure_ = std::move(why);
        failed_.store(true, std::memory_order_release);
        for (auto& e : pending_)
            if (e.done) undeliverable_.push_back(std::move(e.done));
        pending_.clear();
        // Written but not known durable: never acknowledged, cut off by the writer.
        if (!unsynced_.empty()) truncate_needed_ = true;
        for (auto& e : unsynced_)
            if (e.done) undeliverable_.push_back(std::move(e.done));
        unsynced_.clear();
        durable_cv_.notify_all();
        for (auto& cv : batch_cvs_) cv.notify_all();
        maintenance_cv_.notify_all();
        writer_cv_.notify_all();  // it reports the undeliverable appends
    }

    // ---- the writer thread -----------------------------------------------------------------

    // Tells asynchronous appenders whose records will never be written; runs without mu_.
    void report_undeliverable(std::unique_lock<std::mutex>& lk) {
        if (undeliverable_.empty()) return;
        std::vector<AuditLog::AppendDone> dead;
        dead.swap(undeliverable_);
        const std::string why = failure_.value_or("the audit log stopped");
        lk.unlock();
        for (auto& done : dead) done(0, &why);
        lk.lock();
    }

    // The writer thread: seals nothing, only writes. Ordinary batches are written and handed
    // to a sync thread (at most kSyncSlots in flight); a batch that starts a new file (rotation)
    // waits for the commits in flight and is written and synced here, as before.
    void writer_loop() {
        std::vector<Entry> batch;
        std::string buffer;
        std::unique_lock lk(mu_);
        for (;;) {
            report_undeliverable(lk);
            writer_cv_.wait(lk, [&] {
                return !undeliverable_.empty() || (truncate_needed_ && syncs_in_flight_ == 0) ||
                       (!pending_.empty() && (failure_ || syncs_in_flight_ < kSyncSlots)) ||
                       (writer_stop_ && pending_.empty() && syncs_in_flight_ == 0);
            });
            if (!undeliverable_.empty()) continue;
            if (truncate_needed_ && syncs_in_flight_ == 0) {
                // After a failure: cut off what reached the file without being acknowledged,
                // so a restart after the fix finds a clean tail.
                truncate_needed_ = false;
                const std::uint64_t size = durable_size_;
                lk.unlock();
                if (disk_.ftruncate(log_fd_.get(), static_cast<off_t>(size)) == 0) disk_.fsync(log_fd_.get());
                lk.lock();
                continue;
            }
            if (pending_.empty()) break;  // stopping, and everything is written
            if (failure_) {
                fail_locked(*failure_);
                continue;
            }
            const bool rotation =
                std::any_of(pending_.begin(), pending_.end(), [](const Entry& e) { return e.new_file_index != 0; });
            if (rotation && syncs_in_flight_ > 0) {
                writer_cv_.wait(lk, [&] { return syncs_in_flight_ == 0 || failure_; });
                continue;
            }
            if (!rotation && syncs_in_flight_ > 0 && !writer_stop_) {
                const auto due = last_sync_started_ + kOverlapAfter;
                if (Clock::now() < due) {
                    writer_cv_.wait_until(lk, due, [&] {
                        return syncs_in_flight_ == 0 || failure_ || writer_stop_ || !undeliverable_.empty() ||
                               (truncate_needed_ && syncs_in_flight_ == 0);
                    });
                    continue;
                }
            }
            if (!rotation && !writer_stop_ && pending_.size() < kEagerCommitRecords) {
                const auto due = last_sync_started_ + kMinCommitGap;
                if (Clock::now() < due) {
                    writer_cv_.wait_until(lk, due, [&] {
                        return failure_ || writer_stop_ || !undeliverable_.empty() ||
                               pending_.size() >= kEagerCommitRecords;
                    });
                    continue;
                }
            }
            batch.swap(pending_);
            const std::uint64_t batch_number = ++batches_taken_;
            if (rotation) {
                lk.unlock();
                std::optional<std::string> error = write_batch(batch);
                lk.lock();
                if (error) {
                    for (auto& e : batch)
                        if (e.done) undeliverable_.push_back(std::move(e.done));
                    fail_locked(std::move(*error));
                } else {
                    durable_size_ = file_size_;
                    mark_durable_locked(batch);
                    batch_cvs_[batch_number % 2].notify_all();
                }
            } else {
                buffer.clear();
                for (const Entry& e : batch) {
                    buffer += e.line;
                    buffer += '\n';
                }
                lk.unlock();
                std::optional<std::string> error =
                    write_all(log_fd_.get(), buffer, config_.dir / log_file_name(file_index_));
                lk.lock();
                if (error) {
                    // A short write may have left part of the batch in the file.
                    truncate_needed_ = true;
                    for (auto& e : batch)
                        if (e.done) undeliverable_.push_back(std::move(e.done));
                    fail_locked(std::move(*error));
                } else if (failure_) {
                    // A commit failed while this batch was being written: it is never acknowledged.
                    truncate_needed_ = true;
                    for (auto& e : batch)
                        if (e.done) undeliverable_.push_back(std::move(e.done));
                } else {
                    file_size_ += buffer.size();
                    sync_jobs_.push_back({batch.back().seq + 1, file_index_, file_size_});
                    ++syncs_in_flight_;
                    last_sync_started_ = Clock::now();
                    for (auto& e : batch) unsynced_.push_back(std::move(e));
                    sync_cv_.notify_one();
                }
            }
            batch.clear();
            if (rotation_enqueued_ && file_index_ == stream_file_index_)
                rotation_enqueued_ = rotation_requested_ = false;
            if (file_size_ >= config_.rotate_bytes && !rotation_requested_) {
                rotation_requested_ = true;
                maintenance_cv_.notify_one();
            }
            deliver(lk);
        }
    }

    // Records [durable_next_, end of `written`) are on disk: count them, keep them for tail(),
    // and collect the completions of asynchronous appends.
    template <typename Entries>
    void mark_durable_locked(Entries& written) {
        durable_next_ += written.size();
        stats_.records_written += written.size();
        for (auto& e : written) {
            if (e.done) to_deliver_.emplace_back(e.seq, std::move(e.done));
            tail_.push_back(std::move(e.line));
            if (tail_.size() > kTailCapacity) tail_.pop_front();
        }
        durable_cv_.notify_all();
    }

    // Runs the queued completions in seq order: one thread at a time delivers, the others
    // only queue (completions must be quick, so the deliverer is not held up for long).
    void deliver(std::unique_lock<std::mutex>& lk) {
        if (delivering_) return;
        delivering_ = true;
        std::vector<std::pair<std::uint64_t, AuditLog::AppendDone>> now;
        while (!to_deliver_.empty()) {
            now.assign(std::make_move_iterator(to_deliver_.begin()), std::make_move_iterator(to_deliver_.end()));
            to_deliver_.clear();
            lk.unlock();
            for (auto& [seq, done] : now) done(seq, nullptr);
            now.clear();
            lk.lock();
        }
        delivering_ = false;
    }

    // A sync thread: fdatasync through its own open file description (so that every thread
    // sees a writeback error, not only the first to ask), then acknowledge every record up to
    // the end of its batch, in order. After any failure nothing more is acknowledged.
    void sync_loop() {
        Fd fd;
        std::uint32_t fd_index = 0;
        std::unique_lock lk(mu_);
        for (;;) {
            sync_cv_.wait(lk, [&] { return !sync_jobs_.empty() || sync_stop_; });
            if (sync_jobs_.empty()) return;
            const SyncJob job = sync_jobs_.front();
            sync_jobs_.pop_front();
            ++stats_.syncs;
            lk.unlock();
            const auto path = config_.dir / log_file_name(job.file_index);
            std::optional<std::string> error;
            if (!fd || fd_index != job.file_index) {
                fd = Fd(disk_.open(path, O_RDONLY | O_CLOEXEC, 0));
                fd_index = job.file_index;
                if (!fd) error = stop_message(path, "cannot open for fdatasync: " + errno_text(errno));
            }
            if (!error && disk_.fdatasync(fd.get()) != 0)
                error = stop_message(path, "fdatasync failed: " + errno_text(errno));
            lk.lock();
            --syncs_in_flight_;
            if (error) {
                fail_locked(std::move(*error));
            } else if (!failure_ && job.end_seq > durable_next_) {
                std::size_t n = 0;
                while (n < unsynced_.size() && unsynced_[n].seq < job.end_seq) ++n;
                auto first = unsynced_.begin();
                auto last = first + static_cast<std::ptrdiff_t>(n);
                std::vector<Entry> now_durable(std::make_move_iterator(first), std::make_move_iterator(last));
                unsynced_.erase(first, last);
                durable_size_ = std::max(durable_size_, job.file_size);
                mark_durable_locked(now_durable);
                for (auto& cv : batch_cvs_) cv.notify_all();
            }
            writer_cv_.notify_one();  // a commit slot is free
            deliver(lk);
        }
    }

    // Writes and syncs one batch; nullopt on success. Runs without mu_: only the writer
    // thread touches log_fd_ and file_size_, and only it changes file_index_.
    std::optional<std::string> write_batch(const std::vector<Entry>& batch) {
        std::string buffer;
        for (const Entry& e : batch) {
            if (e.new_file_index != 0) {
                if (auto error = flush(buffer)) return error;
                if (auto error = start_file(e.new_file_index, e.line + '\n')) return error;
                continue;
            }
            buffer += e.line;
            buffer += '\n';
        }
        return flush(buffer);
    }

    std::optional<std::string> flush(std::string& buffer) {
        if (buffer.empty()) return std::nullopt;
        const auto path = config_.dir / log_file_name(file_index_);
        std::optional<std::string> error = write_all(log_fd_.get(), buffer, path);
        if (!error) error = sync(log_fd_.get(), path);
        if (error) {
            // Cut off what may have reached the file, so a restart after the fix finds a clean
            // tail; those records were never acknowledged.
            if (disk_.ftruncate(log_fd_.get(), static_cast<off_t>(file_size_)) == 0) disk_.fsync(log_fd_.get());
            return error;
        }
        file_size_ += buffer.size();
        buffer.clear();
        return std::nullopt;
    }

    // Creates the next file holding `first_line` (the rotation record) under a temporary name
    // and renames it into place once durable, so a crash never leaves an empty or headless file.
    std::optional<std::string> start_file(std::uint32_t index, const std::string& first_line) {
        const auto path = config_.dir / log_file_name(index);
        auto temp = path;
        temp += kTempSuffix;
        std::error_code ec;
        if (std::filesystem::exists(path, ec))
            return stop_message(path, "refusing to overwrite an existing log file during rotation");
        Fd fd(disk_.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, kFileMode));
        if (!fd) return stop_message(temp, "cannot create: " + errno_text(errno));
        if (auto error = write_all(fd.get(), first_line, temp)) return error;
        if (auto error = sync(fd.get(), temp)) return error;
        if (disk_.rename(temp, path) != 0)
            return stop_message(path, "cannot rename into place: " + errno_text(errno));
        if (disk_.fdatasync(dir_fd_.get()) != 0)
            return stop_message(config_.dir, "cannot sync the directory: " + errno_text(errno));
        log_fd_ = std::move(fd);
        file_size_ = first_line.size();
        std::lock_guard lk(mu_);
        file_index_ = index;
        ++stats_.rotations;
        return std::nullopt;
    }

    std::optional<std::string> write_all(int fd, std::string_view data, const std::filesystem::path& path) {
        while (!data.empty()) {
            const ssize_t n = disk_.write(fd, data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return stop_message(path, "write failed: " + errno_text(n < 0 ? errno : EIO));
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return std::nullopt;
    }

    std::optional<std::string> sync(int fd, const std::filesystem::path& path) {
        {
            std::lock_guard lk(mu_);
            ++stats_.syncs;
        }
        if (disk_.fdatasync(fd) != 0) return stop_message(path, "fdatasync failed: " + errno_text(errno));
        return std::nullopt;
    }

    static std::string stop_message(const std::filesystem::path& path, const std::string& what) {
        return "cannot write the audit log (" + path.string() + ": " + what +
               "); issuance is stopped (fail closed) until the disk problem is fixed and the ca-service "
               "restarted";
    }

    // ---- checkpoints and rotation ------------------------------------------------------------

    bool rotation_wanted_locked() const { return rotation_requested_ && !rotation_enqueued_; }

    void maintenance_loop() {
        std::unique_lock lk(mu_);
        auto next_tick = Clock::now() + config_.checkpoint_interval;
        bool backoff = false;  // after a signing failure, wait for the next tick
        while (!maintenance_stop_) {
            maintenance_cv_.wait_until(lk, next_tick, [&] {
                return maintenance_stop_ ||
                       (!failure_ && !backoff &&
                        (rotation_wanted_locked() || records_since_checkpoint_ >= config_.checkpoint_every));
            });
            if (maintenance_stop_) break;
            const auto now = Clock::now();
            const bool tick = now >= next_tick;
            if (tick) {
                next_tick = now + config_.checkpoint_interval;
                backoff = false;
            }
            if (failure_) continue;
            const bool rotate = rotation_wanted_locked();
            if (!rotate && records_since_checkpoint_ < config_.checkpoint_every &&
                !(tick && records_since_checkpoint_ > 0))
                continue;
            lk.unlock();
            const bool ok = run_checkpoint(rotate);
            lk.lock();
            if (!ok) backoff = true;
        }
    }

    // Signs a checkpoint over everything appended so far (if anything new), queues it (and the
    // rotation record after it when `rotate`), waits until it is durable and updates audit.head.
    bool run_checkpoint(bool rotate) {
        std::lock_guard checkpoint_lock(checkpoint_mu_);
        std::unique_lock lk(mu_);
        if (failure_) return false;
        if (records_since_checkpoint_ == 0) {
            if (rotate) enqueue_rotation_locked();
            return true;
        }
        const CheckpointStatement statement{next_seq_, head_, frontier_.root(),
                                            rfc3339_millis(std::chrono::system_clock::now())};
        const std::uint64_t covered = records_since_checkpoint_;
        records_since_checkpoint_ = 0;
        lk.unlock();

        std::optional<ossl::Bytes> signature;
        std::string sign_error;
        try {
            signature = signer_.sign(ossl::as_bytes(statement_text(statement)));
        } catch (const std::exception& e) {
            sign_error = e.what();
        }

        lk.lock();
        if (failure_) return false;
        if (!signature) {
            records_since_checkpoint_ += covered;
            ++stats_.checkpoint_failures;
            checkpoint_failure_ =
                "signing the audit checkpoint over " + std::to_string(statement.tree_size) +
                " records failed: " + sign_error +
                "; decisions are still logged and hash-chained, the checkpoint is retried every " +
                std::to_string(config_.checkpoint_interval.count()) + "s";
            if (rotate) enqueue_rotation_locked();  // rotation does not wait for the HSM
            return false;
        }
        Json checkpoint = Json::object();
        checkpoint[field::kType] = record_type::kCheckpoint;
        checkpoint[field::kTreeSize] = statement.tree_size;
        checkpoint[field::kHead] = ossl::to_hex(statement.head);
        checkpoint[field::kMerkleRoot] = ossl::to_hex(statement.merkle_root);
        checkpoint[field::kSignedAt] = statement.signed_at;
        checkpoint[field::kSignature] = ossl::to_base64(*signature);
        checkpoint[field::kSignerSpki] = signer_spki_sha256_;
        std::string line;
        const std::uint64_t seq = enqueue_locked(std::move(checkpoint), /*counts=*/false, 0, &line);
        if (rotate) enqueue_rotation_locked();
        durable_cv_.wait(lk, [&] { return durable_next_ > seq || failure_; });
        if (durable_next_ <= seq) return false;
        ++stats_.checkpoints_written;
        lk.unlock();

        std::optional<std::string> head_error = write_head(line);
        lk.lock();
        if (head_error) {
            ++stats_.checkpoint_failures;
            checkpoint_failure_ = *head_error;
            return false;
        }
        checkpoint_failure_.reset();
        return true;
    }

    // audit.head = the checkpoint line, replaced atomically (temp file, sync, rename, sync dir).
    std::optional<std::string> write_head(const std::string& line) {
        const auto path = config_.dir / kHeadFileName;
        auto temp = path;
        temp += kTempSuffix;
        const auto fail = [&](const std::string& what) {
            return "cannot update " + path.string() + " (" + what +
                   "): truncation of the log tail would go unnoticed until it works again";
        };
        Fd fd(disk_.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode));
        if (!fd) return fail("create " + temp.string() + ": " + errno_text(errno));
        const std::string text = line + "\n";
        std::string_view data = text;
        while (!data.empty()) {
            const ssize_t n = disk_.write(fd.get(), data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return fail("write: " + errno_text(n < 0 ? errno : EIO));
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        if (disk_.fdatasync(fd.get()) != 0) return fail("fdatasync: " + errno_text(errno));
        fd.reset();
        if (disk_.rename(temp, path) != 0) return fail("rename: " + errno_text(errno));
        if (disk_.fdatasync(dir_fd_.get()) != 0) return fail("directory sync: " + errno_text(errno));
        return std::nullopt;
    }

    // ---- state -------------------------------------------------------------------------------

    const AuditConfig config_;
    pkcs11::Signer& signer_;
    PosixDisk posix_disk_;
    Disk& disk_;
    std::string signer_spki_sha256_;

    Fd dir_fd_;
    Fd lock_fd_;
    // Writer thread only (after start-up).
    Fd log_fd_;
    std::uint64_t file_size_ = 0;

    mutable std::mutex mu_;
    std::atomic<bool> failed_{false};  // failure_ is set
    std::condition_variable writer_cv_;       // pending_ became non-empty, or stop
    std::condition_variable durable_cv_;      // durable_next_ moved, or failure_
    // Appenders wait per batch: those of batch n on batch_cvs_[n % 2], notified when it is durable.
    std::condition_variable batch_cvs_[2];
    std::uint64_t batches_taken_ = 0;         // batches the writer has taken from pending_
    std::vector<AuditLog::AppendDone> undeliverable_;  // async appends lost to a failure, to be told
    std::condition_variable maintenance_cv_;  // checkpoint or rotation due, or stop
    // The chain as queued (ahead of the disk by pending_).
    std::uint64_t next_seq_ = 0;
    Sha256 head_{};
    MerkleFrontier frontier_;
    std::vector<Entry> pending_;
    // Pipelined group commit: written batches waiting for their fdatasync.
    struct SyncJob {
        std::uint64_t end_seq;      // the batch holds records before this seq
        std::uint32_t file_index;   // the file they were written to
        std::uint64_t file_size;    // its size after them
    };
    std::condition_variable sync_cv_;  // sync_jobs_ became non-empty, or stop
    std::deque<SyncJob> sync_jobs_;
    std::deque<Entry> unsynced_;       // written, not yet durable, in seq order
    unsigned syncs_in_flight_ = 0;     // batches written and not yet synced
    Clock::time_point last_sync_started_{};
    std::uint64_t durable_size_ = 0;   // bytes of the current file known durable
    bool truncate_needed_ = false;     // a failure left unacknowledged bytes in the file
    bool sync_stop_ = false;
    std::deque<std::pair<std::uint64_t, AuditLog::AppendDone>> to_deliver_;  // durable, not yet told
    bool delivering_ = false;          // a thread is running completions
    std::uint64_t durable_next_ = 0;            // records [0, durable_next_) are on disk
    std::size_t records_since_checkpoint_ = 0;  // not counting checkpoint records
    std::uint32_t file_index_ = 0;              // the file the writer appends to
    std::uint32_t stream_file_index_ = 0;       // the file the last queued record belongs to
    bool rotation_requested_ = false;           // the writer saw the file pass rotate_bytes
    bool rotation_enqueued_ = false;            // the rotation record is queued, not yet written
    std::optional<std::string> failure_;
    std::optional<std::string> checkpoint_failure_;
    AuditStats stats_;
    std::deque<std::string> tail_;
    bool closing_ = false;
    bool closed_ = false;
    bool writer_stop_ = false;
    bool maintenance_stop_ = false;

    std::mutex checkpoint_mu_;  // one checkpoint at a time (taken before mu_)
    std::mutex close_mu_;
    std::thread writer_;
    std::vector<std::thread> syncers_;
    std::thread maintenance_;
};

AuditLog::AuditLog(AuditConfig config, pkcs11::Signer& checkpoint_signer)
    : impl_(std::make_unique<Impl>(std::move(config), checkpoint_signer, nullptr)) {}
AuditLog::AuditLog(AuditConfig config, pkcs11::Signer& checkpoint_signer, Disk& disk)
    : impl_(std::make_unique<Impl>(std::move(config), checkpoint_signer, &disk)) {}
AuditLog::~AuditLog() = default;

std::uint64_t AuditLog::append(const DecisionRecord& record) {
    return impl_->append(to_json(record));
}
std::uint64_t AuditLog::append(const ServiceRecord& record) {
    return impl_->append(to_json(record));
}
void AuditLog::append_async(const DecisionRecord& record, AppendDone done) {
    impl_->append_async(record, std::move(done));
}
std::vector<std::string> AuditLog::tail(std::size_t n) const {
    return impl_->tail(n);
}
std::optional<std::string> AuditLog::failure() const {
    return impl_->failure();
}
std::optional<std::string> AuditLog::checkpoint_failure() const {
    return impl_->checkpoint_failure();
}
std::optional<std::uint64_t> AuditLog::last_seq() const {
    return impl_->last_seq();
}
AuditStats AuditLog::stats() const {
    return impl_->stats();
}
bool AuditLog::checkpoint_now() {
    return impl_->checkpoint_now();
}
void AuditLog::close() {
    impl_->close();
}

}  // namespace ca::audit
