// AuditLog: durability, group commit, checkpoints, restart, rotation, fail-closed behaviour.

#include "audit/audit_log.hpp"
#include "audit/files.hpp"
#include "audit/verifier.hpp"
#include "support/audit_fixtures.hpp"
#include "support/software_signer.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

using namespace ca::audit;
using Catch::Matchers::ContainsSubstring;
using testing_support::read_lines;
using testing_support::sample_decision;
using testing_support::SoftwareSigner;
using testing_support::TempDir;

namespace {

AuditConfig config_for(const TempDir& dir, std::size_t checkpoint_every = 10) {
    AuditConfig c;
    c.dir = dir.path() / "audit";
    c.checkpoint_every = checkpoint_every;
    return c;
}

VerifyReport verify(const std::filesystem::path& log, const SoftwareSigner& signer) {
    return verify_log(log, signer.certificate());
}

// Fails writes or syncs on demand, like a full or broken disk.
class FailingDisk final : public PosixDisk {
public:
    std::atomic<bool> fail_writes{false};
    std::atomic<bool> fail_syncs{false};
    ssize_t write(int fd, const void* data, std::size_t size) override {
        if (fail_writes) {
            errno = ENOSPC;
            return -1;
        }
        return PosixDisk::write(fd, data, size);
    }
    int fdatasync(int fd) override {
        if (fail_syncs) {
            errno = EIO;
            return -1;
        }
        return PosixDisk::fdatasync(fd);
    }
};

}  // namespace

TEST_CASE("appended records are on disk when append returns, and the log verifies") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    {
        AuditLog log(cfg, signer);
        CHECK_FALSE(log.last_seq());
        CHECK(log.append(ServiceRecord{"start", "unit test"}) == 0);
        std::uint64_t previous = 0;
        for (int i = 1; i <= 25; ++i) {
            const auto seq = log.append(sample_decision(i));
            CHECK(seq > previous);  // checkpoint records may take seqs in between
            previous = seq;
            // Durable means: in the file already, not only in a buffer.
            const auto lines = read_lines(cfg.dir / log_file_name(1));
            REQUIRE(lines.size() >= seq + 1);
            CHECK_THAT(lines[seq], ContainsSubstring("host" + std::to_string(i) + ".example.com"));
        }
        CHECK(log.last_seq() >= previous);
        CHECK_FALSE(log.failure());
        const auto tail = log.tail(3);
        REQUIRE(tail.size() == 3);
        CHECK_THAT(tail.back(), ContainsSubstring("\"seq\":" + std::to_string(*log.last_seq())));
        CHECK(std::filesystem::status(cfg.dir).permissions() == std::filesystem::perms::owner_all);
    }
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
    CHECK(r.checkpoints >= 2);  // every 10 records, plus the final one at close
    CHECK(r.head_checkpoint_seq == r.last_checkpoint_seq);
    // The final checkpoint covers everything before it.
    CHECK(r.unsigned_records == 0);
}

TEST_CASE("decision records carry every field the issue asks for") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    AuditLog log(cfg, signer);
    log.append(sample_decision(7));
    const Json j = Json::parse(log.tail(1).front());
    for (const char* f :
         {field::kSeq, field::kTime, field::kType, field::kPrev, field::kHash, field::kNodeName,
          field::kNodeFingerprint, field::kNames, field::kDecision, field::kReason, field::kSerial,
          field::kSpkiSha256, field::kNotBefore, field::kNotAfter, field::kRequestedLifetime}) {
        INFO(f);
        CHECK(j.contains(f));
    }
    CHECK(j[field::kNames][0] == "host7.example.com");
}

