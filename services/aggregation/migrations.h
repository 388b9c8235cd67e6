// The aggregation schema as versioned migrations, applied at every start with
// fs::ApplyMigrations (idempotent, advisory-locked, so several aggregation processes may
// start at once). Append new versions; never edit an applied one.
#ifndef FRAMESCOPE_SERVICES_AGGREGATION_MIGRATIONS_H_
#define FRAMESCOPE_SERVICES_AGGREGATION_MIGRATIONS_H_

#include <vector>

#include "src/clients/pg_client.h"

namespace fs {

const std::vector<Migration>& AggregationMigrations();

}  // namespace fs

#endif  // FRAMESCOPE_SERVICES_AGGREGATION_MIGRATIONS_H_
