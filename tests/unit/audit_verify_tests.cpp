// `ca-audit verify` and verify_log(): every kind of tampering is found and named precisely.

#include "audit/audit_log.hpp"
#include "audit/checkpoint.hpp"
#include "audit/files.hpp"
#include "audit/verifier.hpp"
#include "ossl/encoding.hpp"
#include "support/audit_fixtures.hpp"
#include "support/software_signer.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>

using namespace ca::audit;
using Catch::Matchers::ContainsSubstring;
using testing_support::read_lines;
using testing_support::rechain;
using testing_support::sample_decision;
using testing_support::SoftwareSigner;
using testing_support::TempDir;
using testing_support::write_lines;

namespace {

constexpr int kRecords = 40;
constexpr int kCheckpointEvery = 10;

// A closed log of kRecords decisions with a checkpoint after every 10, and its signer. The
// checkpoints are requested explicitly so the layout is fixed: seq 10, 21, 32 and 43 (the
// final one at close) are checkpoints, every other seq a decision; in the one file, seq s is
// on line s + 1.
struct SampleLog {
    TempDir tmp;
    SoftwareSigner signer;
    std::filesystem::path dir = tmp.path() / "audit";
    std::filesystem::path file = dir / log_file_name(1);

    SampleLog() {
        AuditConfig cfg;
        cfg.dir = dir;
        cfg.checkpoint_every = 1000;
        AuditLog log(cfg, signer);
        for (int i = 0; i < kRecords; ++i) {
            log.append(sample_decision(i));
            if ((i + 1) % kCheckpointEvery == 0) REQUIRE(log.checkpoint_now());
        }
    }
    VerifyReport verify() const { return verify_log(dir, signer.certificate()); }
    std::vector<std::string> lines() const { return read_lines(file); }
    void write(const std::vector<std::string>& l) const { write_lines(file, l); }
    // Index of the first (or last) checkpoint line.
    std::size_t checkpoint_line(bool last = false) const {
        const auto l = lines();
        std::optional<std::size_t> found;
        for (std::size_t i = 0; i < l.size(); ++i)
            if (Json::parse(l[i])[field::kType] == "checkpoint") {
                found = i;
                if (!last) break;
            }
        REQUIRE(found);
        return *found;
    }
};

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult run(const std::string& args) {
    CommandResult r;
    const std::string command = std::string(CA_AUDIT_BIN) + " " + args + " 2>&1";
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int raw = ::pclose(p);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
}

}  // namespace

TEST_CASE("an untouched log verifies, and the summary counts it") {
    SampleLog s;
    const VerifyReport r = s.verify();
    INFO(r.problem);
    REQUIRE(r.intact);
    CHECK(r.records == s.lines().size());
    CHECK(r.checkpoints >= 4);
    CHECK(r.file_names == std::vector<std::string>{log_file_name(1)});
    CHECK(s.checkpoint_line() == 10);
    CHECK(s.checkpoint_line(true) == 43);
}

TEST_CASE("a flipped byte is reported as a modified record, naming it") {
    SampleLog s;
    auto l = s.lines();
    l[17].replace(l[17].find("node-a"), 6, "node-A");
    s.write(l);
    const VerifyReport r = s.verify();
    CHECK_FALSE(r.intact);
    CHECK(r.problem == "record 17 (" + log_file_name(1) + " line 18): hash mismatch — record modified");
}

TEST_CASE("a byte flipped in the JSON syntax is reported with its line") {
    SampleLog s;
    auto l = s.lines();
    l[5][0] = '[';
    s.write(l);
    CHECK_THAT(s.verify().problem, ContainsSubstring(log_file_name(1) + " line 6: not a valid audit record"));
}

TEST_CASE("a deleted record is reported as a seq gap") {
    SampleLog s;
    auto l = s.lines();
    l.erase(l.begin() + 12);
    s.write(l);
    CHECK(s.verify().problem ==
          "seq jumps from 11 to 13 at " + log_file_name(1) + " line 13: a record was deleted");
}

TEST_CASE("two swapped records are reported as reordered") {
    SampleLog s;
    auto l = s.lines();
    std::swap(l[20], l[21]);
    s.write(l);
    const VerifyReport r = s.verify();
    CHECK_FALSE(r.intact);
    CHECK_THAT(r.problem,
               ContainsSubstring("line 21 has seq 21 but seq 20 comes later, at line 22: records reordered"));
}

TEST_CASE("a duplicated record is reported as inserted") {
    SampleLog s;
    auto l = s.lines();
    l.insert(l.begin() + 8, l[7]);
    s.write(l);
    CHECK(s.verify().problem ==
          "record at " + log_file_name(1) + " line 9 has seq 7 after 7: records reordered or inserted");
}

TEST_CASE("a record replaced and the chain recomputed is caught by the signed checkpoint") {
    SampleLog s;
    auto l = s.lines();
    l[3].replace(l[3].find("node-a"), 6, "node-A");
    rechain(l, 3);
    s.write(l);
    const VerifyReport r = s.verify();
    CHECK_FALSE(r.intact);
    CHECK_THAT(r.problem, ContainsSubstring("checkpoint at seq") && ContainsSubstring("does not match") &&
                              ContainsSubstring("records before the checkpoint were changed"));
}