TEST_CASE("32 threads appending concurrently: every record durable, chain intact, syncs shared") {
    TempDir tmp;
    SoftwareSigner signer;
    auto cfg = config_for(tmp, 100);
    constexpr int kThreads = 32;
    constexpr int kPerThread = 100;
    std::vector<std::uint64_t> seqs(kThreads * kPerThread);
    AuditStats stats;
    {
        AuditLog log(cfg, signer);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < kPerThread; ++i)
                    seqs[t * kPerThread + i] = log.append(sample_decision(i, t % 2 ? "node-a" : "node-b"));
            });
        for (auto& th : threads) th.join();
        log.close();
        stats = log.stats();
    }
    CHECK(std::set<std::uint64_t>(seqs.begin(), seqs.end()).size() == seqs.size());
    CHECK(stats.records_written >= seqs.size());
    CHECK(stats.syncs < stats.records_written);  // group commit
    std::cout << "32 threads x " << kPerThread << " appends: " << stats.records_written << " records, "
              << stats.syncs << " fdatasyncs ("
              << static_cast<double>(stats.syncs) / static_cast<double>(stats.records_written)
              << " per record)\n";
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
    CHECK(r.records == stats.records_written);
}

TEST_CASE("append throughput with 64 concurrent threads (printed, not asserted)") {
    TempDir tmp;
    SoftwareSigner signer;
    auto cfg = config_for(tmp, 1000);
    constexpr int kThreads = 64;
    constexpr int kPerThread = 400;
    AuditLog log(cfg, signer);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kPerThread; ++i) log.append(sample_decision(i));
        });
    for (auto& th : threads) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto stats = log.stats();
    std::cout << "audit append rate, 64 threads: " << static_cast<int>(kThreads * kPerThread / seconds)
              << " records/s (" << kThreads * kPerThread << " records in " << seconds << " s, " << stats.syncs
              << " fdatasyncs, "
              << static_cast<double>(stats.records_written) / static_cast<double>(stats.syncs)
              << " records per sync)\n";
    CHECK(stats.syncs < stats.records_written);
}

TEST_CASE("restart resumes the chain where it stopped") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    std::uint64_t last = 0;
    {
        AuditLog log(cfg, signer);
        for (int i = 0; i < 14; ++i) last = log.append(sample_decision(i));
    }
    {
        AuditLog log(cfg, signer);
        CHECK(log.last_seq() > last);  // the final checkpoint at close came after it
        const auto first = log.append(ServiceRecord{"start", "second run"});
        CHECK(first > last);
        CHECK(log.tail(AuditLog::kTailCapacity).size() == first + 1);  // tail includes the earlier run
        for (int i = 0; i < 5; ++i) log.append(sample_decision(100 + i));
    }
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
    CHECK(r.records == read_lines(cfg.dir / log_file_name(1)).size());
}

TEST_CASE("rotation keeps one chain across files, and each file verifies on its own") {
    TempDir tmp;
    SoftwareSigner signer;
    auto cfg = config_for(tmp, 20);
    cfg.rotate_bytes = 4096;
    {
        AuditLog log(cfg, signer);
        for (int i = 0; i < 120; ++i) log.append(sample_decision(i));
        CHECK(log.stats().rotations >= 3);
    }
    {
        AuditLog log(cfg, signer);  // resumes from the newest file alone
        for (int i = 0; i < 30; ++i) log.append(sample_decision(1000 + i));
    }
    const auto files = list_log_files(cfg.dir);
    REQUIRE(files.size() >= 4);
    for (std::size_t i = 1; i < files.size(); ++i) {
        const auto first = Json::parse(read_lines(files[i].path).front());
        CHECK(first[field::kType] == "rotation");
        CHECK(first[field::kPreviousFile] == log_file_name(files[i - 1].index));
    }
    // The old file ends with a checkpoint (written at rotation).
    CHECK(Json::parse(read_lines(files[0].path).back())[field::kType] == "checkpoint");

    const VerifyReport whole = verify(cfg.dir, signer);
    INFO(whole.problem);
    CHECK(whole.intact);
    CHECK(whole.file_names.size() == files.size());

    const VerifyReport middle = verify(files[1].path, signer);
    INFO(middle.problem);
    CHECK(middle.intact);
    CHECK(middle.first_seq > 0);

    std::filesystem::remove(files[1].path);
    const VerifyReport gap = verify(cfg.dir, signer);
    CHECK_FALSE(gap.intact);
    CHECK_THAT(gap.problem, ContainsSubstring(log_file_name(2) + " is missing"));
}

