// ca-audit: verify and search the ca-service audit log offline.

#include "audit/files.hpp"
#include "audit/search.hpp"
#include "audit/verifier.hpp"
#include "ossl/pem.hpp"

#include <charconv>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitIntact = 0;
constexpr int kExitTampered = 1;  // verification found a problem
constexpr int kExitUsage = 2;     // bad arguments, missing files

constexpr std::string_view kUsage = R"(usage:
  ca-audit verify LOG --cert AUDIT_CERT_PEM
  ca-audit show LOG [--name NAME] [--serial HEX] [--node NAME_OR_FINGERPRINT]
                    [--type TYPE] [--limit K]
  ca-audit --help

LOG is the audit directory of the ca-service (all audit-NNNNNN.jsonl files and
audit.head) or one audit-NNNNNN.jsonl file.

verify   Recomputes every record hash and the hash chain across all files, checks
         every checkpoint's head, RFC 6962 Merkle root and signature with the public
         key of AUDIT_CERT_PEM (the audit certificate made by hsm-setup), and compares
         the log with the signed checkpoint in audit.head, which reveals a log cut
         short. Reports the first problem with its record, file and line:
         modified, deleted, inserted or reordered records, forged checkpoints, a
         truncated tail.
         Exit status: 0 intact, 1 a problem was found, 2 the check could not run.

show     Prints matching records as JSON lines, oldest first. Criteria combine
         (all must match):
           --name NAME     a requested name (case-insensitive)
           --serial HEX    certificate serial (case, colons, leading zeros ignored)
           --node NODE     node name, node certificate SHA-256 fingerprint, or a
                           prefix of at least 8 hex digits of it
           --type TYPE     decision, service, checkpoint or rotation
           --limit K       only the K most recent matches
         show does not verify; run verify before relying on the output.
)";

struct UsageError {
    std::string message;
};

// Parses "--flag VALUE" pairs after the LOG argument.
struct Options {
    std::string log;
    std::vector<std::pair<std::string, std::string>> flags;

    std::optional<std::string> take(std::string_view name) {
        std::optional<std::string> value;
        for (auto it = flags.begin(); it != flags.end();) {
            if (it->first == name) {
                if (value) throw UsageError{"option " + std::string(name) + " given twice"};
                value = it->second;
                it = flags.erase(it);
            } else {
                ++it;
            }
        }
        return value;
    }
    void expect_consumed() const {
        if (!flags.empty()) throw UsageError{"unknown option " + flags.front().first};
    }
};

Options parse(const std::vector<std::string>& args, std::string_view command) {
    Options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.starts_with("--")) {
            if (i + 1 >= args.size()) throw UsageError{"option " + a + " needs a value"};
            o.flags.emplace_back(a, args[++i]);
        } else if (o.log.empty()) {
            o.log = a;
        } else {
            throw UsageError{"unexpected argument " + a + " (one LOG only)"};
        }
    }
    if (o.log.empty())
        throw UsageError{"ca-audit " + std::string(command) + " needs the audit LOG directory or file"};
    return o;
}

int verify(Options o) {
    const auto cert_path = o.take("--cert");
    o.expect_consumed();
    if (!cert_path) throw UsageError{"ca-audit verify needs --cert AUDIT_CERT_PEM (the audit certificate)"};
    const ossl::X509Ptr cert = ossl::load_certificate(*cert_path);
    const ca::audit::VerifyReport r = ca::audit::verify_log(o.log, *cert);

    if (!r.intact) {
        std::cout << "audit log " << o.log << ": NOT INTACT\n  " << r.problem << "\n";
        std::cout << "  (" << r.records << " records checked before the problem)\n";
        return kExitTampered;
    }
    std::cout << "audit log " << o.log << ": intact\n";
    std::cout << "  files:       " << r.file_names.size();
    if (!r.file_names.empty())
        std::cout << " (" << r.file_names.front() << " .. " << r.file_names.back() << ")";
    std::cout << "\n  records:     " << r.records;
    if (r.records > 0) std::cout << " (seq " << r.first_seq << " .. " << r.first_seq + r.records - 1 << ")";
    std::cout << "\n  checkpoints: " << r.checkpoints << " signed, all verified\n";
    if (r.last_checkpoint_seq)
        std::cout << "  last signed: checkpoint at seq " << *r.last_checkpoint_seq << " covering "
                  << r.last_signed_tree_size.value_or(0) << " records\n";
    if (r.head_checkpoint_seq)
        std::cout << "  audit.head:  matches the checkpoint at seq " << *r.head_checkpoint_seq << "\n";
    if (r.unsigned_records > 0)
        std::cout << "  " << r.unsigned_records
                  << " record(s) after the last checkpoint are protected by the hash chain only\n";
    for (const auto& note : r.notes) std::cout << "  note: " << note << "\n";
    return kExitIntact;
}

int show(Options o) {
    ca::audit::RecordQuery q;
    q.name = o.take("--name");
    q.serial = o.take("--serial");
    q.node = o.take("--node");
    q.type = o.take("--type");
    if (auto limit = o.take("--limit")) {
        std::size_t k = 0;
        auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), k);
        if (ec != std::errc{} || end != limit->data() + limit->size() || k == 0)
            throw UsageError{"--limit needs a positive whole number, not \"" + *limit + "\""};
        q.limit = k;
    }
    o.expect_consumed();
    const auto result = ca::audit::find_records(o.log, q);
    for (const auto& line : result.lines) std::cout << line << "\n";
    if (result.unreadable_lines > 0)
        std::cerr << "ca-audit: skipped " << result.unreadable_lines
                  << " line(s) that are not JSON records; run ca-audit verify\n";
    return kExitIntact;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (args.empty()) throw UsageError{"no command given"};
        const std::string command = args.front();
        args.erase(args.begin());
        if (command == "--help" || command == "-h" || command == "help") {
            std::cout << kUsage;
            return kExitIntact;
        }
        for (const auto& a : args)
            if (a == "--help" || a == "-h") {
                std::cout << kUsage;
                return kExitIntact;
            }
        if (command == "verify") return verify(parse(args, command));
        if (command == "show") return show(parse(args, command));
        throw UsageError{"unknown command \"" + command + "\" (verify or show)"};
    } catch (const UsageError& e) {
        std::cerr << "ca-audit: " << e.message << "\n\n" << kUsage;
        return kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "ca-audit: " << e.what() << "\n";
        return kExitUsage;
    }
}
