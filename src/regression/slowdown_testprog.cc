// The program `framescope compare`'s integration test records: fixed work (not fixed time) in
// three named functions, 90 % of it in Step (the one --slow-factor slows), 5 % each in Parse and
// Encode. With --slow-factor 1.3 Step does 30 % more work, so the program's total CPU grows by
// 27 %; Parse and Encode do exactly what they did. (Step dominates so that the total's change
// stands out of a loaded machine's noise, where one profile in a few takes 1.3-1.5x the CPU time
// for the same work.)
//
// Usage: slowdown_testprog [--slow-factor F] [--work MILLIONS]   (default 1.0, 2400)
#include <cstdio>
#include <cstdlib>
#include <cstring>

// extern "C" keeps the names plain; noipa stops GCC from folding the identical bodies; the
// alignment gives every loop the same placement, so an iteration costs the same in each.
#define WORK_ATTR __attribute__((noinline, noipa, aligned(64)))

extern "C" WORK_ATTR void Step(long n) {
  for (volatile long i = 0; i < n;) i = i + 1;
}

extern "C" WORK_ATTR void Parse(long n) {
  for (volatile long i = 0; i < n;) i = i + 1;
}

extern "C" WORK_ATTR void Encode(long n) {
  for (volatile long i = 0; i < n;) i = i + 1;
}

int main(int argc, char** argv) {
  double factor = 1.0, work_millions = 2400;  // ~0.75 s here
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--slow-factor")) {
      factor = atof(argv[i + 1]);
    } else if (!strcmp(argv[i], "--work")) {
      work_millions = atof(argv[i + 1]);
    } else {
      fprintf(stderr, "usage: slowdown_testprog [--slow-factor F] [--work MILLIONS]\n");
      return 2;
    }
  }
  // Work in chunks, interleaved, so each function's share is steady through the run.
  constexpr long kChunk = 1000000;
  const long chunks = static_cast<long>(work_millions / 20);
  const long step_chunk = static_cast<long>(18 * kChunk * factor);
  for (long c = 0; c < chunks; ++c) {
    Step(step_chunk);
    Parse(kChunk);
    Encode(kChunk);
  }
  return 0;
}