TEST_CASE("a disk error stops the log: this append and every later one throw AuditUnavailable") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    FailingDisk disk;
    std::uint64_t good = 0;
    {
        AuditLog log(cfg, signer, disk);
        for (int i = 0; i < 5; ++i) good = log.append(sample_decision(i));
        disk.fail_writes = true;
        CHECK_THROWS_WITH(log.append(sample_decision(99)), ContainsSubstring("fail closed"));
        REQUIRE(log.failure());
        CHECK_THAT(*log.failure(), ContainsSubstring("No space left on device"));
        CHECK_THAT(*log.failure(), ContainsSubstring(log_file_name(1)));
        disk.fail_writes = false;  // even when the disk comes back, this process stays stopped
        CHECK_THROWS_AS(log.append(sample_decision(100)), AuditUnavailable);
        CHECK_THROWS_AS(log.append(ServiceRecord{"stop", ""}), AuditUnavailable);
        CHECK(log.last_seq() == good);
    }
    // After the fix, a restart continues from the last durable record.
    {
        AuditLog log(cfg, signer);
        CHECK(log.append(sample_decision(6)) == good + 1);
    }
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
}

TEST_CASE("a failed fdatasync fails closed too") {
    TempDir tmp;
    SoftwareSigner signer;
    FailingDisk disk;
    AuditLog log(config_for(tmp), signer, disk);
    log.append(sample_decision(1));
    disk.fail_syncs = true;
    CHECK_THROWS_WITH(log.append(sample_decision(2)), ContainsSubstring("fdatasync failed"));
    disk.fail_syncs = false;
    CHECK_THROWS_AS(log.append(sample_decision(3)), AuditUnavailable);
}

TEST_CASE("concurrent appends all fail when the disk fails under them") {
    TempDir tmp;
    SoftwareSigner signer;
    FailingDisk disk;
    AuditLog log(config_for(tmp, 1000), signer, disk);
    std::atomic<int> ok{0}, failed{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                if (t == 0 && i == 50) disk.fail_writes = true;
                try {
                    log.append(sample_decision(i));
                    ++ok;
                } catch (const AuditUnavailable&) {
                    ++failed;
                } catch (...) {
                    ++other;
                }
            }
        });
    for (auto& th : threads) th.join();
    CHECK(failed > 0);
    CHECK(other == 0);
    CHECK(log.failure());
    // Everything acknowledged is in the file; nothing more.
    CHECK(log.last_seq().value_or(0) + 1 == static_cast<std::uint64_t>(ok.load()));
}

TEST_CASE("an unusable audit directory is refused at start") {
    TempDir tmp;
    SoftwareSigner signer;
    std::ofstream(tmp / "file") << "x";
    AuditConfig cfg;
    cfg.dir = tmp / "file";
    CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("is not a directory"));
    cfg.dir = tmp / "file" / "sub";
    CHECK_THROWS_AS(AuditLog(cfg, signer), AuditUnavailable);
}

TEST_CASE("bad configuration is refused with the field name") {
    TempDir tmp;
    SoftwareSigner signer;
    auto cfg = config_for(tmp);
    cfg.checkpoint_every = 0;
    CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("checkpoint_every"));
    cfg = config_for(tmp);
    cfg.rotate_bytes = 10;
    CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("rotate_bytes"));
}

TEST_CASE("a second writer on the same directory is refused") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    AuditLog first(cfg, signer);
    CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("in use by another process"));
}

TEST_CASE("an HSM outage skips checkpoints without blocking decisions, and they resume") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp, 5);
    AuditLog log(cfg, signer);
    signer.set_available(false);
    for (int i = 0; i < 30; ++i) log.append(sample_decision(i));
    CHECK_FALSE(log.checkpoint_now());
    REQUIRE(log.checkpoint_failure());
    CHECK_THAT(*log.checkpoint_failure(), ContainsSubstring("simulated HSM outage"));
    CHECK(log.stats().checkpoint_failures >= 1);
    CHECK_FALSE(log.failure());

    signer.set_available(true);
    CHECK(log.checkpoint_now());
    CHECK_FALSE(log.checkpoint_failure());
    log.close();
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
    CHECK(r.last_signed_tree_size >= 30u);
}

