#include "protocol/time.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace std::chrono;

TEST_CASE("rfc3339 writes UTC with whole seconds", "[protocol][time]") {
    CHECK(protocol::rfc3339(system_clock::time_point{}) == "1970-01-01T00:00:00Z");
    const auto leap_day = sys_days{2024y / February / 29} + 23h + 59min + 59s + 999ms;
    CHECK(protocol::rfc3339(leap_day) == "2024-02-29T23:59:59Z");
    CHECK(protocol::rfc3339(sys_days{1969y / December / 31} + 12h) == "1969-12-31T12:00:00Z");
    // The ends of system_clock's range (64-bit nanoseconds: 1678-2262).
    CHECK(protocol::rfc3339(sys_days{2262y / April / 11}) == "2262-04-11T00:00:00Z");
    CHECK(protocol::rfc3339(sys_days{1678y / January / 1} + 10h + 5min + 7s) == "1678-01-01T10:05:07Z");
}

TEST_CASE("parse_rfc3339 reads what rfc3339 writes", "[protocol][time]") {
    const auto t = sys_days{2031y / July / 4} + 1h + 2min + 3s;
    const auto parsed = protocol::parse_rfc3339(protocol::rfc3339(t));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == t);
    CHECK(protocol::parse_rfc3339("2000-01-01T00:00:00Z") == sys_days{2000y / January / 1});
}

TEST_CASE("parse_rfc3339 refuses other forms", "[protocol][time]") {
    for (const char* bad :
         {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00Z",
          "2024-01-01T00:00:00z", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.5Z",
          "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z", "2024-1-01T00:00:00Z",
          "+024-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-01-01T00:00:00Z\n"}) {
        INFO(bad);
        CHECK_FALSE(protocol::parse_rfc3339(bad).has_value());
    }
}
