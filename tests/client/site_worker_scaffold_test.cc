// SiteWorker under SCAFFOLD: the initial model carries a zero server control
// variate, each update carries the site's new control variate by option II
// of the algorithm, and the site's own variate survives a restart and is the
// same for a repeated round.
#include <cmath>
#include <string>
#include <vector>

#include "client/scaffold.h"
#include "client/site_worker.h"
#include "common/runspec/strategy_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/site_worker_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

constexpr double kLr = 0.1;

v1::RunSpec ScaffoldSpec() {
  v1::RunSpec spec = CnnSpec(28, 1);
  spec.set_scaffold(true);
  spec.set_optimizer("sgd");
  spec.set_lr(kLr);
  return spec;
}

class SiteWorkerScaffoldTest : public ::testing::Test {
 protected:
  std::unique_ptr<SiteWorker> StartWorker() {
    SiteWorkerOptions options = Options();
    options.state_dir = dir_.Join("state");
    return std::make_unique<SiteWorker>(options, NoiseSite(28, 1));
  }

  // A global or sent bundle split, its control variates back in gradient
  // units (bundles carry them times the run's base lr).
  static ScaffoldGlobal Unscaled(const TensorBundle& bundle) {
    absl::StatusOr<ScaffoldGlobal> split = SplitScaffoldGlobal(bundle);
    EXPECT_THAT(split, IsOk());
    if (!split.ok()) return {};
    split->server_control = ScaledControls(split->server_control, 1 / kLr);
    return *std::move(split);
  }

  // c_i+ = c_i - c + (x - y) / (K lr), in double, against what the site sent.
  static void ExpectNextControl(const ScaffoldGlobal& before, const TensorBundle& client_before,
                                const ScaffoldGlobal& sent, int64_t steps, double lr) {
    ASSERT_EQ(sent.server_control.specs.size(), before.server_control.specs.size());
    const std::vector<float> x = FloatsOf(before.weights);
    const std::vector<float> y = FloatsOf(sent.weights);
    const std::vector<float> c = FloatsOf(before.server_control);
    const std::vector<float> ci = FloatsOf(client_before);
    const std::vector<float> next = FloatsOf(sent.server_control);
    // The controls cover the parameters, which come first in wire order.
    ASSERT_LE(next.size(), x.size());
    int64_t moved = 0;
    for (size_t i = 0; i < next.size(); ++i) {
      const double expected = static_cast<double>(ci[i]) - c[i] + (x[i] - y[i]) / (steps * lr);
      ASSERT_NEAR(next[i], expected, 1e-5 * std::max(1.0, std::abs(expected))) << i;
      moved += x[i] != y[i];
    }
    EXPECT_GT(moved, 0);
  }

  ScratchDir dir_;
};

TEST_F(SiteWorkerScaffoldTest, UpdatesCarryTheNextControlVariateWhichSurvivesARestart) {
  const v1::RunSpec spec = ScaffoldSpec();
  std::unique_ptr<SiteWorker> worker = StartWorker();
  ASSERT_OK_AND_ASSIGN(TensorBundle initial, worker->BuildInitialModel(spec, 1));
  const ScaffoldGlobal start = Unscaled(initial);
  for (float value : FloatsOf(start.server_control)) ASSERT_EQ(value, 0);
  EXPECT_EQ(start.server_control.specs.front().name, start.weights.specs.front().name);

  // Round 1: c = c_i = 0, 16 images in batches of 8: K = 2.
  ASSERT_OK_AND_ASSIGN(LocalUpdate first, worker->Train(1, 1, spec, initial));
  const ScaffoldGlobal sent = Unscaled(first.weights);
  const TensorBundle zeros = start.server_control;
  ExpectNextControl(start, zeros, sent, /*steps=*/2, kLr);

  // Round 2 after a restart: a server variate of 0.5 everywhere (0.05 in
  // the bundle's weight units), and the site's own variate from round 1,
  // read back from its state directory.
  TensorBundle server = sent.server_control;
  for (size_t i = 0; i < server.body.size() / sizeof(float); ++i) {
    const float half = 0.5f;
    std::memcpy(server.body.data() + i * sizeof(float), &half, sizeof(float));
  }
  const TensorBundle global = WithScaffoldControls(sent.weights, ScaledControls(server, kLr));
  const ScaffoldGlobal second_global = Unscaled(global);
  worker = StartWorker();
  ASSERT_OK_AND_ASSIGN(LocalUpdate second, worker->Train(1, 2, spec, global));
  const ScaffoldGlobal second_sent = Unscaled(second.weights);
  ExpectNextControl(second_global, sent.server_control, second_sent, 2, kLr);

  // The same round again (the coordinator crashed before committing it):
  // the same c_i, so the same update, bit for bit.
  worker = StartWorker();
  ASSERT_OK_AND_ASSIGN(LocalUpdate repeated, worker->Train(1, 2, spec, global));
  EXPECT_TRUE(repeated.weights.body == second.weights.body);

  // An evaluation reads past the control variates.
  EXPECT_THAT(worker->Evaluate(1, spec, global).status(), IsOk());
}

}  // namespace
}  // namespace fedmi
