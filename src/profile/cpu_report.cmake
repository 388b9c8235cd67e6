# Per-service CPU summaries and the profile command's reports (summary.json, index.html, the
# CPU section of the baseline document).
add_library(fs_cpu_report STATIC ${CMAKE_CURRENT_SOURCE_DIR}/cpu_report.cc)
target_include_directories(fs_cpu_report PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_cpu_report PUBLIC fs_flamegraph fs_profile_format fs_base)

add_executable(cpu_report_test ${CMAKE_CURRENT_SOURCE_DIR}/cpu_report_test.cc)
target_link_libraries(cpu_report_test PRIVATE fs_cpu_report GTest::gtest_main)
gtest_discover_tests(cpu_report_test)
