#include <pfa/error.h>
#include <pfa/learner/cost_model.h>
#include <pfa/router.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <sstream>
#include <thread>

namespace pfa::learner {

namespace {

// 2: the shape features gained log2_ranks (split problems); version-1 models have one column
// fewer and must be retrained.
constexpr int kMetaVersion = 2;
constexpr const char* kMetaAttribute = "pfa_meta";
// Single-row prediction config. "cache_id": 0 makes XGBoost 1.7 skip its per-DMatrix prediction
// cache, which the proxy would otherwise pollute.
constexpr const char* kPredictConfig =
    R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0,)"
    R"( "strict_shape": false, "cache_id": 0, "missing": NaN})";

void check(int rc, const char* what) {
  if (rc != 0) {
    throw Error(ErrorCode::model, fmt::format("XGBoost failed to {}: {}", what, XGBGetLastError()));
  }
}

struct DMatrixOwner {
  DMatrixHandle h = nullptr;
  ~DMatrixOwner() {
    if (h) XGDMatrixFree(h);
  }
};

struct BoosterOwner {
  BoosterHandle h = nullptr;
  ~BoosterOwner() {
    if (h) XGBoosterFree(h);
  }
  BoosterHandle release() { return std::exchange(h, nullptr); }
};

bool learnable(const store::ExecutionRecord& r, const FitOptions& options) {
  if (r.simulated && !options.include_simulated) return false;
  return std::isfinite(record_cost(r, options.objective));
}

// The booster learns log(cost per unit of work): cost over FLOPs (FLOPs squared for energy x
// delay). At large sizes that is the inverse throughput, nearly constant, so trees, which cannot
// extrapolate, still scale correctly past the largest problem they saw; small problems, where
// overhead dominates, are carved out by the size features. Taken from the row's own log2 FLOPs
// feature so that fitting and prediction agree to the bit.
double work_log(Objective objective, const float* row) {
  const double k = objective == Objective::energy_delay ? 2.0 : 1.0;
  return k * static_cast<double>(row[7]) * 0.69314718055994530942;
}

std::string hex(uint64_t v) { return fmt::format("{:016x}", v); }

uint64_t parse_hex(const std::string& s) { return std::stoull(s, nullptr, 16); }

// nlohmann's get<int>() and get<float>() cast whatever number is there (undefined behaviour when a
// damaged file holds 5e71 where a count belongs): read the model's numbers through these instead.
template <class T>
T whole(const nlohmann::json& j) {
  const bool fits = j.is_number_unsigned()
                        ? j.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                        : j.is_number_integer() &&
                              j.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                              (std::numeric_limits<T>::max() >= std::numeric_limits<int64_t>::max() ||
                               j.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()));
  if (!fits) throw std::out_of_range("an integer field holds " + j.dump());
  return j.is_number_unsigned() ? static_cast<T>(j.get<uint64_t>()) : static_cast<T>(j.get<int64_t>());
}

float real(const nlohmann::json& j) {
  if (!j.is_number() || !(std::fabs(j.get<double>()) <= std::numeric_limits<float>::max())) {
    throw std::out_of_range("a number field holds " + j.dump());
  }
  return static_cast<float>(j.get<double>());
}

}  // namespace

struct CostModel::Lane {
  std::mutex mutex;
  BoosterHandle booster = nullptr;
  DMatrixHandle proxy = nullptr;
  std::vector<float> rows;  // kMaxBackends rows, preallocated
  ~Lane() {
    if (proxy) XGDMatrixFree(proxy);
    if (booster) XGBoosterFree(booster);
  }
};

CostModel::~CostModel() = default;

