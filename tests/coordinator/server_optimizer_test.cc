#include "coordinator/server_optimizer.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "common/crypto/sha256.h"
#include "tests/common/base/fault_injection_env.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TensorSpec Float32(const std::string& name, std::vector<int64_t> shape) {
  return TensorSpec{name, DType::kFloat32, std::move(shape)};
}

// A state file read back: its kind, step count and per-tensor floats.
struct StateContents {
  std::string kind;
  int64_t steps = 0;
  std::vector<TensorSpec> buffers;  // the specs after the two header tensors
  std::vector<float> values;        // their floats, in order
};

// The small settings every hand-worked case uses: powers of two, so most
// intermediate values are exact in binary.
ServerOptimizerOptions HandOptions(ServerOptimizerKind kind) {
  return ServerOptimizerOptions()
      .set_kind(kind)
      .set_server_lr(1)
      .set_beta1(0.5)
      .set_beta2(0.75)
      .set_tau(0.75);
}

class ServerOptimizerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path())); }

  // Writes a model into the store; returns its SHA-256 (hex).
  std::string Put(const TensorBundle& bundle) {
    std::string digest;
    absl::StatusOr<std::string> path = WriteBundleFile(models_.path(), bundle, &digest);
    EXPECT_THAT(path, IsOk());
    return HexEncode(digest);
  }
  std::string Put(const std::vector<TensorSpec>& specs, const std::vector<float>& values) {
    return Put(FloatBundle(specs, values));
  }

  TensorBundle Read(const std::string& sha) {
    absl::StatusOr<std::string> path = store_->PathFor(sha);
    EXPECT_THAT(path, IsOk());
    absl::StatusOr<TensorBundle> bundle = ReadBundleFile(path.value_or(""));
    EXPECT_THAT(bundle, IsOk());
    return bundle.value_or(TensorBundle());
  }

  StateContents ReadState(const std::string& sha) {
    const TensorBundle bundle = Read(sha);
    StateContents state;
    if (bundle.specs.size() < 2) {
      ADD_FAILURE() << "state has " << bundle.specs.size() << " tensors";
      return state;
    }
    const size_t name_bytes = bundle.specs[0].ByteSize();
    state.kind.assign(bundle.body.data(), name_bytes);
    std::memcpy(&state.steps, bundle.body.data() + name_bytes, sizeof(int64_t));
    state.buffers.assign(bundle.specs.begin() + 2, bundle.specs.end());
    const size_t first = name_bytes + sizeof(int64_t);
    state.values.resize((bundle.body.size() - first) / sizeof(float));
    std::memcpy(state.values.data(), bundle.body.data() + first, state.values.size() * 4);
    return state;
  }

  // Runs one step per aggregate from the model `x0`; returns the model after
  // every round and leaves the last state's hash in last_state_.
  std::vector<std::vector<float>> Run(const ServerOptimizerOptions& options,
                                      const std::vector<TensorSpec>& specs,
                                      const std::vector<float>& x0,
                                      const std::vector<std::vector<float>>& aggregates) {
    absl::StatusOr<ServerOptimizer> optimizer = ServerOptimizer::Create(options);
    EXPECT_THAT(optimizer, IsOk());
    std::vector<std::vector<float>> models;
    if (!optimizer.ok()) return models;
    std::string global = Put(specs, x0);
    last_state_.clear();
    for (const std::vector<float>& aggregate : aggregates) {
      absl::StatusOr<ServerStep> step =
          optimizer->Step(*store_, global, Put(specs, aggregate), last_state_);
      EXPECT_THAT(step, IsOk());
      if (!step.ok()) break;
      global = step->model_sha256;
      last_state_ = step->state_sha256;
      models.push_back(FloatsOf(Read(global)));
    }
    return models;
  }

  ScratchDir models_;
  std::unique_ptr<ModelStore> store_;
  std::string last_state_;
};

MATCHER_P(Near, expected, "") {
  if (arg.size() != expected.size()) return false;
  for (size_t i = 0; i < arg.size(); ++i) {
    if (!(std::fabs(arg[i] - expected[i]) <= 1e-6 * std::max(1.0f, std::fabs(expected[i])))) {
      *result_listener << "element " << i << " is " << arg[i] << ", expected " << expected[i];
      return false;
    }
  }
  return true;
}

