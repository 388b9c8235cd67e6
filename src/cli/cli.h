// One entry point per `framescope` subcommand; tools/framescope/main.cc dispatches to them.
// Exit codes: 0 success, 1 failure, 2 usage error, 3 system not running (status).
#ifndef FRAMESCOPE_CLI_CLI_H_
#define FRAMESCOPE_CLI_CLI_H_

namespace fs {

int UpMain(int argc, char** argv);
int DownMain(int argc, char** argv);
int RecordMain(int argc, char** argv);
int ProfileMain(int argc, char** argv);
int FlamegraphMain(int argc, char** argv);
int DiffMain(int argc, char** argv);
int StatusMain(int argc, char** argv);
int LogsMain(int argc, char** argv);
int MemoryMain(int argc, char** argv);
int HeapOffMain(int argc, char** argv);
int ModelMain(int argc, char** argv);
int GpuMain(int argc, char** argv);
int BatchMain(int argc, char** argv);
int DbMain(int argc, char** argv);
int RedisMain(int argc, char** argv);
int NetMain(int argc, char** argv);
int ScheduleMain(int argc, char** argv);
int CompareMain(int argc, char** argv);
// Hidden: the background supervisor that `up` starts.
int SuperviseMain(int argc, char** argv);

constexpr const char* kDefaultStateDir = "./.framescope";

}  // namespace fs

#endif  // FRAMESCOPE_CLI_CLI_H_