void CostModel::make_lanes(const std::string& json, int count) {
  count = std::max(1, count);
  for (int i = 0; i < count; ++i) {
    auto lane = std::make_unique<Lane>();
    check(XGBoosterCreate(nullptr, 0, &lane->booster), "create a booster");
    check(XGBoosterLoadModelFromBuffer(lane->booster, json.data(), json.size()),
          "load the model");
    // One thread per prediction: a call predicts a handful of rows, and waking a thread pool costs
    // more than the trees.
    check(XGBoosterSetParam(lane->booster, "nthread", "1"), "set nthread");
    check(XGProxyDMatrixCreate(&lane->proxy), "create a proxy DMatrix");
    lane->rows.assign(kMaxBackends * space_.width(), 0.0f);
    lanes_.push_back(std::move(lane));
  }
}

std::shared_ptr<const CostModel> CostModel::fit(
    std::span<const store::ExecutionRecord> records, const FitOptions& options,
    const std::function<bool(const store::ExecutionRecord&)>& include) {
  auto use = [&](const store::ExecutionRecord& r) {
    return learnable(r, options) && (!include || include(r));
  };
  // Vocabularies sorted by name so that two processes fitting the same records build the same rows.
  std::set<std::string> backend_set, device_set;
  size_t rows = 0;
  for (const auto& r : records) {
    if (!use(r)) continue;
    backend_set.emplace(store::text(r.backend));
    device_set.emplace(store::text(r.device_class));
    ++rows;
  }
  if (rows < 2) {
    throw Error(ErrorCode::model,
                fmt::format("cannot train a {} cost model from {} successful runs ({} records in "
                            "all): run `pfa-tune bench` to measure some shapes first",
                            objective_name(options.objective), rows, records.size()));
  }

  std::shared_ptr<CostModel> model(new CostModel());
  model->objective_ = options.objective;
  model->space_ = FeatureSpace({backend_set.begin(), backend_set.end()},
                               {device_set.begin(), device_set.end()});
  model->min_rows_ = options.min_rows_per_backend;
  model->margin_ = static_cast<float>(options.coverage_margin_log2);
  model->trained_rows_ = static_cast<int64_t>(rows);
  const FeatureSpace& space = model->space_;
  const size_t width = space.width();
  const size_t n_dev = space.device_classes().size();

  // Repeats of one problem on one backend become one row: the median cost, weighted by
  // 1 + log2(runs). A cold first run or a noisy neighbour (10x outliers are common on a shared
  // machine) then cannot drag the fit, and a hot shape run thousands of times does not drown the
  // rest. Groups are keyed (and so ordered) by content, not by record order.
  struct Group {
    const store::ExecutionRecord* first = nullptr;
    std::vector<double> log_costs;
  };
  std::map<std::tuple<uint64_t, int, int>, Group> groups;
  model->coverage_.assign(space.backends().size() * n_dev, Coverage{});
  for (const auto& r : records) {
    if (!use(r)) continue;
    const int b = space.backend_id(store::text(r.backend));
    const int d = space.device_class_id(store::text(r.device_class));
    const std::string_view device_class = store::text(r.device_class);
    Group& g = groups[{problem_hash(r.problem, device_class), b, d}];
    if (!g.first) g.first = &r;
    g.log_costs.push_back(std::log(record_cost(r, options.objective)));
    Coverage& c = model->coverage_[static_cast<size_t>(b) * n_dev + static_cast<size_t>(d)];
    const float flops = static_cast<float>(std::log2(std::max(attention_flops(r.problem), 1.0)));
    c.min_log2_flops = c.rows ? std::min(c.min_log2_flops, flops) : flops;
    c.max_log2_flops = c.rows ? std::max(c.max_log2_flops, flops) : flops;
    ++c.rows;
  }
  const size_t n_rows = groups.size();
  std::vector<float> data(n_rows * width);
  std::vector<float> labels(n_rows), weights(n_rows);
  size_t row = 0;
  for (auto& [key, g] : groups) {
    float* x = &data[row * width];
    space.encode(g.first->problem, std::get<2>(key), std::get<1>(key), x);
    auto& v = g.log_costs;
    std::sort(v.begin(), v.end());
    const size_t m = v.size();
    const double median = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
    labels[row] = static_cast<float>(median - work_log(options.objective, x));
    weights[row] = static_cast<float>(1.0 + std::log2(static_cast<double>(m)));
    ++row;
  }
  model->fitted_groups_ = static_cast<int64_t>(n_rows);

  double weighted = 0, total = 0;
  for (size_t i = 0; i < n_rows; ++i) {
    weighted += static_cast<double>(labels[i]) * weights[i];
    total += weights[i];
  }
  const double base_score = weighted / total;

  DMatrixOwner train;
  check(XGDMatrixCreateFromMat(data.data(), n_rows, width, std::numeric_limits<float>::quiet_NaN(),
                               &train.h),
        "build the training matrix");
  check(XGDMatrixSetFloatInfo(train.h, "label", labels.data(), n_rows), "set labels");
  check(XGDMatrixSetFloatInfo(train.h, "weight", weights.data(), n_rows), "set weights");
  BoosterOwner booster;
  check(XGBoosterCreate(&train.h, 1, &booster.h), "create a booster");
  const std::pair<const char*, std::string> params[] = {
      {"objective", "reg:squarederror"},
      {"tree_method", "hist"},
      {"max_depth", std::to_string(options.max_depth)},
      {"eta", fmt::format("{}", options.eta)},
      {"min_child_weight", fmt::format("{}", options.min_child_weight)},
      {"seed", "0"},
      {"verbosity", "0"},
      // Start from the mean label (about -24 for seconds per FLOP), not XGBoost's 0.5: from 0.5 the
      // first trees' split gains drown in float rounding and come out as single leaves.
      {"base_score", fmt::format("{}", base_score)},
  };
  for (const auto& [key, value] : params) {
    check(XGBoosterSetParam(booster.h, key, value.c_str()), "set a training parameter");
  }
  if (options.threads > 0) {
    check(XGBoosterSetParam(booster.h, "nthread", std::to_string(options.threads).c_str()),
          "set nthread");
  }
  for (int i = 0; i < options.rounds; ++i) {
    check(XGBoosterUpdateOneIter(booster.h, i, train.h), "train a boosting round");
  }
  const auto names = space.feature_names();
  std::vector<const char*> name_ptrs;
  for (const auto& n : names) name_ptrs.push_back(n.c_str());
  check(XGBoosterSetStrFeatureInfo(booster.h, "feature_name", name_ptrs.data(), name_ptrs.size()),
        "set feature names");

  // Measurement counts per (problem, backend), from every successful run we were given.
  std::map<std::pair<uint64_t, int32_t>, int32_t> counts;
  for (const auto& r : records) {
    if (!r.ok) continue;
    const int b = space.backend_id(store::text(r.backend));
    if (b < 0) continue;
    ++counts[{problem_hash(r.problem, store::text(r.device_class)), b}];
  }
  for (const auto& [key, n] : counts) model->counts_.push_back({key.first, key.second, n});

  nlohmann::json meta;
  meta["format"] = "pfa-cost-model";
  meta["version"] = kMetaVersion;
  meta["objective"] = objective_name(options.objective);
  meta["target"] = options.objective == Objective::energy_delay
                       ? "ln(cost) - 2 ln(flops)"
                       : "ln(cost) - ln(flops)";
  meta["backends"] = space.backends();
  meta["device_classes"] = space.device_classes();
  meta["trained_rows"] = model->trained_rows_;
  meta["fitted_groups"] = model->fitted_groups_;
  meta["min_rows_per_backend"] = model->min_rows_;
  meta["coverage_margin_log2"] = model->margin_;
  auto& cov = meta["coverage"] = nlohmann::json::array();
  for (const auto& c : model->coverage_) cov.push_back({c.rows, c.min_log2_flops, c.max_log2_flops});
  auto& cnt = meta["measurements"] = nlohmann::json::array();
  for (const auto& c : model->counts_) cnt.push_back({hex(c.problem), c.backend, c.count});
  check(XGBoosterSetAttr(booster.h, kMetaAttribute, meta.dump().c_str()), "store pfa metadata");

  bst_ulong length = 0;
  const char* buffer = nullptr;
  check(XGBoosterSaveModelToBuffer(booster.h, R"({"format": "json"})", &length, &buffer),
        "serialise the model");
  model->json_.assign(buffer, length);
  model->make_lanes(model->json_, options.prediction_lanes);
  model->build_forest(model->json_);
  return model;
}