std::vector<float> V(std::initializer_list<float> values) { return values; }

// --- Hand-worked cases: 3 rounds of a 2-parameter model each ---------------

TEST_F(ServerOptimizerTest, FedAvgMAddsHeavyBallMomentum) {
  // u <- 0.5 u + d;  x <- x + 0.5 u  (u starts at 0). All values exact.
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const auto models = Run(ServerOptimizerOptions()
                              .set_kind(ServerOptimizerKind::kFedAvgM)
                              .set_server_lr(0.5)
                              .set_momentum(0.5),
                          specs, {1, -2}, {{3, -2}, {4, -3}, {3, -2.5}});
  ASSERT_EQ(models.size(), 3u);
  // p0: d = 3-1 = 2,    u = 0+2 = 2,        x = 1 + 0.5*2 = 2
  // p1: d = -2+2 = 0,   u = 0,              x = -2
  EXPECT_THAT(models[0], ElementsAre(2.0f, -2.0f));
  // p0: d = 4-2 = 2,    u = 0.5*2+2 = 3,    x = 2 + 0.5*3 = 3.5
  // p1: d = -3+2 = -1,  u = 0-1 = -1,       x = -2 - 0.5 = -2.5
  EXPECT_THAT(models[1], ElementsAre(3.5f, -2.5f));
  // p0: d = 3-3.5 = -0.5, u = 1.5-0.5 = 1,  x = 3.5 + 0.5 = 4
  // p1: d = 0,            u = -0.5,         x = -2.5 - 0.25 = -2.75
  EXPECT_THAT(models[2], ElementsAre(4.0f, -2.75f));
  const StateContents state = ReadState(last_state_);
  EXPECT_EQ(state.kind, "fedavgm");
  EXPECT_EQ(state.steps, 3);
  EXPECT_THAT(state.buffers, ElementsAre(Float32("momentum/w", {2})));
  EXPECT_THAT(state.values, ElementsAre(1.0f, -0.5f));
}

TEST_F(ServerOptimizerTest, FedAdagradSumsSquaredDeltas) {
  // b1 = 0.5, tau = 0.75, eta = 1; m = 0, v = tau^2 = 0.5625 at first.
  // m <- 0.5 m + 0.5 d;  v <- v + d^2;  x <- x + m / (sqrt(v) + 0.75).
  // The deltas make every sqrt(v) exact: 0.75^2 + 1 = 1.25^2, 1.25^2 + 3^2 = 3.25^2.
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const auto models = Run(HandOptions(ServerOptimizerKind::kFedAdagrad), specs, {0, 2},
                          {{1, 1}, {3.25, 1.75}, {0.6875, -1.375}});
  ASSERT_EQ(models.size(), 3u);
  // p0: d = 1,  m = 0.5,   v = 0.5625+1 = 1.5625, x = 0 + 0.5/(1.25+0.75) = 0.25
  // p1: d = -1, m = -0.5,  v = 1.5625,            x = 2 - 0.5/2 = 1.75
  EXPECT_THAT(models[0], ElementsAre(0.25f, 1.75f));
  // p0: d = 3,  m = 0.25+1.5 = 1.75, v = 1.5625+9 = 10.5625, x = 0.25 + 1.75/(3.25+0.75) = 0.6875
  // p1: d = 0,  m = -0.25,           v = 1.5625,             x = 1.75 - 0.25/2 = 1.625
  EXPECT_THAT(models[1], ElementsAre(0.6875f, 1.625f));
  // p0: d = 0,  m = 0.875 (momentum keeps moving x), v = 10.5625, x = 0.6875 + 0.875/4 = 0.90625
  // p1: d = -3, m = -0.125-1.5 = -1.625, v = 1.5625+9 = 10.5625, x = 1.625 - 1.625/4 = 1.21875
  EXPECT_THAT(models[2], ElementsAre(0.90625f, 1.21875f));
  const StateContents state = ReadState(last_state_);
  EXPECT_EQ(state.kind, "fedadagrad");
  EXPECT_EQ(state.steps, 3);
  EXPECT_THAT(state.buffers, ElementsAre(Float32("moments/w", {2, 2})));
  // (m, v) pairs per parameter.
  EXPECT_THAT(state.values, ElementsAre(0.875f, 10.5625f, -1.625f, 10.5625f));
}

