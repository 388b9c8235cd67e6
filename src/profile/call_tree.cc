#include "src/profile/call_tree.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace fs::profile {
namespace {

// Line breaks would split a tooltip's "name\nstats" in two; nothing else needs cleaning since
// renderers escape names on output.
std::string CleanName(std::string name) {
  for (char& c : name) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return name;
}

// Frames interned by (name, module) into tree->frames, and each location's frames (outermost
// first, as ToFolded renders them) looked up by location id.
class FrameIndex {
 public:
  FrameIndex(const Profile& profile, CallTree* tree) : tree_(tree) {
    unknown_ = Intern("[unknown]", "", false);
    std::unordered_map<uint64_t, const Mapping*> mappings;
    std::unordered_map<uint64_t, const Function*> functions;
    for (const Mapping& m : profile.mappings) mappings[m.id] = &m;
    for (const Function& f : profile.functions) functions[f.id] = &f;
    for (const Location& loc : profile.locations) {
      auto m = mappings.find(loc.mapping_id);
      AddLocation(loc, m != mappings.end() ? m->second : nullptr, functions);
    }
    // The hot loop looks up every frame of every sample: ids are usually dense (1..N, as
    // ProfileBuilder and most writers assign them), so index a vector, with the map as fallback.
    for (const auto& [id, index] : by_id_) {
      if (id >= 4 * location_frames_.size() + 1024) continue;
      if (id >= dense_.size()) dense_.resize(id + 1, -1);
      dense_[id] = index;
    }
  }

  int32_t unknown() const { return unknown_; }

  // The frames of location `id`, or nullptr when the profile has no such location.
  const std::vector<int32_t>* Frames(uint64_t id) const {
    int32_t li = -1;
    if (id < dense_.size()) {
      li = dense_[id];
    } else if (auto it = by_id_.find(id); it != by_id_.end()) {
      li = it->second;
    }
    return li < 0 ? nullptr : &location_frames_[static_cast<size_t>(li)];
  }

 private:
  int32_t Intern(std::string name, std::string module, bool symbolized) {
    auto [it, inserted] =
        ids_.try_emplace({name, module}, static_cast<int32_t>(tree_->frames.size()));
    if (inserted) tree_->frames.push_back({std::move(name), std::move(module), symbolized});
    return it->second;
  }

  void AddLocation(const Location& loc, const Mapping* mapping,
                   const std::unordered_map<uint64_t, const Function*>& functions) {
    std::string module = ModuleBasename(mapping);
    by_id_[loc.id] = static_cast<int32_t>(location_frames_.size());
    std::vector<int32_t>& out = location_frames_.emplace_back();
    for (auto it = loc.lines.rbegin(); it != loc.lines.rend(); ++it) {
      auto fn = functions.find(it->function_id);
      std::string name = FunctionDisplayName(fn != functions.end() ? fn->second : nullptr);
      out.push_back(Intern(CleanName(std::move(name)), module, true));
    }
    if (out.empty())
      out.push_back(Intern(CleanName(AddressDisplayName(loc, mapping)), module, false));
  }

  CallTree* tree_;
  int32_t unknown_ = -1;
  std::map<std::pair<std::string, std::string>, int32_t> ids_;  // (name, module)
  std::unordered_map<uint64_t, int32_t> by_id_;                 // location id → index
  std::vector<std::vector<int32_t>> location_frames_;
  std::vector<int32_t> dense_;
};

// Every kept sample's stack as frame ids, root first, flattened: stack i is
// frames[first[i] .. first[i + 1]), weighing values[i] and standing for samples[i] samples.
struct Stacks {
  std::vector<int32_t> frames;
  std::vector<size_t> first{0};
  std::vector<int64_t> values;
  std::vector<int64_t> samples;
  size_t size() const { return values.size(); }
  size_t Length(uint32_t s) const { return first[s + 1] - first[s]; }
  int32_t FrameAt(uint32_t s, size_t depth) const { return frames[first[s] + depth]; }
};

Stacks FlattenStacks(const Profile& profile, size_t vi, int si, const FrameIndex& index) {
  Stacks out;
  for (const Sample& s : profile.samples) {
    if (vi >= s.values.size() || s.values[vi] <= 0) continue;
    out.values.push_back(s.values[vi]);
    const bool counted = si >= 0 && static_cast<size_t>(si) < s.values.size();
    out.samples.push_back(counted ? std::max<int64_t>(s.values[static_cast<size_t>(si)], 0) : 1);
    if (s.location_ids.empty()) out.frames.push_back(index.unknown());
    for (auto it = s.location_ids.rbegin(); it != s.location_ids.rend(); ++it) {
      const std::vector<int32_t>* lf = index.Frames(*it);
      if (lf == nullptr) {
        out.frames.push_back(index.unknown());
      } else if (lf->size() == 1) {
        // The common case, by far; a range insert per frame triples the cost in debug builds.
        out.frames.push_back(lf->front());
      } else {
        out.frames.insert(out.frames.end(), lf->begin(), lf->end());
      }
    }
    out.first.push_back(out.frames.size());
  }
  return out;
}

// Builds the tree top-down: a node owns a contiguous range of `perm_` (its samples); grouping
// that range by the frame one level deeper yields its children. A child below the minimum value
// is kept (its siblings' positions depend on its value) but not expanded, so the work follows
// what can be drawn rather than the (possibly millions of) distinct stacks.
class TreeGrower {
 public:
  TreeGrower(const Stacks& stacks, size_t frame_count, CallTree* tree)
      : stacks_(stacks),
        tree_(tree),
        perm_(stacks.size()),
        scratch_(stacks.size()),
        group_of_(frame_count, -1) {
    for (size_t i = 0; i < perm_.size(); ++i) perm_[i] = static_cast<uint32_t>(i);
  }