std::shared_ptr<const CostModel> CostModel::from_json(std::string_view json, int prediction_lanes) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::model,
                fmt::format("the routing model is not valid JSON ({}): retrain it with `pfa-tune "
                            "train`",
                            e.what()));
  }
  const auto* attrs = doc.contains("learner") && doc["learner"].contains("attributes")
                          ? &doc["learner"]["attributes"]
                          : nullptr;
  if (!attrs || !attrs->contains(kMetaAttribute)) {
    throw Error(ErrorCode::model,
                "the model JSON has no 'pfa_meta' attribute, so it was not written by pfa's "
                "learner: retrain it with `pfa-tune train`");
  }
  std::shared_ptr<CostModel> model(new CostModel());
  try {
    const auto meta = nlohmann::json::parse((*attrs)[kMetaAttribute].get<std::string>());
    if (whole<int>(meta.at("version")) > kMetaVersion) {
      throw Error(ErrorCode::model,
                  fmt::format("the model's metadata version {} is newer than this pfa reads ({}): "
                              "upgrade pfa or retrain the model",
                              whole<int>(meta.at("version")), kMetaVersion));
    }
    if (whole<int>(meta.at("version")) < kMetaVersion) {
      throw Error(ErrorCode::model,
                  fmt::format("the model's metadata version {} predates this pfa's features "
                              "(version {} added the rank count of split problems): retrain it "
                              "with `pfa-tune train`",
                              whole<int>(meta.at("version")), kMetaVersion));
    }
    model->objective_ = parse_objective(meta.at("objective").get<std::string>());
    model->space_ = FeatureSpace(meta.at("backends").get<std::vector<std::string>>(),
                                 meta.at("device_classes").get<std::vector<std::string>>());
    model->trained_rows_ = whole<int64_t>(meta.at("trained_rows"));
    model->fitted_groups_ = meta.contains("fitted_groups") ? whole<int64_t>(meta["fitted_groups"]) : 0;
    model->min_rows_ = whole<int>(meta.at("min_rows_per_backend"));
    model->margin_ = real(meta.at("coverage_margin_log2"));
    for (const auto& c : meta.at("coverage")) {
      model->coverage_.push_back({whole<int64_t>(c.at(0)), real(c.at(1)), real(c.at(2))});
    }
    for (const auto& c : meta.at("measurements")) {
      model->counts_.push_back(
          {parse_hex(c.at(0).get<std::string>()), whole<int32_t>(c.at(1)), whole<int32_t>(c.at(2))});
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::model,
                fmt::format("the model's pfa metadata is malformed ({}): retrain it with `pfa-tune "
                            "train`",
                            e.what()));
  }
  if (model->coverage_.size() !=
      model->space_.backends().size() * model->space_.device_classes().size()) {
    throw Error(ErrorCode::model,
                "the model's coverage table does not match its vocabularies: retrain it");
  }
  std::sort(model->counts_.begin(), model->counts_.end(), [](const Count& a, const Count& b) {
    return std::tie(a.problem, a.backend) < std::tie(b.problem, b.backend);
  });
  model->json_.assign(json);
  // Trees first: a damaged tree is refused here, before XGBoost (whose predictor loops forever on
  // a tree whose child points back up) ever sees it.
  model->build_forest(model->json_);
  model->make_lanes(model->json_, prediction_lanes);
  bst_ulong features = 0;
  check(XGBoosterGetNumFeature(model->lanes_[0]->booster, &features), "read the feature count");
  if (features != model->space_.width()) {
    throw Error(ErrorCode::model,
                fmt::format("the booster expects {} features but its metadata describes {}: "
                            "retrain the model",
                            features, model->space_.width()));
  }
  return model;
}