TEST_F(ServerOptimizerTest, FedAdamDecaysTheSecondMoment) {
  // b1 = 0.5, b2 = 0.75, tau = 0.75, eta = 1; m = 0, v = 0.5625 at first.
  // m <- 0.5 m + 0.5 d;  v <- 0.75 v + 0.25 d^2;  x <- x + m / (sqrt(v) + 0.75).
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const auto models = Run(HandOptions(ServerOptimizerKind::kFedAdam), specs, {0, 1},
                          {{0.75, 4.25}, {1.0, 1.65f}, {-0.125, 0}});
  ASSERT_EQ(models.size(), 3u);
  // p0: d = 0.75, m = 0.375, v = 0.421875+0.140625 = 0.5625, x = 0.375/(0.75+0.75) = 0.25
  // p1: d = 3.25, m = 1.625, v = 0.421875+2.640625 = 3.0625 (sqrt 1.75),
  //     x = 1 + 1.625/2.5 = 1.65
  EXPECT_THAT(models[0], Near(V({0.25f, 1.65f})));
  // p0: d = 0.75, m = 0.1875+0.375 = 0.5625, v = 0.5625, x = 0.25 + 0.5625/1.5 = 0.625
  // p1: d = 0 (the aggregate is x), m = 0.8125, v = 0.75*3.0625 = 2.296875
  //     (sqrt 1.5155445), x = 1.65 + 0.8125/2.2655445 = 2.0086334
  EXPECT_THAT(models[1], Near(V({0.625f, 2.0086334f})));
  // p0: d = -0.75, m = 0.28125-0.375 = -0.09375, v = 0.5625, x = 0.625 - 0.09375/1.5 = 0.5625
  // p1: d = 0-2.0086334 = -2.0086334, m = 0.40625-1.0043167 = -0.5980667,
  //     v = 1.72265625 + 0.25*4.0346080 = 2.7313083 (sqrt 1.6526670),
  //     x = 2.0086334 - 0.5980667/2.4026670 = 1.7597156
  EXPECT_THAT(models[2], Near(V({0.5625f, 1.7597156f})));
  const StateContents state = ReadState(last_state_);
  EXPECT_EQ(state.kind, "fedadam");
  EXPECT_EQ(state.steps, 3);
  EXPECT_THAT(state.values, Near(V({-0.09375f, 0.5625f, -0.5980667f, 2.7313082f})));
}

TEST_F(ServerOptimizerTest, FedYogiMovesTheSecondMomentBySign) {
  // b1 = 0.5, b2 = 0.75, tau = 0.75, eta = 1; m = 0, v = 0.5625 at first.
  // m <- 0.5 m + 0.5 d;  v <- v - 0.25 d^2 sign(v - d^2);  x <- x + m / (sqrt(v) + 0.75).
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const auto models = Run(HandOptions(ServerOptimizerKind::kFedYogi), specs, {0, 1},
                          {{0.75, 1}, {2.25, 0}, {1.84375, 0.5}});
  ASSERT_EQ(models.size(), 3u);
  // p0: d = 0.75, d^2 = 0.5625 = v: sign 0, v stays 0.5625; m = 0.375, x = 0.375/1.5 = 0.25
  // p1: d = 0, d^2 < v: v = 0.5625 - 0 = 0.5625; m = 0, x = 1
  EXPECT_THAT(models[0], ElementsAre(0.25f, 1.0f));
  // p0: d = 2, d^2 = 4 > v: v = 0.5625 + 0.25*4 = 1.5625 (Adam would give 1.421875),
  //     m = 0.1875+1 = 1.1875, x = 0.25 + 1.1875/(1.25+0.75) = 0.84375
  // p1: d = -1, d^2 = 1 > v: v = 0.5625 + 0.25 = 0.8125 (sqrt 0.9013878),
  //     m = -0.5, x = 1 - 0.5/1.6513878 = 0.6972244
  EXPECT_THAT(models[1], Near(V({0.84375f, 0.6972244f})));
  // p0: d = 1, d^2 = 1 < v: v = 1.5625 - 0.25 = 1.3125 (sqrt 1.1456439),
  //     m = 0.59375+0.5 = 1.09375, x = 0.84375 + 1.09375/1.8956439 = 1.4207307
  // p1: d = 0.5-0.6972244 = -0.1972244, d^2 = 0.0388975 < v: v = 0.8125 - 0.0097244 = 0.8027756,
  //     m = -0.25-0.0986122 = -0.3486122, x = 0.6972244 - 0.3486122/1.6459775 = 0.4854279
  EXPECT_THAT(models[2], Near(V({1.4207307f, 0.4854279f})));
  const StateContents state = ReadState(last_state_);
  EXPECT_EQ(state.kind, "fedyogi");
  EXPECT_THAT(state.values, Near(V({1.09375f, 1.3125f, -0.3486122f, 0.8027756f})));
}