  void Grow(double min_value) {
    std::vector<Work> work{{0, 0, perm_.size()}};
    while (!work.empty()) {
      Work w = work.back();
      work.pop_back();
      size_t ended = GroupChildren(w);
      size_t lo = w.lo + ended;
      for (const Group& g : groups_) {
        group_of_[static_cast<size_t>(g.frame)] = -1;
        CallNode n;
        n.frame = g.frame;
        n.parent = w.node;
        n.depth = tree_->nodes[static_cast<size_t>(w.node)].depth + 1;
        n.value = g.value;
        n.samples = g.samples;
        auto id = static_cast<int32_t>(tree_->nodes.size());
        tree_->nodes.push_back(n);
        if (static_cast<double>(g.value) >= min_value) work.push_back({id, lo, lo + g.size});
        lo += g.size;
      }
    }
  }

 private:
  struct Work {
    int32_t node;
    size_t lo, hi;  // range of perm_
  };
  struct Group {
    int32_t frame;
    int64_t value = 0, samples = 0;
    size_t size = 0, fill = 0;
  };

  // Fills groups_ with the children of w.node and reorders its range of perm_: samples whose
  // stack ends at the node first, then each group contiguously (a counting sort). Returns the
  // number that ended.
  size_t GroupChildren(const Work& w) {
    const auto depth = static_cast<size_t>(tree_->nodes[static_cast<size_t>(w.node)].depth);
    groups_.clear();
    size_t ended = 0;
    for (size_t i = w.lo; i < w.hi; ++i) {
      uint32_t s = perm_[i];
      if (stacks_.Length(s) <= depth) {
        ++ended;
        continue;
      }
      int32_t& g = group_of_[static_cast<size_t>(stacks_.FrameAt(s, depth))];
      if (g < 0) {
        g = static_cast<int32_t>(groups_.size());
        groups_.push_back({stacks_.FrameAt(s, depth)});
      }
      Group& group = groups_[static_cast<size_t>(g)];
      group.value += stacks_.values[s];
      group.samples += stacks_.samples[s];
      ++group.size;
    }
    if (groups_.empty()) return ended;
    size_t next = w.lo + ended, end_fill = w.lo;
    for (Group& g : groups_) {
      g.fill = next;
      next += g.size;
    }
    for (size_t i = w.lo; i < w.hi; ++i) {
      uint32_t s = perm_[i];
      if (stacks_.Length(s) <= depth) {
        scratch_[end_fill++] = s;
      } else {
        int32_t g = group_of_[static_cast<size_t>(stacks_.FrameAt(s, depth))];
        scratch_[groups_[static_cast<size_t>(g)].fill++] = s;
      }
    }
    std::copy(scratch_.begin() + static_cast<std::ptrdiff_t>(w.lo),
              scratch_.begin() + static_cast<std::ptrdiff_t>(w.hi),
              perm_.begin() + static_cast<std::ptrdiff_t>(w.lo));
    return ended;
  }

  const Stacks& stacks_;
  CallTree* tree_;
  std::vector<uint32_t> perm_, scratch_;
  std::vector<int32_t> group_of_;  // frame → index in groups_, -1 when not in the current node
  std::vector<Group> groups_;
};

}  // namespace

const std::string& CallTree::NameOf(int32_t node) const {
  static const std::string kRoot = "all";
  int32_t f = nodes[static_cast<size_t>(node)].frame;
  return f < 0 ? kRoot : frames[static_cast<size_t>(f)].name;
}

int DisplayValueIndex(const Profile& profile) {
  for (size_t i = 0; i < profile.sample_types.size() && !profile.default_sample_type.empty(); ++i) {
    if (profile.sample_types[i].type == profile.default_sample_type) return static_cast<int>(i);
  }
  for (size_t i = 0; i < profile.sample_types.size(); ++i) {
    if (profile.sample_types[i].type == "cpu") return static_cast<int>(i);
  }
  return 0;
}

int SamplesValueIndex(const Profile& profile) {
  for (size_t i = 0; i < profile.sample_types.size(); ++i) {
    if (profile.sample_types[i].type == "samples") return static_cast<int>(i);
  }
  return -1;
}