std::shared_ptr<const CostModel> CostModel::load(const std::filesystem::path& path,
                                                 int prediction_lanes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::io,
                fmt::format("cannot open the model file '{}': check the path", path.string()));
  }
  std::stringstream text;
  text << in.rdbuf();
  return from_json(text.str(), prediction_lanes);
}

std::string CostModel::to_json() const { return json_; }

void CostModel::save(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json_;
  if (!out.flush()) {
    throw Error(ErrorCode::io, fmt::format("cannot write the model to '{}': check that the folder "
                                           "exists and is writable",
                                           path.string()));
  }
}

const Coverage* CostModel::coverage(int backend_id, int device_class_id) const noexcept {
  const size_t n_dev = space_.device_classes().size();
  if (backend_id < 0 || device_class_id < 0 ||
      static_cast<size_t>(backend_id) >= space_.backends().size() ||
      static_cast<size_t>(device_class_id) >= n_dev) {
    return nullptr;
  }
  return &coverage_[static_cast<size_t>(backend_id) * n_dev + static_cast<size_t>(device_class_id)];
}

bool CostModel::covers(int backend_id, int device_class_id, const Problem& problem,
                       const char** why) const noexcept {
  auto no = [&](const char* text) {
    if (why) *why = text;
    return false;
  };
  if (backend_id < 0) return no("the model has never seen this backend");
  if (device_class_id < 0) return no("the model has never seen this device class");
  const Coverage* c = coverage(backend_id, device_class_id);
  if (!c || c->rows < min_rows_) {
    return no("the model has too few runs of this backend on this device class");
  }
  const float flops = static_cast<float>(std::log2(std::max(attention_flops(problem), 1.0)));
  if (flops < c->min_log2_flops - margin_ || flops > c->max_log2_flops + margin_) {
    return no("the problem's size is outside the range the model was trained on");
  }
  return true;
}