TEST_F(ServerOptimizerTest, FedAvgIsPlainReplacement) {
  ASSERT_OK_AND_ASSIGN(ServerOptimizer optimizer, ServerOptimizer::Create({}));
  EXPECT_TRUE(optimizer.replaces_model());
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  const std::string global = Put(specs, {1, 2});
  const std::string aggregate = Put(specs, {5, -7});
  ASSERT_OK_AND_ASSIGN(ServerStep step, optimizer.Step(*store_, global, aggregate, ""));
  EXPECT_EQ(step.model_sha256, aggregate);
  EXPECT_EQ(step.state_sha256, "");
}

TEST_F(ServerOptimizerTest, FedAvgMWithoutMomentumAtRateOneIsFedAvg) {
  const std::vector<TensorSpec> specs = {Float32("w", {3})};
  const auto models = Run(ServerOptimizerOptions()
                              .set_kind(ServerOptimizerKind::kFedAvgM)
                              .set_server_lr(1)
                              .set_momentum(0),
                          specs, {1, 2, 3}, {{0.5, -4, 8}, {2, 2, 2}});
  ASSERT_EQ(models.size(), 2u);
  EXPECT_THAT(models[0], ElementsAre(0.5f, -4.0f, 8.0f));
  EXPECT_THAT(models[1], ElementsAre(2.0f, 2.0f, 2.0f));
}

// --- Settings ---------------------------------------------------------------

