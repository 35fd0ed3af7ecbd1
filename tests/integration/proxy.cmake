# proxy-node integration tests (included from tests/integration/CMakeLists.txt).
# The test origin (tests/support/origin_*) is shared with bench/proxy-bench.
include(${PROJECT_SOURCE_DIR}/tests/support/origin.cmake)

add_executable(proxy_tests proxy_intercept_test.cpp proxy_resilience_test.cpp proxy_parsing_test.cpp
                           proxy_bypass_test.cpp proxy_scale_test.cpp)
target_link_libraries(proxy_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_tests TEST_PREFIX "proxy:" PROPERTIES LABELS integration)

# Inspection of decrypted HTTP/1.1 (proxy-node/inspect/) against a scripted origin.
add_executable(proxy_inspect_tests proxy_inspect_test.cpp ${PROJECT_SOURCE_DIR}/tests/support/scripted_origin.cpp)
target_link_libraries(proxy_inspect_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain ZLIB::ZLIB PkgConfig::ZSTD)
add_dependencies(proxy_inspect_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_inspect_tests TEST_PREFIX "proxy-inspect:" PROPERTIES LABELS integration)

# Hostile and broken peers (stalled input, floods, slow, silent and endless peers).
add_executable(proxy_hostile_tests proxy_hostile_test.cpp ${PROJECT_SOURCE_DIR}/tests/support/scripted_origin.cpp)
target_link_libraries(proxy_hostile_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_hostile_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_hostile_tests TEST_PREFIX "proxy-hostile:" PROPERTIES LABELS integration)

# A real browser (headless Chromium) through the node, in a network namespace of the test's
# own: only loopback exists there, so a DNS lookup fails at once and nothing leaves the
# machine (needs root, as CI is).
add_executable(proxy_browser_tests proxy_browser_test.cpp)
target_link_libraries(proxy_browser_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_browser_tests proxy-node ca-service hsm-tool)
foreach(browser_case IN ITEMS "explanation page|Chromium shows the explanation page*"
                              "websocket|Chromium's WebSockets*"
                              "h2|Chromium loads an HTTP/2 page*")
  string(REPLACE "|" ";" parts "${browser_case}")
  list(GET parts 0 label)
  list(GET parts 1 filter)
  add_test(NAME "proxy-browser:${label}"
           COMMAND unshare --net -- sh -c "ip link set lo up && exec \"$0\" \"$1\"" $<TARGET_FILE:proxy_browser_tests>
                   "${filter}")
  set_tests_properties("proxy-browser:${label}" PROPERTIES LABELS "integration;browser" TIMEOUT 900)
endforeach()

# WebSocket under inspection (proxy-node/websocket/) between python3-websockets peers.
add_executable(proxy_websocket_tests proxy_websocket_test.cpp)
target_link_libraries(proxy_websocket_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_websocket_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_websocket_tests TEST_PREFIX "proxy-websocket:" PROPERTIES LABELS integration)

# HTTP/2 under inspection (proxy-node/h2/) with nginx as the origin and curl --http2.
add_executable(proxy_h2_tests proxy_h2_test.cpp)
target_link_libraries(proxy_h2_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_h2_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_h2_tests TEST_PREFIX "proxy-h2:" PROPERTIES LABELS integration)

# ICAP (proxy-node/inspect/icap/) against c-icap + ClamAV and a misbehaving ICAP server.
include(${PROJECT_SOURCE_DIR}/tests/support/icap.cmake)
add_executable(proxy_icap_tests proxy_icap_test.cpp ${PROJECT_SOURCE_DIR}/tests/support/scripted_origin.cpp)
target_link_libraries(proxy_icap_tests PRIVATE test_support origin_support icap_support proxy_core
                      nlohmann_json::nlohmann_json Catch2::Catch2WithMain ZLIB::ZLIB)
add_dependencies(proxy_icap_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_icap_tests TEST_PREFIX "proxy-icap:" PROPERTIES LABELS integration)

# Transparent interception (listen.transparent) in network namespaces the tests make
# (support/netns_lab): nftables steers a client's HTTPS to the node (needs root, as CI is).
add_executable(proxy_transparent_tests proxy_transparent_test.cpp ${PROJECT_SOURCE_DIR}/tests/support/netns_lab.cpp)
target_link_libraries(proxy_transparent_tests PRIVATE test_support origin_support proxy_core nlohmann_json::nlohmann_json
                      Catch2::Catch2WithMain)
add_dependencies(proxy_transparent_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_transparent_tests TEST_PREFIX "proxy-transparent:" PROPERTIES LABELS integration)

# E-mail (listen.smtp, and port 25 on listen.transparent in network namespaces): a real MTA
# (python3-aiosmtpd), swaks and smtplib as clients, c-icap + ClamAV as an engine.
add_executable(proxy_mail_tests proxy_mail_test.cpp ${PROJECT_SOURCE_DIR}/tests/support/netns_lab.cpp)
target_link_libraries(proxy_mail_tests PRIVATE test_support origin_support icap_support proxy_core
                      nlohmann_json::nlohmann_json Catch2::Catch2WithMain)
add_dependencies(proxy_mail_tests proxy-node ca-service hsm-tool)
catch_discover_tests(proxy_mail_tests TEST_PREFIX "proxy-mail:" PROPERTIES LABELS integration)
