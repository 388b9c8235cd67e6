#include "services/aggregation/live_counters.h"

#include <algorithm>
#include <cstdlib>

namespace fs {
namespace {

constexpr char kMarkKey[] = "live:applied_batch";

// KEYS[1]: the mark hash (consumer -> highest batch id applied); KEYS[2..]: live:camera:<c>.
// ARGV[1]: consumer, ARGV[2]: batch id, then per camera in KEYS order: last_ts_ns, the
// number of classes k, and k (class, count) pairs.
// A script is atomic: the increments and the mark are applied together or not at all (the
// only mid-script failure would be a counter field that is not an integer, which the
// service never writes). Batch ids fit a Lua double exactly (below 2^53); last_ts values do
// not, so they are compared as decimal strings (no sign, no leading zeros).
constexpr char kApplyScript[] = R"lua(
local mark = redis.call('HGET', KEYS[1], ARGV[1])
if mark and tonumber(mark) >= tonumber(ARGV[2]) then return 0 end
local a = 3
for k = 2, #KEYS do
  local ts = ARGV[a]
  local cur = redis.call('HGET', KEYS[k], 'last_ts')
  if not cur or #ts > #cur or (#ts == #cur and ts > cur) then
    redis.call('HSET', KEYS[k], 'last_ts', ts)
  end
  local n = tonumber(ARGV[a + 1])
  for j = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a + 2 * j], ARGV[a + 2 * j + 1])
  end
  a = a + 2 + 2 * n
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

constexpr char kReadOutboxSql[] =
    "SELECT consumer, batch_id, camera, class, count, last_ts_ns FROM live_counter_outbox "
    "ORDER BY consumer, batch_id, camera, class";
constexpr char kDeleteOutboxSql[] =
    "DELETE FROM live_counter_outbox WHERE consumer = $1 AND batch_id <= $2";

int64_t ToInt64(const std::optional<std::string>& v) {
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}

}  // namespace

void LiveBatch::Add(const std::string& camera, const std::string& class_name, int64_t n,
                    int64_t capture_ts_ns) {
  Camera& c = cameras[camera];
  c.counts[class_name] += n;
  c.last_ts_ns = std::max(c.last_ts_ns, capture_ts_ns);
}

std::vector<std::string> LiveCounterEval(const LiveBatch& batch) {
  std::vector<std::string> cmd = {"EVAL", kApplyScript, std::to_string(1 + batch.cameras.size()),
                                  kMarkKey};
  for (const auto& [camera, c] : batch.cameras) cmd.push_back("live:camera:" + camera);
  cmd.push_back(batch.consumer);
  cmd.push_back(std::to_string(batch.id));
  for (const auto& [camera, c] : batch.cameras) {
    cmd.push_back(std::to_string(c.last_ts_ns));
    cmd.push_back(std::to_string(c.counts.size()));
    for (const auto& [class_name, n] : c.counts) {
      cmd.push_back(class_name);
      cmd.push_back(std::to_string(n));
    }
  }
  return cmd;
}

StatusOr<std::vector<LiveBatch>> ReadLiveOutbox(PgClient* pg) {
  ASSIGN_OR_RETURN(PgResult r, pg->Exec(kReadOutboxSql, "read_live_outbox"));
  std::vector<LiveBatch> out;
  for (const auto& row : r.rows) {
    if (row.size() < 6 || !row[0] || !row[2] || !row[3]) continue;
    int64_t id = ToInt64(row[1]);
    if (out.empty() || out.back().consumer != *row[0] || out.back().id != id) {
      out.emplace_back();
      out.back().consumer = *row[0];
      out.back().id = id;
    }
    out.back().Add(*row[2], *row[3], ToInt64(row[4]), ToInt64(row[5]));
  }
  return out;
}

Status DeleteAppliedOutbox(PgClient* pg, const std::string& consumer, int64_t through_id) {
  return pg
      ->ExecParams(kDeleteOutboxSql, {consumer, std::to_string(through_id)}, "delete_live_outbox")
      .status();
}

}  // namespace fs
