// Durability of the audit log judged by what was synced, not by what the page cache holds:
// a RecordingDisk sees every open, write, fsync/fdatasync, ftruncate and rename of the log,
// keeps a model of what a power cut would leave (file contents as of their last sync, the
// directory as of its last sync), and builds that image for a restart.

#include "audit/audit_log.hpp"
#include "audit/files.hpp"
#include "audit/verifier.hpp"
#include "support/audit_fixtures.hpp"
#include "support/software_signer.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fcntl.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace ca::audit;
using testing_support::read_lines;
using testing_support::sample_decision;
using testing_support::SoftwareSigner;
using testing_support::TempDir;

namespace {

class RecordingDisk final : public PosixDisk {
public:
    explicit RecordingDisk(std::filesystem::path dir) : dir_(std::move(dir)) {}

    // A disk whose cache lies: data syncs report success and keep nothing. Directory syncs
    // still work, so files exist after the crash, empty or short.
    std::atomic<bool> drop_data_syncs{false};

    int open(const std::filesystem::path& path, int flags, mode_t mode) override {
        std::lock_guard lock(mu_);
        const int fd = PosixDisk::open(path, flags, mode);
        if (fd < 0) return fd;
        if (path == dir_) {
            fds_[fd] = nullptr;  // the directory itself
            ++opened_;
            return fd;
        }
        if (path.parent_path() != dir_) throw std::logic_error("audit file outside its directory: " + path.string());
        const auto name = path.filename().string();
        auto& inode = live_[name];
        if (!inode) {
            inode = std::make_shared<Inode>();
            if (!(flags & O_CREAT)) {  // there before this disk: durable as found
                inode->written = inode->synced = read_whole_file(path);
                durable_[name] = inode;
            }
        }
        if (flags & O_TRUNC) inode->written.clear();
        fds_[fd] = inode;
        ++opened_;
        return fd;
    }
    ssize_t write(int fd, const void* data, std::size_t size) override {
        std::lock_guard lock(mu_);
        const ssize_t n = PosixDisk::write(fd, data, size);
        // The writer only appends (O_APPEND, or a file it has just created and truncated).
        if (n > 0) inode(fd).written.append(static_cast<const char*>(data), static_cast<std::size_t>(n));
        ++writes_;
        return n;
    }
    int fdatasync(int fd) override { return sync(fd, false); }
    int fsync(int fd) override { return sync(fd, true); }
    int ftruncate(int fd, off_t size) override {
        std::lock_guard lock(mu_);
        const int rc = PosixDisk::ftruncate(fd, size);
        if (rc == 0) inode(fd).written.resize(static_cast<std::size_t>(size));
        return rc;
    }
    int rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
        std::lock_guard lock(mu_);
        const int rc = PosixDisk::rename(from, to);
        if (rc == 0) {
            auto node = live_.at(from.filename().string());
            live_.erase(from.filename().string());
            live_[to.filename().string()] = std::move(node);
            ++renames_;
        }
        return rc;
    }

    // What a power cut now would leave, written to `out` (a fresh directory).
    void crash_image(const std::filesystem::path& out) {
        std::lock_guard lock(mu_);
        std::filesystem::create_directories(out);
        std::filesystem::permissions(out, std::filesystem::perms::owner_all);
        for (const auto& [name, node] : durable_) std::ofstream(out / name, std::ios::binary) << node->synced;
    }
    std::size_t data_syncs() const { return data_syncs_; }
    std::size_t directory_syncs() const { return directory_syncs_; }
    std::size_t renames() const { return renames_; }
    std::size_t writes() const { return writes_; }

private:
    struct Inode {
        std::string written;  // what reads would return now
        std::string synced;   // what survives a power cut
    };
    Inode& inode(int fd) {
        auto& node = fds_.at(fd);
        if (!node) throw std::logic_error("write or truncate on the directory");
        return *node;
    }
    int sync(int fd, bool) {
        std::lock_guard lock(mu_);
        const int rc = PosixDisk::fdatasync(fd);
        if (rc != 0) return rc;
        auto& node = fds_.at(fd);
        if (!node) {
            durable_ = live_;
            ++directory_syncs_;
        } else if (!drop_data_syncs) {
            node->synced = node->written;
            ++data_syncs_;
        }
        return rc;
    }

    const std::filesystem::path dir_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<Inode>> live_;     // directory entries now
    std::map<std::string, std::shared_ptr<Inode>> durable_;  // as of the last directory sync
    std::map<int, std::shared_ptr<Inode>> fds_;              // fd numbers are reused: every open overwrites
    std::size_t opened_ = 0, writes_ = 0, data_syncs_ = 0, directory_syncs_ = 0, renames_ = 0;
};