TEST(ServerOptimizerOptionsTest, ParsesEveryKindByName) {
  for (const char* name : {"fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"}) {
    ASSERT_OK_AND_ASSIGN(ServerOptimizerKind kind, ParseServerOptimizerKind(name));
    EXPECT_STREQ(ServerOptimizerName(kind), name);
  }
  EXPECT_THAT(ParseServerOptimizerKind("fedsgd"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'fedsgd'"), HasSubstr("fedadam, fedyogi"))));
}

TEST(ServerOptimizerOptionsTest, DefaultsAreValidForEveryKind) {
  for (ServerOptimizerKind kind :
       {ServerOptimizerKind::kFedAvg, ServerOptimizerKind::kFedAvgM, ServerOptimizerKind::kFedAdam,
        ServerOptimizerKind::kFedYogi, ServerOptimizerKind::kFedAdagrad}) {
    EXPECT_THAT(ValidateServerOptimizerOptions(ServerOptimizerOptions().set_kind(kind)), IsOk());
    const ServerOptimizerOptions defaults = DefaultServerOptimizerOptions(kind);
    EXPECT_EQ(defaults.kind, kind);
    EXPECT_THAT(ValidateServerOptimizerOptions(defaults), IsOk());
  }
  EXPECT_EQ(DefaultServerOptimizerOptions(ServerOptimizerKind::kFedAvgM).server_lr, 1.0);
  EXPECT_EQ(DefaultServerOptimizerOptions(ServerOptimizerKind::kFedAdam).server_lr, 0.1);
  EXPECT_EQ(DefaultServerOptimizerOptions(ServerOptimizerKind::kFedYogi).server_lr, 0.01);
  EXPECT_EQ(DefaultServerOptimizerOptions(ServerOptimizerKind::kFedAdagrad).server_lr, 0.1);
  EXPECT_EQ(DefaultServerOptimizerOptions(ServerOptimizerKind::kFedYogi).tau, 1e-3);
}

TEST(ServerOptimizerOptionsTest, RefusesInvalidSettingsByName) {
  const auto adam = [] { return ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAdam); };
  const auto refused = [](const ServerOptimizerOptions& options, const std::string& text) {
    EXPECT_THAT(ServerOptimizer::Create(options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(text)))
        << text;
  };
  refused(adam().set_server_lr(0), "server_lr must be finite and > 0, got 0");
  refused(adam().set_server_lr(-0.1), "server_lr must be finite and > 0, got -0.1");
  refused(adam().set_server_lr(kNaN), "server_lr must be finite and > 0, got nan");
  refused(adam().set_server_lr(INFINITY), "server_lr must be finite and > 0, got inf");
  refused(adam().set_beta1(1), "beta1 must be in [0, 1), got 1");
  refused(adam().set_beta1(-0.5), "beta1 must be in [0, 1), got -0.5");
  refused(adam().set_beta1(kNaN), "beta1 must be in [0, 1), got nan");
  refused(adam().set_beta2(1), "beta2 must be in [0, 1), got 1");
  refused(adam().set_tau(0), "tau must be finite and > 0, got 0");
  refused(adam().set_tau(-1e-3), "tau must be finite and > 0, got -0.001");
  refused(adam().set_tau(kNaN), "tau must be finite and > 0, got nan");
  // v starts at tau^2, stored as a float32: past FLT_MAX the cast would be
  // undefined, and the first step would then fail on an infinite state.
  refused(adam().set_tau(1e20), "tau^2 must fit a float32");
  refused(ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAdagrad).set_tau(1e30),
          "tau^2 must fit a float32");
  EXPECT_THAT(ServerOptimizer::Create(adam().set_tau(1e18)), IsOk());
  refused(ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedYogi).set_beta2(1.5),
          "beta2 must be in [0, 1), got 1.5");
  refused(ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAvgM).set_momentum(1),
          "momentum must be in [0, 1), got 1");
  refused(ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAvgM).set_momentum(kNaN),
          "momentum must be in [0, 1), got nan");
  refused(ServerOptimizerOptions().set_server_lr(0.5), "fedavg replaces the model");
  // Settings a kind does not use are ignored: Adagrad has no beta2.
  EXPECT_THAT(ServerOptimizer::Create(
                  ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAdagrad).set_beta2(7)),
              IsOk());
}

// --- Streaming, state files and resume -------------------------------------

// The Adam update of one parameter as the header states it, for checking
// models larger than one chunk element by element.
struct ReferenceAdam {
  double beta1, beta2, tau, eta;
  float Step(float x, float a, float& m, float& v) const {
    const double d = static_cast<double>(a) - x;
    const double new_m = beta1 * m + (1 - beta1) * d;
    const double new_v = beta2 * v + (1 - beta2) * (d * d);
    m = static_cast<float>(new_m);
    v = static_cast<float>(new_v);
    return static_cast<float>(x + eta * new_m / (std::sqrt(new_v) + tau));
  }
};

std::vector<float> RandomFloats(size_t count, uint32_t seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> values(count);
  for (float& value : values) value = normal(random);
  return values;
}

TEST_F(ServerOptimizerTest, StreamsTensorsLargerThanAChunkElementByElement) {
  // 300000 + 5 floats: the first tensor spans two 1 MiB chunks.
  const std::vector<TensorSpec> specs = {Float32("big", {300000}), Float32("small", {5})};
  const std::vector<float> x0 = RandomFloats(300005, 1);
  const std::vector<std::vector<float>> aggregates = {RandomFloats(300005, 2),
                                                      RandomFloats(300005, 3)};
  const ServerOptimizerOptions options = ServerOptimizerOptions()
                                             .set_kind(ServerOptimizerKind::kFedAdam)
                                             .set_server_lr(0.1)
                                             .set_beta1(0.9)
                                             .set_beta2(0.99)
                                             .set_tau(1e-3);
  const auto models = Run(options, specs, x0, aggregates);
  ASSERT_EQ(models.size(), 2u);

  const ReferenceAdam reference{0.9, 0.99, 1e-3, 0.1};
  std::vector<float> x = x0;
  std::vector<float> m(x.size(), 0.0f);
  std::vector<float> v(x.size(), static_cast<float>(1e-3 * 1e-3));
  for (const std::vector<float>& aggregate : aggregates) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = reference.Step(x[i], aggregate[i], m[i], v[i]);
  }
  ASSERT_EQ(models[1].size(), x.size());
  EXPECT_EQ(std::memcmp(models[1].data(), x.data(), x.size() * sizeof(float)), 0);
  const StateContents state = ReadState(last_state_);
  EXPECT_THAT(state.buffers,
              ElementsAre(Float32("moments/big", {300000, 2}), Float32("moments/small", {5, 2})));
  ASSERT_EQ(state.values.size(), 2 * x.size());
  for (size_t i = 0; i < x.size(); i += 99999) {
    EXPECT_EQ(state.values[2 * i], m[i]) << i;
    EXPECT_EQ(state.values[2 * i + 1], v[i]) << i;
  }
}

