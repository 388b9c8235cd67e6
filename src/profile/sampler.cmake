# CPU sampler core (perf_event_open cpu-clock + ring reader) and its integration test.
add_library(fs_sampler STATIC ${CMAKE_CURRENT_SOURCE_DIR}/sampler.cc)
target_link_libraries(fs_sampler PUBLIC fs_base Threads::Threads)

# The workload the test samples: frame pointers and symbols so attribution is checkable.
add_executable(sampler_testprog ${CMAKE_CURRENT_SOURCE_DIR}/sampler_testprog.cc)
target_compile_options(sampler_testprog PRIVATE -O1 -g -fno-omit-frame-pointer)
target_link_libraries(sampler_testprog PRIVATE Threads::Threads)

add_executable(sampler_test ${CMAKE_CURRENT_SOURCE_DIR}/sampler_test.cc)
target_link_libraries(sampler_test PRIVATE fs_sampler fs_base GTest::gtest_main)
add_dependencies(sampler_test sampler_testprog)
gtest_discover_tests(sampler_test PROPERTIES LABELS integration TIMEOUT 120)