int CostModel::measurements(uint64_t problem, int backend_id) const noexcept {
  const Count key{problem, backend_id, 0};
  auto it = std::lower_bound(counts_.begin(), counts_.end(), key, [](const Count& a, const Count& b) {
    return std::tie(a.problem, a.backend) < std::tie(b.problem, b.backend);
  });
  return it != counts_.end() && it->problem == problem && it->backend == backend_id ? it->count : 0;
}

bool CostModel::predict(const Problem& problem, int device_class_id, std::span<const int> backend_ids,
                        std::span<double> costs) const noexcept {
  const size_t n = std::min({backend_ids.size(), costs.size(), kMaxBackends});
  std::fill(costs.begin(), costs.end(), std::numeric_limits<double>::quiet_NaN());
  if (n == 0) return true;
  if (forest_.roots.empty()) return predict_xgboost(problem, device_class_id, backend_ids, costs);
  // Rows on the stack: at most kMaxBackends x width floats.
  constexpr size_t kMaxWidth = 256;
  const size_t width = space_.width();
  if (width > kMaxWidth) return predict_xgboost(problem, device_class_id, backend_ids, costs);
  // Candidates share every feature but the backend one-hot: encode once, flip one bit each.
  float row[kMaxWidth];
  space_.encode(problem, device_class_id, -1, row);
  const double work = work_log(objective_, row);
  float* backend = row + kShapeFeatures + space_.device_classes().size();
  const auto n_backends = static_cast<int>(space_.backends().size());
  for (size_t i = 0; i < n; ++i) {
    const int id = backend_ids[i];
    if (id >= 0 && id < n_backends) backend[id] = 1.0f;
    costs[i] = std::exp(static_cast<double>(forest_.evaluate(row)) + work);
    if (id >= 0 && id < n_backends) backend[id] = 0.0f;
  }
  return true;
}

