// The flags that choose the model `framescope model` and `framescope batch` measure (the
// resolution itself, and pausing detection, are src/session/model_source.h).
#ifndef FRAMESCOPE_CLI_MODEL_SOURCE_H_
#define FRAMESCOPE_CLI_MODEL_SOURCE_H_

#include "src/base/flags.h"
#include "src/session/model_source.h"

namespace fs {

// --state-dir (default ./.framescope), --model, --weights, --input-size, --threads.
void AddModelFlags(FlagSet* flags, ModelFlags* f);

}  // namespace fs

#endif  // FRAMESCOPE_CLI_MODEL_SOURCE_H_