TEST_F(ServerOptimizerTest, ResumingFromAStoredStateContinuesBitForBit) {
  const std::vector<TensorSpec> specs = {Float32("conv.weight", {3, 70000}),
                                         Float32("fc.bias", {2})};
  const size_t n = 210002;
  std::vector<std::vector<float>> aggregates;
  for (uint32_t round = 0; round < 4; ++round) aggregates.push_back(RandomFloats(n, 10 + round));
  const ServerOptimizerOptions options =
      ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedYogi).set_server_lr(0.05);
  ASSERT_OK_AND_ASSIGN(ServerOptimizer optimizer, ServerOptimizer::Create(options));

  // Uninterrupted: 4 steps.
  std::string global = Put(specs, RandomFloats(n, 9));
  const std::string initial = global;
  std::string state;
  for (const auto& aggregate : aggregates) {
    ASSERT_OK_AND_ASSIGN(ServerStep step,
                         optimizer.Step(*store_, global, Put(specs, aggregate), state));
    global = step.model_sha256;
    state = step.state_sha256;
  }

  // Interrupted after 2 steps: the model and the state are read into memory
  // (as a commit would keep them), written into a fresh store, and a new
  // optimizer continues from them.
  std::string resumed_global = initial;
  std::string resumed_state;
  for (size_t round = 0; round < 2; ++round) {
    ASSERT_OK_AND_ASSIGN(
        ServerStep step,
        optimizer.Step(*store_, resumed_global, Put(specs, aggregates[round]), resumed_state));
    resumed_global = step.model_sha256;
    resumed_state = step.state_sha256;
  }
  const TensorBundle saved_model = Read(resumed_global);
  const TensorBundle saved_state = Read(resumed_state);
  ScratchDir other_dir;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> other, ModelStore::Open(other_dir.path()));
  std::string digest;
  ASSERT_THAT(WriteBundleFile(other_dir.path(), saved_model, &digest), IsOk());
  resumed_global = HexEncode(digest);
  ASSERT_THAT(WriteBundleFile(other_dir.path(), saved_state, &digest), IsOk());
  EXPECT_EQ(HexEncode(digest), resumed_state) << "the state file's bytes are its content";
  ASSERT_OK_AND_ASSIGN(ServerOptimizer restarted, ServerOptimizer::Create(options));
  ASSERT_OK_AND_ASSIGN(int64_t steps, restarted.StepsTaken(*other, resumed_state));
  EXPECT_EQ(steps, 2);
  for (size_t round = 2; round < 4; ++round) {
    ASSERT_THAT(WriteBundleFile(other_dir.path(), FloatBundle(specs, aggregates[round]), &digest),
                IsOk());
    ASSERT_OK_AND_ASSIGN(ServerStep step,
                         restarted.Step(*other, resumed_global, HexEncode(digest), resumed_state));
    resumed_global = step.model_sha256;
    resumed_state = step.state_sha256;
  }

  EXPECT_EQ(resumed_global, global);
  EXPECT_EQ(resumed_state, state);
  EXPECT_EQ(ReadState(state).steps, 4);
  EXPECT_NE(global, Put(specs, aggregates[3])) << "the optimizer must not be plain replacement";
}

