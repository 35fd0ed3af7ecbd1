// The connection log's line: written directly for ASCII records, and byte for byte what
// nlohmann's dump() writes (sorted keys, escapes, number format), so log consumers see one
// format whichever path wrote it.

#include "log/connection_log.hpp"
#include "support/process.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>

using Catch::Matchers::ContainsSubstring;
using nlohmann::json;

namespace {

proxy::ConnectionRecord full_record() {
    proxy::ConnectionRecord r;
    r.client = "127.0.0.1:51234";
    r.mode = "connect";
    r.requested_host = "www.example.com";
    r.connect_target = "www.example.com:443";
    r.upstream = "93.184.216.34:443";
    r.client_tls = {"TLSv1.3", "TLS_AES_128_GCM_SHA256", "http/1.1", false};
    r.upstream_tls = {"TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "", true};
    r.upstream_cert_sha256 = std::string(64, 'a');
    r.leaf = "cache";
    r.decision = proxy::decision::kIntercepted;
    r.reason = proxy::Reason::none;
    r.detail = "quote \" backslash \\ tab \t newline \n bell \x07 del \x7f";
    r.bytes_client_to_upstream = 123;
    r.bytes_upstream_to_client = 18446744073709551615ULL;
    return r;
}

struct Log {
    std::filesystem::path dir = testing_support::make_temp_dir("splitca-log-format");
    proxy::ConnectionLog log{dir / "c.jsonl", "node-7"};
    ~Log() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("a connection line is nlohmann's own dump of the record", "[proxy][log]") {
    Log l;
    const auto r = full_record();
    const std::string line = l.log.format(r, 12345);
    const json j = json::parse(line);
    CHECK(j.dump() == line);  // sorted keys, no spaces, the same escapes and numbers
    CHECK(j["type"] == "connection");
    CHECK(j["node"] == "node-7");
    CHECK(j["client"] == r.client);
    CHECK(j["host"] == "www.example.com");
    CHECK(j["target"] == "www.example.com:443");
    CHECK(j["detail"] == r.detail);
    CHECK(j["duration_ms"].get<double>() == 12.345);
    CHECK(j["client_tls"] == json{{"version", "TLSv1.3"}, {"cipher", "TLS_AES_128_GCM_SHA256"}, {"alpn", "http/1.1"},
                                 {"resumed", false}});
    CHECK(j["upstream_tls"]["resumed"] == true);
    CHECK(j["bytes_upstream_to_client"].get<std::uint64_t>() == 18446744073709551615ULL);
    CHECK(j["reason"] == proxy::code(proxy::Reason::none));
    CHECK_FALSE(j.contains("rule"));
    CHECK_FALSE(j.contains("inspection"));
    CHECK_THAT(line, ContainsSubstring("\\u0007"));

    auto blocked = r;
    blocked.client_tls = {};
    blocked.rule = "eicar";
    blocked.inspection = "on";
    blocked.reason_text = "pattern:*.bank.example";
    const json b = json::parse(l.log.format(blocked, 0));
    CHECK(b.dump() == l.log.format(blocked, 0));
    CHECK(b["client_tls"].is_null());
    CHECK(b["rule"] == "eicar");
    CHECK(b["inspection"] == "on");
    CHECK(b["reason"] == "pattern:*.bank.example");
    CHECK(b["duration_ms"].dump() == "0.0");
}

TEST_CASE("durations are written as dump() writes microseconds / 1000", "[proxy][log]") {
    Log l;
    const auto r = full_record();
    std::mt19937_64 rng(7);
    std::vector<long long> values = {0, 1, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1100, 123456, 999999, 1000000,
                                     86'400'000'000LL, 4'000'000'000'123LL};
    for (int i = 0; i < 2000; ++i) values.push_back(static_cast<long long>(rng() % 10'000'000'000ULL));
    for (long long us : values) {
        INFO(us);
        const json j = json::parse(l.log.format(r, us));
        CHECK(j["duration_ms"].dump() == json(static_cast<double>(us) / 1000).dump());
    }
}

TEST_CASE("a record with bytes outside ASCII is still one valid JSON line", "[proxy][log]") {
    Log l;
    auto r = full_record();
    r.detail = "caf\xc3\xa9";              // UTF-8: kept
    r.requested_host = "bad\xff" "host";  // not UTF-8: replaced
    const std::string line = l.log.format(r, 1500);
    const json j = json::parse(line);
    CHECK(j.dump(-1, ' ', false, json::error_handler_t::replace) == line);
    CHECK(j["detail"] == "caf\xc3\xa9");
    CHECK(j["host"] == "bad\xef\xbf\xbdhost");
    CHECK(j["duration_ms"].dump() == "1.5");
}
