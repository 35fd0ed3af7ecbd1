// The descriptor budget: how many connections fit in an open-file limit, and the raise of
// the soft limit to the hard one.

#include "resources/open_files.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <sys/resource.h>

#include <stdexcept>

using Catch::Matchers::ContainsSubstring;
using resources::fit_connections;
using resources::OpenFileLimit;

TEST_CASE("a configured connection limit that fits is kept, without a warning", "[resources]") {
    const OpenFileLimit files{1024, 524288, 524288};
    const auto budget = fit_connections(files, "limits.max_connections", 20000, 2, 64);
    CHECK(budget.max_connections == 20000);
    CHECK(budget.warning.empty());
    // Exactly enough: 64 reserved + 2 x 100.
    CHECK(fit_connections({264, 264, 264}, "x", 100, 2, 64).max_connections == 100);
    CHECK(fit_connections({264, 264, 264}, "x", 100, 2, 64).warning.empty());
}

TEST_CASE("a connection limit beyond the descriptors is lowered to what fits, and says so", "[resources]") {
    const OpenFileLimit files{100, 100, 100};
    const auto budget = fit_connections(files, "limits.max_connections", 20000, 2, 68);
    CHECK(budget.max_connections == 16);  // (100 - 68) / 2
    CHECK_THAT(budget.warning, ContainsSubstring("limits.max_connections is 20000"));
    CHECK_THAT(budget.warning, ContainsSubstring("open-file limit of 100 descriptors leaves room for 16"));
    CHECK_THAT(budget.warning, ContainsSubstring("each connection takes 2 descriptors"));
    CHECK_THAT(budget.warning, ContainsSubstring("LimitNOFILE="));
    // One descriptor a connection, an odd remainder rounds down.
    CHECK(fit_connections({100, 100, 100}, "server.max_connections", 1024, 1, 64).max_connections == 36);
    CHECK(fit_connections({101, 101, 101}, "x", 1024, 2, 64).max_connections == 18);
}

TEST_CASE("a limit with no room for a single connection refuses to start, saying what to raise", "[resources]") {
    CHECK_THROWS_WITH(fit_connections({64, 64, 64}, "server.max_connections", 1024, 1, 64),
                      ContainsSubstring("open-file limit of 64 descriptors leaves no room for connections"));
    CHECK_THROWS_WITH(fit_connections({65, 65, 65}, "x", 10, 2, 64), ContainsSubstring("ulimit -n"));
    CHECK_THROWS_WITH(fit_connections({10, 10, 10}, "x", 10, 1, 64), ContainsSubstring("no room"));
    CHECK_THROWS_AS(fit_connections({1000, 1000, 1000}, "x", 10, 0, 64), std::invalid_argument);
}

TEST_CASE("the soft open-file limit is raised to the hard limit", "[resources]") {
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    if (original.rlim_max < 128) SKIP("the hard open-file limit is below 128 here");
    rlimit lowered{64, original.rlim_max};
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);

    const auto files = resources::raise_open_file_limit();
    CHECK(files.started_with == 64);
    CHECK(files.hard == original.rlim_max);
    CHECK(files.soft == original.rlim_max);
    rlimit now{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
    CHECK(now.rlim_cur == original.rlim_max);
    // Raising again changes nothing.
    CHECK(resources::raise_open_file_limit().started_with == original.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &original);
}