TEST_F(ServerOptimizerTest, FrozenTensorsKeepWeightsAndState) {
  const std::vector<TensorSpec> specs = {Float32("backbone", {2}), Float32("head", {1})};
  ASSERT_OK_AND_ASSIGN(ServerOptimizer optimizer,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedAdagrad)));
  // Round 1 freezes the backbone: the aggregate carries the global's values
  // there (CompleteRoundModel puts them back), and they must stay put.
  const std::string global = Put(specs, {3, 4, 0});
  ASSERT_OK_AND_ASSIGN(ServerStep first,
                       optimizer.Step(*store_, global, Put(specs, {3, 4, 1}), "", {"backbone"}));
  // head: d = 1, m = 0.5, v = 1.5625, x = 0.5/2 = 0.25
  EXPECT_THAT(FloatsOf(Read(first.model_sha256)), ElementsAre(3.0f, 4.0f, 0.25f));
  // backbone keeps the initial state (m = 0, v = tau^2).
  EXPECT_THAT(ReadState(first.state_sha256).values,
              ElementsAre(0.0f, 0.5625f, 0.0f, 0.5625f, 0.5f, 1.5625f));
  // Round 2 trains both: the backbone starts from the initial state.
  ASSERT_OK_AND_ASSIGN(
      ServerStep second,
      optimizer.Step(*store_, first.model_sha256, Put(specs, {4, 4, 0.25}), first.state_sha256));
  // backbone[0]: d = 1, m = 0.5, v = 1.5625, x = 3 + 0.25; backbone[1]: d = 0, x = 4;
  // head: d = 0, m = 0.25, v = 1.5625, x = 0.25 + 0.25/2 = 0.375
  EXPECT_THAT(FloatsOf(Read(second.model_sha256)), ElementsAre(3.25f, 4.0f, 0.375f));
}

TEST_F(ServerOptimizerTest, NonFloatTensorsComeFromTheAggregate) {
  const std::vector<TensorSpec> specs = {Float32("w", {1}),
                                         TensorSpec{"steps", DType::kInt64, {1}}};
  auto bundle = [&](float w, int64_t steps) {
    TensorBundle out = FloatBundle({specs[0]}, {w});
    out.specs = specs;
    out.body.resize(12);
    std::memcpy(out.body.data() + 4, &steps, 8);
    return out;
  };
  ASSERT_OK_AND_ASSIGN(ServerOptimizer optimizer,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedAdam)));
  ASSERT_OK_AND_ASSIGN(ServerStep step,
                       optimizer.Step(*store_, Put(bundle(0, 10)), Put(bundle(0.75, 25)), ""));
  const TensorBundle model = Read(step.model_sha256);
  EXPECT_EQ(model.specs, specs);
  float w;
  int64_t steps;
  std::memcpy(&w, model.body.data(), 4);
  std::memcpy(&steps, model.body.data() + 4, 8);
  EXPECT_EQ(w, 0.25f);  // d = 0.75, as in FedAdamDecaysTheSecondMoment
  EXPECT_EQ(steps, 25);
  EXPECT_THAT(ReadState(step.state_sha256).buffers, ElementsAre(Float32("moments/w", {1, 2})));
}

TEST_F(ServerOptimizerTest, AFailedStepLeavesTheCommittedStateUsable) {
  const std::vector<TensorSpec> specs = {Float32("w", {1000})};
  const std::vector<float> x0 = RandomFloats(1000, 20);
  const std::vector<float> a1 = RandomFloats(1000, 21);
  const std::vector<float> a2 = RandomFloats(1000, 22);
  const ServerOptimizerOptions options =
      ServerOptimizerOptions().set_kind(ServerOptimizerKind::kFedAdam).set_server_lr(0.1);
  ASSERT_OK_AND_ASSIGN(ServerOptimizer optimizer, ServerOptimizer::Create(options));
  // The same two steps on a healthy disk.
  const auto healthy = Run(options, specs, x0, {a1, a2});
  ASSERT_EQ(healthy.size(), 2u);

  ScratchDir dir;
  FaultInjectionEnv env;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> store, ModelStore::Open(dir.path(), env));
  std::string digest;
  ASSERT_THAT(WriteBundleFile(dir.path(), FloatBundle(specs, x0), &digest), IsOk());
  const std::string global = HexEncode(digest);
  ASSERT_THAT(WriteBundleFile(dir.path(), FloatBundle(specs, a1), &digest), IsOk());
  ASSERT_OK_AND_ASSIGN(ServerStep first, optimizer.Step(*store, global, HexEncode(digest), ""));
  ASSERT_THAT(WriteBundleFile(dir.path(), FloatBundle(specs, a2), &digest), IsOk());
  const std::string aggregate = HexEncode(digest);

  // The disk fills while the second step writes its model and state.
  env.FailWritesAfter(3000);
  EXPECT_THAT(optimizer.Step(*store, first.model_sha256, aggregate, first.state_sha256),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("No space left on device")));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr(".tmp"))) << "a partial file";
  }
  env.Heal();
  ASSERT_OK_AND_ASSIGN(ServerStep second,
                       optimizer.Step(*store, first.model_sha256, aggregate, first.state_sha256));
  EXPECT_EQ(FloatsOf(ReadBundleFile(dir.Join(second.model_sha256)).value()), healthy[1]);
  ASSERT_OK_AND_ASSIGN(int64_t steps, optimizer.StepsTaken(*store, second.state_sha256));
  EXPECT_EQ(steps, 2);
}