TEST_CASE("a truncated tail (last checkpoint cut off) is caught by audit.head") {
    SampleLog s;
    auto l = s.lines();
    const std::size_t first_cp = s.checkpoint_line();
    l.resize(first_cp + 3);  // an intact prefix: chain and earlier checkpoints all fine
    s.write(l);
    const VerifyReport r = s.verify();
    CHECK_FALSE(r.intact);
    CHECK_THAT(r.problem, ContainsSubstring("log truncated: the signed checkpoint in audit.head is record") &&
                              ContainsSubstring("but only " + std::to_string(first_cp + 3) + " remain"));
}

TEST_CASE("deleting audit.head together with the tail is noticed") {
    SampleLog s;
    std::filesystem::remove(s.dir / kHeadFileName);
    CHECK_THAT(s.verify().problem, ContainsSubstring("audit.head is missing"));
}

TEST_CASE("a forged checkpoint signature is reported, even with the chain recomputed") {
    SampleLog s;
    auto l = s.lines();
    const std::size_t cp = s.checkpoint_line();
    Json j = Json::parse(l[cp]);
    // A well-formed signature over the very same statement, but by another key.
    SoftwareSigner mallory;
    const CheckpointStatement statement{
        j[field::kTreeSize].get<std::uint64_t>(), *parse_hash(j[field::kHead].get<std::string>()),
        *parse_hash(j[field::kMerkleRoot].get<std::string>()), j[field::kSignedAt].get<std::string>()};
    j[field::kSignature] = ossl::to_base64(mallory.sign(ossl::as_bytes(statement_text(statement))));
    l[cp] = canonical(j);
    rechain(l, cp);
    s.write(l);
    const VerifyReport r = s.verify();
    CHECK_FALSE(r.intact);
    CHECK(r.problem ==
          "checkpoint at seq " + std::to_string(cp) + " (" + log_file_name(1) + " line " +
              std::to_string(cp + 1) +
              "): signature does not verify with the audit certificate — checkpoint forged or altered");
}

TEST_CASE("verifying with the wrong certificate names the key mismatch") {
    SampleLog s;
    SoftwareSigner other;
    const VerifyReport r = verify_log(s.dir, other.certificate());
    CHECK_FALSE(r.intact);
    CHECK_THAT(r.problem,
               ContainsSubstring("not by the audit certificate's key") && ContainsSubstring("wrong --cert"));
}

TEST_CASE("a modified audit.head is reported") {
    SampleLog s;
    auto head = read_lines(s.dir / kHeadFileName);
    head[0].replace(head[0].find("\"tree_size\":"), 12, "\"tree_size\":1");
    write_lines(s.dir / kHeadFileName, head);
    CHECK_THAT(s.verify().problem, ContainsSubstring("audit.head"));
}

TEST_CASE("a torn last line is reported as incomplete") {
    SampleLog s;
    std::ofstream(s.file, std::ios::app) << "{\"seq\":";
    CHECK_THAT(s.verify().problem, ContainsSubstring("is incomplete (no newline)"));
}

TEST_CASE("ca-audit verify: exit 0 with a summary when intact, 1 with the problem when not") {
    SampleLog s;
    const auto cert = s.tmp / "audit.pem";
    s.signer.write_certificate_pem(cert);

    const auto ok = run("verify " + s.dir.string() + " --cert " + cert.string());
    INFO(ok.output);
    CHECK(ok.status == 0);
    CHECK_THAT(ok.output, ContainsSubstring("intact") && ContainsSubstring("checkpoints:") &&
                              ContainsSubstring("audit.head:  matches"));

    auto l = s.lines();
    l.erase(l.begin() + 4);
    s.write(l);
    const auto bad = run("verify " + s.dir.string() + " --cert " + cert.string());
    INFO(bad.output);
    CHECK(bad.status == 1);
    CHECK_THAT(bad.output, ContainsSubstring("NOT INTACT") && ContainsSubstring("seq jumps from 3 to 5"));
}

TEST_CASE("ca-audit: usage errors exit 2 and say what is wrong") {
    SampleLog s;
    CHECK(run("--help").status == 0);
    CHECK_THAT(run("--help").output, ContainsSubstring("ca-audit verify LOG --cert"));

    auto r = run("verify " + s.dir.string());
    CHECK(r.status == 2);
    CHECK_THAT(r.output, ContainsSubstring("needs --cert"));

    r = run("verify " + s.dir.string() + " --cert " + (s.tmp / "missing.pem").string());
    CHECK(r.status == 2);
    CHECK_THAT(r.output, ContainsSubstring("missing.pem"));

    r = run("verify /nonexistent/audit --cert " + (s.tmp / "x").string());
    CHECK(r.status == 2);

    r = run("frobnicate");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, ContainsSubstring("unknown command"));

    r = run("show " + s.dir.string() + " --limit zero");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, ContainsSubstring("--limit needs a positive whole number"));
}
