# pprof / folded formats and the in-memory profile model (milestone 4).
find_package(ZLIB REQUIRED)

add_library(fs_profile_format STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/profile.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/pprof.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/folded.cc)
target_include_directories(fs_profile_format PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_profile_format PUBLIC fs_base PRIVATE ZLIB::ZLIB)

add_executable(pprof_test ${CMAKE_CURRENT_SOURCE_DIR}/pprof_test.cc)
target_link_libraries(pprof_test PRIVATE fs_profile_format fs_base ZLIB::ZLIB GTest::gtest_main)
# Golden files are read from (and, with FS_UPDATE_GOLDEN=1, written to) the source tree.
target_compile_definitions(pprof_test PRIVATE
  FS_PROFILE_TESTDATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/testdata")
gtest_discover_tests(pprof_test)