// seq -> the host name of each decision record found in the log files of `dir`.
std::map<std::uint64_t, std::string> decisions_in(const std::filesystem::path& dir) {
    std::map<std::uint64_t, std::string> out;
    for (const auto& file : list_log_files(dir)) {
        for (const auto& line : read_lines(file.path)) {
            const Json j = Json::parse(line, nullptr, false);
            if (j.is_object() && j.contains(field::kNames) && j.contains(field::kSeq))
                out[j[field::kSeq].get<std::uint64_t>()] = j[field::kNames][0].get<std::string>();
        }
    }
    return out;
}

struct Acknowledged {
    std::mutex mu;
    std::map<std::uint64_t, std::string> records;  // seq -> host name, as acknowledged
    int errors = 0;
};

// 4 threads appending synchronously and a stream of asynchronous appends, into small files
// so that rotations (temporary file, rename, directory sync) happen as well.
void append_concurrently(AuditLog& log, Acknowledged& acked, int per_thread, int async_count) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const int id = t * 1000 + i;
                const auto seq = log.append(sample_decision(id));
                std::lock_guard lock(acked.mu);
                acked.records[seq] = "host" + std::to_string(id) + ".example.com";
            }
        });
    }
    std::condition_variable cv;
    int done = 0;
    for (int i = 0; i < async_count; ++i) {
        const int id = 9000 + i;
        log.append_async(sample_decision(id), [&, id](std::uint64_t seq, const std::string* error) {
            std::lock_guard lock(acked.mu);
            if (error != nullptr) ++acked.errors;
            else acked.records[seq] = "host" + std::to_string(id) + ".example.com";
            ++done;
            cv.notify_all();
        });
    }
    for (auto& t : threads) t.join();
    std::unique_lock lock(acked.mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == async_count; }));
}

AuditConfig small_files(const std::filesystem::path& dir) {
    AuditConfig c;
    c.dir = dir;
    c.checkpoint_every = 16;
    c.rotate_bytes = 8 * 1024;
    return c;
}

}  // namespace

TEST_CASE("after a power cut every acknowledged record is in what was synced, and the log resumes",
          "[audit][durability]") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto live_dir = tmp.path() / "audit";
    RecordingDisk disk(live_dir);
    Acknowledged acked;
    {
        AuditLog log(small_files(live_dir), signer, disk);
        append_concurrently(log, acked, 60, 120);
        // The power cut: taken while the log is open, before any orderly close.
        disk.crash_image(tmp.path() / "after-crash");
        log.close();
    }
    CHECK(acked.errors == 0);
    REQUIRE(acked.records.size() == 4 * 60 + 120);
    CHECK(disk.renames() > 0);          // rotations and checkpoint heads went through the disk
    CHECK(disk.directory_syncs() > 1);  // the first file, then each rename
    CHECK(disk.data_syncs() > 0);

    const auto crashed = tmp.path() / "after-crash";
    const auto found = decisions_in(crashed);
    std::size_t missing = 0;
    for (const auto& [seq, host] : acked.records) {
        auto it = found.find(seq);
        if (it == found.end() || it->second != host) ++missing;
    }
    CHECK(missing == 0);

    // A restart on the image resumes the chain; the log verifies with a record added.
    {
        AuditLog log(small_files(crashed), signer);
        const auto seq = log.append(ServiceRecord{"start", "after the power cut"});
        CHECK(seq > acked.records.rbegin()->first);
    }
    const auto report = verify_log(crashed, signer.certificate());
    INFO(report.problem);
    CHECK(report.intact);
}

TEST_CASE("the recording disk catches a writer whose syncs keep nothing", "[audit][durability]") {
    // The same run on a disk that acknowledges data syncs without keeping anything: the
    // check above must report records lost, or it could not fail.
    TempDir tmp;
    SoftwareSigner signer;
    const auto live_dir = tmp.path() / "audit";
    RecordingDisk disk(live_dir);
    disk.drop_data_syncs = true;
    Acknowledged acked;
    {
        AuditLog log(small_files(live_dir), signer, disk);
        append_concurrently(log, acked, 10, 20);
        disk.crash_image(tmp.path() / "after-crash");
    }
    // The page cache has them all; the image has none of them.
    CHECK(decisions_in(live_dir).size() >= acked.records.size());
    const auto found = decisions_in(tmp.path() / "after-crash");
    std::size_t kept = 0;
    for (const auto& [seq, host] : acked.records) kept += found.contains(seq) ? 1 : 0;
    CHECK(acked.records.size() == 60);
    CHECK(kept == 0);
}
