// framescope-capture: RTSP cameras -> shared-memory frame rings. See capture_service.h.
#include "services/capture/capture_service.h"

int main(int argc, char** argv) { return fs::CaptureMain(argc, argv); }