float CostModel::Forest::evaluate(const float* row) const noexcept {
  // As XGBoost's CPU predictor does: a float sum over trees in order, from the base score; a
  // numerical split sends a value below the condition left, a missing value the default way.
  float sum = base_score;
  for (const uint32_t root : roots) {
    const Node* node = &nodes[root];
    while (node->left >= 0) {
      const float value = row[node->feature];
      const int32_t next =
          std::isnan(value) ? (node->default_left ? node->left : node->right)
                            : (value < node->value ? node->left : node->right);
      node = &nodes[root + static_cast<uint32_t>(next)];
    }
    sum += node->value;
  }
  return sum;
}

void CostModel::build_forest(std::string_view json) {
  // Reads the trees of XGBoost's JSON model (schema of XGBoost 1.x/2.x: learner.gradient_booster
  // .model.trees[] with left_children, right_children, split_indices, split_conditions,
  // default_left). It also checks what XGBoost's own loader and predictor take on trust (the tree
  // count, every per-node array's length, child indexes, split features, output groups): XGBoost
  // reads out of bounds or loops forever on a file damaged there. Anything wrong throws
  // pfa::Error(model), so from_json() refuses the file before XGBoost sees it.
  forest_ = Forest{};
  const auto damaged = [](const std::string& what) {
    return Error(ErrorCode::model,
                 fmt::format("the routing model is damaged ({}): retrain it with `pfa-tune train`",
                             what));
  };
  Forest f;
  try {
    const auto doc = nlohmann::json::parse(json);
    const auto& learner = doc.at("learner");
    const auto& booster = learner.at("gradient_booster");
    if (booster.at("name") != "gbtree") throw damaged("its booster is not a tree ensemble");
    f.base_score = std::stof(learner.at("learner_model_param").at("base_score").get<std::string>());
    const auto& model = booster.at("model");
    const auto& trees = model.at("trees");
    const auto& groups = model.at("tree_info");
    const auto& param = model.at("gbtree_model_param");
    if (!trees.is_array() || !groups.is_array() || groups.size() != trees.size() ||
        param.at("num_trees").get<std::string>() != std::to_string(trees.size()) ||
        param.at("num_parallel_tree").get<std::string>() != "1" ||
        param.at("size_leaf_vector").get<std::string>() != "0") {
      throw damaged("its tree count, tree_info and trees disagree");
    }
    for (size_t t = 0; t < trees.size(); ++t) {
      const auto& tree = trees[t];
      const auto tree_damaged = [&](const char* what) {
        return damaged(fmt::format("tree {}: {}", t, what));
      };
      if (whole<int64_t>(groups[t]) != 0 || whole<int64_t>(tree.at("id")) != static_cast<int64_t>(t)) {
        throw tree_damaged("its id or output group is not what its position says");
      }
      const auto& left = tree.at("left_children");
      const auto& right = tree.at("right_children");
      const auto& feature = tree.at("split_indices");
      const auto& condition = tree.at("split_conditions");
      const auto& default_left = tree.at("default_left");
      const size_t n = left.size();
      const auto& tree_param = tree.at("tree_param");
      if (n == 0 || tree_param.at("num_nodes").get<std::string>() != std::to_string(n) ||
          tree_param.at("size_leaf_vector").get<std::string>() != "0") {
        throw tree_damaged("its node count is wrong");
      }
      for (const char* key : {"right_children", "split_indices", "split_conditions",
                              "default_left", "parents", "loss_changes", "sum_hessian",
                              "base_weights", "split_type"}) {
        const auto& a = tree.at(key);
        if (!a.is_array() || a.size() != n) throw tree_damaged("its node arrays differ in length");
      }
      for (const char* key : {"categories", "categories_nodes", "categories_segments",
                              "categories_sizes"}) {
        if (tree.contains(key) && !tree[key].empty()) {
          throw tree_damaged("it has categorical splits, which pfa never trains");
        }
      }
      for (const auto& type : tree.at("split_type")) {
        if (whole<int>(type) != 0) throw tree_damaged("it has categorical splits");
      }
      const auto root = static_cast<uint32_t>(f.nodes.size());
      for (size_t i = 0; i < n; ++i) {
        Node node;
        node.left = whole<int32_t>(left[i]);
        node.right = whole<int32_t>(right[i]);
        node.feature = whole<uint32_t>(feature[i]);
        node.value = real(condition[i]);
        node.default_left = default_left[i].is_boolean() ? default_left[i].get<bool>()
                                                          : whole<int>(default_left[i]) != 0;
        // XGBoost numbers a node's children after the node itself; insisting on that keeps a
        // damaged file from sending a tree walk round a loop.
        const auto here = static_cast<int32_t>(i);
        const auto child = [&](int32_t c) { return c > here && c < static_cast<int32_t>(n); };
        if (node.left != -1 && !(child(node.left) && child(node.right))) {
          throw tree_damaged("a child index is out of range or not after its parent");
        }
        if (node.left >= 0 && node.feature >= space_.width()) {
          throw tree_damaged("a split on a feature the model does not have");
        }
        f.nodes.push_back(node);
      }
      f.roots.push_back(root);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw damaged(fmt::format("its trees cannot be read: {}", e.what()));
  }
  forest_ = std::move(f);
}

bool CostModel::predict_xgboost(const Problem& problem, int device_class_id,
                                std::span<const int> backend_ids,
                                std::span<double> costs) const noexcept {
  const size_t n = std::min({backend_ids.size(), costs.size(), kMaxBackends});
  std::fill(costs.begin(), costs.end(), std::numeric_limits<double>::quiet_NaN());
  if (n == 0 || lanes_.empty()) return n == 0;
  // Start at this thread's lane; take any free one before waiting.
  static thread_local const size_t home = std::hash<std::thread::id>{}(std::this_thread::get_id());
  Lane* lane = nullptr;
  std::unique_lock<std::mutex> lock;
  for (size_t i = 0; i < lanes_.size() && !lane; ++i) {
    Lane* candidate = lanes_[(home + i) % lanes_.size()].get();
    std::unique_lock<std::mutex> attempt(candidate->mutex, std::try_to_lock);
    if (attempt.owns_lock()) lane = candidate, lock = std::move(attempt);
  }
  if (!lane) {
    lane = lanes_[home % lanes_.size()].get();
    lock = std::unique_lock<std::mutex>(lane->mutex);
  }
  const size_t width = space_.width();
  for (size_t i = 0; i < n; ++i) {
    space_.encode(problem, device_class_id, backend_ids[i], &lane->rows[i * width]);
  }
  char array_interface[192];
  std::snprintf(array_interface, sizeof array_interface,
                R"({"data": [%llu, true], "shape": [%zu, %zu], "typestr": "<f4", "version": 3})",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(lane->rows.data())), n,
                width);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDense(lane->booster, array_interface, kPredictConfig, lane->proxy, &shape,
                                &dim, &out) != 0) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    costs[i] = std::exp(static_cast<double>(out[i]) + work_log(objective_, &lane->rows[i * width]));
  }
  return true;
}

std::vector<float> CostModel::predict_log(std::span<const float> rows) const {
  const size_t width = space_.width();
  if (rows.empty()) return {};
  if (rows.size() % width != 0) {
    throw Error(ErrorCode::internal, "predict_log: rows are not a whole number of feature rows");
  }
  const size_t n = rows.size() / width;
  DMatrixOwner matrix;
  check(XGDMatrixCreateFromMat(rows.data(), n, width, std::numeric_limits<float>::quiet_NaN(),
                               &matrix.h),
        "build the evaluation matrix");
  std::lock_guard lock(lanes_[0]->mutex);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  check(XGBoosterPredictFromDMatrix(
            lanes_[0]->booster, matrix.h,
            R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false})",
            &shape, &dim, &out),
        "predict");
  std::vector<float> result(n);
  for (size_t i = 0; i < n; ++i) {
    result[i] = static_cast<float>(out[i] + work_log(objective_, &rows[i * width]));
  }
  return result;
}

}  // namespace pfa::learner
