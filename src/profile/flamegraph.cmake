# Flame graph HTML from a Profile (milestone 4): `framescope flamegraph`.
add_library(fs_flamegraph STATIC ${CMAKE_CURRENT_SOURCE_DIR}/flamegraph.cc)
target_include_directories(fs_flamegraph PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_flamegraph PUBLIC fs_profile_format fs_base)

add_executable(flamegraph_test ${CMAKE_CURRENT_SOURCE_DIR}/flamegraph_test.cc)
target_link_libraries(flamegraph_test
  PRIVATE fs_flamegraph fs_profile_format fs_base GTest::gtest_main)
# The headless-browser test runs Chromium when /usr/bin/chromium exists (skips otherwise).
gtest_discover_tests(flamegraph_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)
# The CLI tests run the framescope binary (defined later, in tools/framescope).
add_dependencies(flamegraph_test framescope)
