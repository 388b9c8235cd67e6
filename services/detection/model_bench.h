// framescope-modelbench: raw net.forward() throughput of the model the Detector would load,
// on a fixed batch, with no decoding, NMS or frame handling. `make bench` compares the
// pipeline's FPS against this ceiling.
#ifndef FRAMESCOPE_SERVICES_DETECTION_MODEL_BENCH_H_
#define FRAMESCOPE_SERVICES_DETECTION_MODEL_BENCH_H_

namespace fs {

int ModelBenchMain(int argc, char** argv);

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_DETECTION_MODEL_BENCH_H_