TEST_CASE("start-up refuses a log whose last line is incomplete, and says how to repair it") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    {
        AuditLog log(cfg, signer);
        log.append(sample_decision(1));
    }
    std::ofstream(cfg.dir / log_file_name(1), std::ios::app) << "{\"seq\":";
    CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("incomplete") &&
                                                 ContainsSubstring("truncate -s") &&
                                                 ContainsSubstring("ca-audit verify"));
}

TEST_CASE("start-up refuses a modified log and a log shorter than audit.head") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    {
        AuditLog log(cfg, signer);
        for (int i = 0; i < 12; ++i) log.append(sample_decision(i));
    }
    const auto file = cfg.dir / log_file_name(1);
    auto lines = read_lines(file);

    SECTION("modified") {
        lines[3].replace(lines[3].find("host3"), 5, "evil3");
        testing_support::write_lines(file, lines);
        CHECK_THROWS_WITH(AuditLog(cfg, signer),
                          ContainsSubstring("damaged") && ContainsSubstring("record 3"));
    }
    SECTION("every log file deleted, audit.head left") {
        std::filesystem::remove(file);
        CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("log truncated"));
    }
    SECTION("truncated") {
        lines.resize(lines.size() - 2);
        testing_support::write_lines(file, lines);
        CHECK_THROWS_WITH(AuditLog(cfg, signer), ContainsSubstring("log truncated"));
    }
}

TEST_CASE("append after close throws, and close is idempotent") {
    TempDir tmp;
    SoftwareSigner signer;
    AuditLog log(config_for(tmp), signer);
    log.append(sample_decision(1));
    log.close();
    log.close();
    CHECK_THROWS_WITH(log.append(sample_decision(2)), ContainsSubstring("closed"));
}

TEST_CASE("asynchronous appends report each record once it is durable, in order, and the log verifies") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    constexpr int kRecords = 500;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::uint64_t> seqs;
    int errors = 0;
    {
        AuditLog log(cfg, signer);
        for (int i = 0; i < kRecords; ++i) {
            log.append_async(sample_decision(i), [&, i](std::uint64_t seq, const std::string* error) {
                // durable means: in the file when we are told
                const auto lines = read_lines(cfg.dir / log_file_name(1));
                std::lock_guard lock(mu);
                if (error != nullptr || lines.size() < seq + 1 ||
                    lines[seq].find("host" + std::to_string(i) + ".example.com") == std::string::npos)
                    ++errors;
                seqs.push_back(seq);
                cv.notify_all();
            });
        }
        std::unique_lock lock(mu);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return seqs.size() == kRecords; }));
    }
    CHECK(errors == 0);
    CHECK(std::is_sorted(seqs.begin(), seqs.end()));
    const VerifyReport r = verify(cfg.dir, signer);
    INFO(r.problem);
    CHECK(r.intact);
}

TEST_CASE("asynchronous appends are told when the disk fails, and later ones at once") {
    TempDir tmp;
    SoftwareSigner signer;
    const auto cfg = config_for(tmp);
    FailingDisk disk;
    AuditLog log(cfg, signer, disk);
    log.append(sample_decision(0));
    disk.fail_writes = true;
    std::mutex mu;
    std::condition_variable cv;
    int told = 0, failed = 0;
    auto done = [&](std::uint64_t, const std::string* error) {
        std::lock_guard lock(mu);
        ++told;
        if (error != nullptr && error->find("No space left on device") != std::string::npos) ++failed;
        cv.notify_all();
    };
    for (int i = 1; i <= 20; ++i) log.append_async(sample_decision(i), done);
    {
        std::unique_lock lock(mu);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return told == 20; }));
    }
    CHECK(failed == 20);
    log.append_async(sample_decision(99), done);  // the log has failed: answered on this thread
    std::lock_guard lock(mu);
    CHECK(told == 21);
    CHECK(failed == 21);
}
