# Running the project's binaries from tests and benchmarks (tests/support/process.*):
# posix_spawn with captured output or a log file, temporary directories. No test framework.
include_guard(GLOBAL)
add_library(process_support STATIC ${CMAKE_CURRENT_LIST_DIR}/process.cpp)
target_include_directories(process_support PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