// --- Refusals ----------------------------------------------------------------

TEST_F(ServerOptimizerTest, RefusesAStateOfAnotherKind) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  Run(HandOptions(ServerOptimizerKind::kFedAdam), specs, {0, 0}, {{1, 1}});
  ASSERT_OK_AND_ASSIGN(ServerOptimizer yogi,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedYogi)));
  EXPECT_THAT(
      yogi.Step(*store_, Put(specs, {1, 1}), Put(specs, {2, 2}), last_state_),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr("state is of 'fedadam', this run's server optimizer is 'fedyogi'")));
  EXPECT_THAT(yogi.Step(*store_, Put(specs, {1, 1}), Put(specs, {2, 2}), Put(specs, {0, 0})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is not one")));
}

TEST_F(ServerOptimizerTest, RefusesAStateThatDoesNotFitTheModel) {
  Run(HandOptions(ServerOptimizerKind::kFedAdam), {Float32("w", {2})}, {0, 0}, {{1, 1}});
  ASSERT_OK_AND_ASSIGN(ServerOptimizer adam,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedAdam)));
  const std::vector<TensorSpec> bigger = {Float32("w", {3})};
  EXPECT_THAT(adam.Step(*store_, Put(bigger, {1, 1, 1}), Put(bigger, {2, 2, 2}), last_state_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("moments/w"), HasSubstr("does not fit this model"))));
}

TEST_F(ServerOptimizerTest, RefusesMismatchedAndNonFiniteInputs) {
  ASSERT_OK_AND_ASSIGN(ServerOptimizer adam,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedAdam)));
  // (Different bodies: the store names files by their body alone.)
  EXPECT_THAT(
      adam.Step(*store_, Put({Float32("w", {2})}, {1, 1}), Put({Float32("v", {2})}, {2, 2}), ""),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("aggregate tensor #0 is named 'v', expected 'w'")));
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  EXPECT_THAT(adam.Step(*store_, Put(specs, {1, 1}), Put(specs, {1, kNaN}), ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("aggregate weight is nan in tensor 'w' at element 1")));
  EXPECT_THAT(adam.Step(*store_, Put(specs, {1, 1}), Put(specs, {1, 1}), std::string(64, '0')),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ServerOptimizerTest, RefusesAStepThatOverflowsFloat32) {
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_OK_AND_ASSIGN(ServerOptimizer fast,
                       ServerOptimizer::Create(ServerOptimizerOptions()
                                                   .set_kind(ServerOptimizerKind::kFedAvgM)
                                                   .set_server_lr(10)
                                                   .set_momentum(0)));
  // x = 3e38 + 10 * 2e37 = 5e38 > FLT_MAX.
  EXPECT_THAT(fast.Step(*store_, Put(specs, {0, 3e38f}), Put(specs, {0, 3.2e38f}), ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("fedavgm's new weight is 5e+38 in tensor 'w' at element 1")));
  ASSERT_OK_AND_ASSIGN(ServerOptimizer adam,
                       ServerOptimizer::Create(HandOptions(ServerOptimizerKind::kFedAdam)));
  // d = 6e38: v = 0.25 * 3.6e77 does not fit a float.
  EXPECT_THAT(adam.Step(*store_, Put(specs, {-3e38f, 0}), Put(specs, {3e38f, 0}), ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("fedadam's new state is 9e+76 in tensor 'w' at element 0")));
}

}  // namespace
}  // namespace fedmi
