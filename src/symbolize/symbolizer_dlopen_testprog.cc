// Helper for symbolizer_test: prints "main 0x<address of main>" and "ready", then obeys lines on
// stdin:
//   dlopen   loads the library named by argv[1] (symbolizer_testlib), calls its FsTestlibWork
//            and prints "testlib_work 0x<address of FsTestlibWork> <its line>", then "done";
//   dlclose  unloads it again and prints "done".
// A library mapped (and unmapped) after the symbolizer read the process's maps.
#include <dlfcn.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  printf("main 0x%" PRIxPTR "\n", reinterpret_cast<uintptr_t>(&main));
  printf("ready\n");
  fflush(stdout);
  void* lib = nullptr;
  char line[64];
  while (fgets(line, sizeof(line), stdin) != nullptr) {
    if (strcmp(line, "dlopen\n") == 0 && lib == nullptr) {
      lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
      if (lib == nullptr) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 4;
      }
      auto* work = reinterpret_cast<int (*)(int)>(dlsym(lib, "FsTestlibWork"));
      const auto* work_line = static_cast<const int*>(dlsym(lib, "kFsTestlibWorkLine"));
      if (work == nullptr || work_line == nullptr) return 5;
      printf("testlib_work 0x%" PRIxPTR " %d\n", reinterpret_cast<uintptr_t>(work), *work_line);
      printf("done %d\n", work(1));
    } else if (strcmp(line, "dlclose\n") == 0 && lib != nullptr) {
      if (dlclose(lib) != 0) return 6;
      lib = nullptr;
      printf("done\n");
    } else {
      return 3;
    }
    fflush(stdout);
  }
  return 0;
}
