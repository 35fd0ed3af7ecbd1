# proxy-node integration tests (included from tests/integration/CMakeLists.txt).
# The test origin (tests/support/origin_*) is shared with bench/proxy-bench.
if(NOT TARGET origin_support)
  add_library(origin_support STATIC ${PROJECT_SOURCE_DIR}/tests/support/origin_pki.cpp
                                    ${PROJECT_SOURCE_DIR}/tests/support/origin_server.cpp)
  target_include_directories(origin_support PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(origin_support PUBLIC ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_DISABLE_STD_ALIGNED_ALLOC)
  target_link_libraries(origin_support PUBLIC ossl Threads::Threads)
endif()

add_executable(proxy_tests proxy_intercept_test.cpp proxy_resilience_test.cpp proxy_parsing_test.cpp)
target_link_libraries(proxy_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_tests TEST_PREFIX "proxy:" PROPERTIES LABELS integration)
