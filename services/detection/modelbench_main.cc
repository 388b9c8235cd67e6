// framescope-modelbench: raw model throughput. See model_bench.h.
#include "services/detection/model_bench.h"

int main(int argc, char** argv) { return fs::ModelBenchMain(argc, argv); }
