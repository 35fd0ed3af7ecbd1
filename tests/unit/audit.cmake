# ca-service audit log: chain, checkpoints, recovery, verification, search, the ca-audit tool.
# Included from tests/unit/CMakeLists.txt.
add_executable(audit_tests
    ${PROJECT_SOURCE_DIR}/tests/support/software_signer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_merkle_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_log_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_durability_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_verify_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_show_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/audit_record_tests.cpp)
target_include_directories(audit_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(audit_tests PRIVATE ca_audit Catch2::Catch2WithMain)
# The CLI tests run the real binary.
add_dependencies(audit_tests ca-audit)
target_compile_definitions(audit_tests PRIVATE CA_AUDIT_BIN="$<TARGET_FILE:ca-audit>")
catch_discover_tests(audit_tests TEST_PREFIX "audit: ")