CallTree BuildCallTree(const Profile& profile, int value_index, double min_fraction) {
  CallTree tree;
  tree.nodes.push_back(CallNode{});
  if (value_index < 0 || static_cast<size_t>(value_index) >= profile.sample_types.size()) {
    return tree;
  }
  const auto vi = static_cast<size_t>(value_index);
  tree.value_type = profile.sample_types[vi].type;
  tree.value_unit = profile.sample_types[vi].unit;
  FrameIndex index(profile, &tree);
  Stacks stacks = FlattenStacks(profile, vi, SamplesValueIndex(profile), index);
  for (size_t i = 0; i < stacks.size(); ++i) {
    tree.nodes[0].value += stacks.values[i];
    tree.nodes[0].samples += stacks.samples[i];
  }
  TreeGrower(stacks, tree.frames.size(), &tree)
      .Grow(min_fraction * static_cast<double>(tree.nodes[0].value));
  return tree;
}

std::vector<int64_t> SelfValues(const CallTree& tree) {
  std::vector<int64_t> self(tree.nodes.size());
  for (size_t i = 0; i < tree.nodes.size(); ++i) self[i] = tree.nodes[i].value;
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    self[static_cast<size_t>(tree.nodes[i].parent)] -= tree.nodes[i].value;
  }
  return self;
}

double Percent(int64_t value, int64_t total) {
  return total > 0 ? 100.0 * static_cast<double>(value) / static_cast<double>(total) : 0.0;
}

StatusOr<CallTreeDiff> DiffCallTrees(const CallTree& base, const CallTree& now) {
  if (base.total() > 0 && now.total() > 0 && base.value_type != now.value_type) {
    return Err("cannot compare profiles of different kinds: base has \"" + base.value_type +
               "\" values, new has \"" + now.value_type +
               "\"; diff two profiles recorded the same way");
  }
  // A BASE node by (parent, frame name, module): parents precede children in both trees, so
  // each NEW node's parent is matched before the node itself.
  std::map<std::tuple<int32_t, std::string, std::string>, int32_t> base_child;
  for (size_t i = 1; i < base.nodes.size(); ++i) {
    const CallFrame& f = base.frames[static_cast<size_t>(base.nodes[i].frame)];
    base_child[{base.nodes[i].parent, f.name, f.module}] = static_cast<int32_t>(i);
  }
  const size_t n = now.nodes.size();
  CallTreeDiff d{std::vector<int32_t>(n, -1), std::vector<double>(n, 0), std::vector<double>(n, 0),
                 std::vector<double>(n, 0), 0};
  if (n > 0) d.base_node[0] = 0;
  for (size_t i = 0; i < n; ++i) {
    const CallNode& node = now.nodes[i];
    if (i > 0) {
      int32_t bp = d.base_node[static_cast<size_t>(node.parent)];
      const CallFrame& f = now.frames[static_cast<size_t>(node.frame)];
      auto it = bp >= 0 ? base_child.find({bp, f.name, f.module}) : base_child.end();
      if (it != base_child.end()) d.base_node[i] = it->second;
    }
    int32_t b = d.base_node[i];
    d.base_pct[i] = b >= 0 ? Percent(base.nodes[static_cast<size_t>(b)].value, base.total()) : 0;
    d.new_pct[i] = Percent(node.value, now.total());
    // An empty base means there is nothing to compare against: show no change.
    d.delta_points[i] = base.total() > 0 ? d.new_pct[i] - d.base_pct[i] : 0;
    d.max_abs_delta = std::max(d.max_abs_delta, std::fabs(d.delta_points[i]));
  }
  return d;
}

namespace {

std::map<std::string, int64_t> SelfByName(const CallTree& tree) {
  std::vector<int64_t> self = SelfValues(tree);
  std::map<std::string, int64_t> out;
  for (size_t i = 1; i < tree.nodes.size(); ++i) {
    if (self[i] > 0) out[tree.frames[static_cast<size_t>(tree.nodes[i].frame)].name] += self[i];
  }
  return out;
}

}  // namespace

std::vector<DiffRow> DiffSelfShares(const CallTree& base, const CallTree& now, size_t limit) {
  std::map<std::string, DiffRow> rows;
  for (const auto& [name, v] : SelfByName(base))
    rows[name].base_self_pct = Percent(v, base.total());
  for (const auto& [name, v] : SelfByName(now)) rows[name].new_self_pct = Percent(v, now.total());
  std::vector<DiffRow> out;
  out.reserve(rows.size());
  for (auto& [name, row] : rows) {
    row.function = name;
    row.delta_points = row.new_self_pct - row.base_self_pct;
    out.push_back(std::move(row));
  }
  // Largest change first; the map's name order breaks ties deterministically.
  std::stable_sort(out.begin(), out.end(), [](const DiffRow& x, const DiffRow& y) {
    return std::fabs(x.delta_points) > std::fabs(y.delta_points);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace fs::profile
