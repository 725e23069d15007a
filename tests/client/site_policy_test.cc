#include "client/site_policy.h"

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/site_worker.h"
#include "common/data/dataset.h"
#include "common/privacy/dp_plan.h"
#include "common/privacy/gaussian_noise.h"
#include "common/privacy/site_update.h"
#include "tests/client/site_policy_test_util.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---- Policy ----------------------------------------------------------------

TEST(SitePolicyTest, DefaultsAreSafe) {
  const SitePolicy policy = SitePolicy::Defaults();
  EXPECT_EQ(policy.allowed_models,
            (std::vector<std::string>{"cnn", "cnn-gn", "resnet18", "densenet121", "resnet50",
                                      "mobilenet_v2", "unet"}));
  EXPECT_TRUE(policy.allowed_model_sha256.empty()) << "no model file runs without its hash";
  EXPECT_TRUE(policy.allowed_spec_sha256.empty());
  EXPECT_EQ(policy.max_local_epochs, 10);
  EXPECT_FALSE(policy.require_secure_aggregation);
  EXPECT_FALSE(policy.require_differential_privacy);
  EXPECT_EQ(policy.coordinator_fingerprint, "");

  EXPECT_THAT(policy.Check(CnnSpec()), IsOk());
  v1::RunSpec synthetic = CnnSpec();
  synthetic.set_model("synthetic");
  synthetic.set_synthetic_params(4);
  EXPECT_THAT(
      policy.Check(synthetic),
      StatusIs(absl::StatusCode::kPermissionDenied,
               HasSubstr("model 'synthetic' is not in allowed_models [cnn, cnn-gn, resnet18, "
                         "densenet121, resnet50, mobilenet_v2, unet]")));
}

TEST(SitePolicyTest, EmptyFileMeansDefaults) {
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, ParsePolicy("# nothing set\n"));
  EXPECT_EQ(policy.allowed_models, SitePolicy::Defaults().allowed_models);
  EXPECT_EQ(policy.max_local_epochs, 10);
}

TEST(SitePolicyTest, RefusesModelNotAllowed) {
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, ParsePolicy("allowed_models = [\"cnn\"]\n"));
  v1::RunSpec spec = CnnSpec();
  spec.set_model("resnet18");
  EXPECT_THAT(policy.Check(spec),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "site policy: model 'resnet18' is not in allowed_models [cnn]"));
}

// A model file is code that runs on the site's data: only files the site
// listed by hash run, whatever allowed_models says.
TEST(SitePolicyTest, ModelFilesRunOnlyWhenTheirHashIsListed) {
  const std::string listed(64, 'a');
  ASSERT_OK_AND_ASSIGN(SitePolicy policy,
                       ParsePolicy(absl::StrCat("allowed_model_sha256 = [\"", listed, "\"]\n")));
  v1::RunSpec spec = CnnSpec();
  spec.set_model("custom");
  spec.set_model_file_sha256(listed);
  EXPECT_THAT(policy.Check(spec), IsOk());
  const std::string other(64, 'b');
  spec.set_model_file_sha256(other);
  EXPECT_THAT(policy.Check(spec), StatusIs(absl::StatusCode::kPermissionDenied,
                                           absl::StrCat("site policy: model file sha256 ", other,
                                                        " is not in allowed_model_sha256")));
  EXPECT_THAT(SitePolicy::Defaults().Check(spec), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(ParsePolicy("allowed_model_sha256 = [\"xyz\"]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("allowed_model_sha256")));
  // The operator reviewing the run sees the file and what is frozen.
  spec.set_model_file_sha256(listed);
  spec.mutable_transfer()->add_freeze_prefixes("features.");
  spec.mutable_transfer()->set_unfreeze_after_round(2);
  const std::string text = DescribeRunSpec(spec, "spec-hash", "coordinator:7000");
  EXPECT_THAT(text, AllOf(HasSubstr(absl::StrCat("model file sha256    ", listed)),
                          HasSubstr("frozen               features. (until round 2)")));
  // A listed file does not admit a built-in architecture beside it (the
  // site would build that, past allowed_models).
  spec.set_model("densenet121");
  EXPECT_THAT(policy.Check(spec),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("goes with model 'custom'")));
}

// The default policy admits unet, whose width and depth set the memory and
// time training takes here and the size of every update sent: an operator
// approving a spec (--review) must see them, not only the hash that covers
// them.
TEST(SitePolicyTest, TheOperatorSeesTheUNetShapeItApproves) {
  v1::RunSpec spec = CnnSpec();
  spec.set_model("unet");
  spec.set_image_size(64);
  EXPECT_THAT(DescribeRunSpec(spec, "spec-hash", "coordinator:7000"),
              HasSubstr("model                unet (base width 32, depth 4), 2 classes"));
  spec.mutable_unet()->set_base_width(256);
  spec.mutable_unet()->set_depth(6);
  EXPECT_THAT(DescribeRunSpec(spec, "spec-hash", "coordinator:7000"),
              HasSubstr("model                unet (base width 256, depth 6), 2 classes"));
  EXPECT_THAT(DescribeRunSpec(CnnSpec(), "spec-hash", "coordinator:7000"),
              Not(HasSubstr("base width")));
}

// The site clips its own change to a norm_bounded run's bound: the
// operator sees the bound it approves.
TEST(SitePolicyTest, TheOperatorSeesTheNormBoundItsSiteClipsTo) {
  v1::RunSpec spec = CnnSpec();
  spec.set_strategy("norm_bounded");
  spec.mutable_robust()->set_norm_bound(2.5);
  EXPECT_THAT(DescribeRunSpec(spec, "spec-hash", "coordinator:7000"),
              HasSubstr("norm bound           2.5 (L2; this site clips its change to it)"));
  EXPECT_THAT(DescribeRunSpec(CnnSpec(), "spec-hash", "coordinator:7000"),
              Not(HasSubstr("norm bound")));
}

TEST(SitePolicyTest, RefusesTooManyLocalEpochs) {
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, ParsePolicy("max_local_epochs = 10\n"));
  v1::RunSpec spec = CnnSpec();
  spec.set_local_epochs(10);
  EXPECT_THAT(policy.Check(spec), IsOk());
  spec.set_local_epochs(20);
  EXPECT_THAT(policy.Check(spec),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "site policy: local_epochs 20 exceeds max_local_epochs 10"));
}

TEST(SitePolicyTest, RefusesRunWithoutRequiredPrivacy) {
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, ParsePolicy("require_secure_aggregation = true\n"
                                                      "require_differential_privacy = true\n"));
  v1::RunSpec spec = CnnSpec();
  EXPECT_THAT(policy.Check(spec),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "site policy: this site requires secure aggregation; the run has it off"));
  spec.set_secure_aggregation(true);
  EXPECT_THAT(policy.Check(spec),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "site policy: this site requires differential privacy; the run has it off"));
  spec.set_model("cnn-gn");
  *spec.mutable_dp() = CompletedSampleDp(1.1, 0.05, 20);
  EXPECT_THAT(policy.Check(spec), IsOk());
  // Required DP without max_epsilon still bounds it, at 10.
  spec.mutable_dp()->set_noise_multiplier(0.3);
  EXPECT_THAT(policy.Check(spec), StatusIs(absl::StatusCode::kPermissionDenied,
                                           HasSubstr("past this site's max_epsilon 10")));
}

// A cnn-gn run with sample-level DP whose 5 rounds plan epsilon of about 2.
v1::RunSpec DpSpec() {
  v1::RunSpec spec = CnnSpec();
  spec.set_model("cnn-gn");
  spec.set_rounds(5);
  *spec.mutable_dp() = CompletedSampleDp(1.1, 0.05, 20);
  return spec;
}

TEST(SitePolicyTest, MaxEpsilonRefusesRunsThatPlanMoreAndRunsWithoutDp) {
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, ParsePolicy("max_epsilon = 1.5\n"));
  ASSERT_TRUE(policy.max_epsilon.has_value());
  EXPECT_EQ(*policy.max_epsilon, 1.5);
  const double planned = privacy::EpsilonAfterRounds(DpSpec().dp(), 5)->epsilon;
  ASSERT_GT(planned, 1.5);
  // The site recomputes the plan from the spec; the coordinator's word is not needed.
  EXPECT_THAT(policy.Check(DpSpec()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("site policy: the run plans epsilon"),
                             HasSubstr("over 5 rounds, past this site's max_epsilon 1.5"))));
  EXPECT_THAT(policy.Check(CnnSpec()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("the run has no differential privacy, so no bound")));
  policy.max_epsilon = planned * 1.001;
  EXPECT_THAT(policy.Check(DpSpec()), IsOk());
}

TEST(SitePolicyTest, ASiteRunsSampleLevelDpAsItWouldRunItOrRefuses) {
  const SitePolicy policy;
  v1::RunSpec batch_norm = DpSpec();
  batch_norm.set_model("cnn");
  EXPECT_THAT(policy.Check(batch_norm),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not DP-compatible")));
  // More steps than local_epochs and the sample rate make: refused, not run.
  v1::RunSpec more_steps = DpSpec();
  more_steps.mutable_dp()->set_steps_per_round(1 << 30);
  EXPECT_THAT(policy.Check(more_steps),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("steps per round")));
  EXPECT_THAT(policy.Check(DpSpec()), IsOk());
}

// Site level: any architecture, but the noise a site adds and the
// accounting must follow from the spec it approves.
TEST(SitePolicyTest, ASiteRunsSiteLevelDpOnlyWhereItsNoiseCounts) {
  SitePolicy policy;
  v1::RunSpec central = CnnSpec();
  central.set_rounds(5);
  *central.mutable_dp() = CompletedSiteDp(1.0, 2.0, v1::DP_NOISE_CENTRAL, 5);
  // The coordinator would add the noise: the update leaves this site without.
  EXPECT_THAT(policy.Check(central),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("allow_central_dp_noise")));
  ASSERT_OK_AND_ASSIGN(policy, ParsePolicy("allow_central_dp_noise = true\n"));
  EXPECT_THAT(policy.Check(central), IsOk()) << "BatchNorm is fine: the site is the unit";
  v1::RunSpec distributed = central;
  distributed.mutable_dp()->set_noise_placement(v1::DP_NOISE_DISTRIBUTED);
  EXPECT_THAT(policy.Check(distributed),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("without secure aggregation would show the coordinator")));
  distributed.set_secure_aggregation(true);
  distributed.mutable_secagg()->set_clip(1.0);
  EXPECT_THAT(policy.Check(distributed),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("clamp")));
  distributed.mutable_secagg()->set_clip(privacy::MinSecAggClipForSiteNoise(distributed.dp()));
  EXPECT_THAT(policy.Check(distributed), IsOk());
  v1::RunSpec adaptive = central;
  adaptive.mutable_dp()->set_adaptive_clipping(true);
  EXPECT_THAT(policy.Check(adaptive), IsOk());
  adaptive = distributed;
  adaptive.mutable_dp()->set_adaptive_clipping(true);
  EXPECT_THAT(policy.Check(adaptive),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("adaptive clipping with distributed noise")));
  v1::RunSpec sampled = central;
  sampled.mutable_dp()->set_sample_rate(0.5);
  EXPECT_THAT(policy.Check(sampled),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("sample rate 1")));
  // max_epsilon is per patient: one patient's images can move the site's
  // clipped change by 2S, so a patient pays more than the site-level epsilon.
  const double per_site = privacy::EpsilonAfterRounds(central.dp(), 5)->epsilon;
  const double per_patient = privacy::PatientEpsilonAfterRounds(central.dp(), 5)->epsilon;
  ASSERT_GT(per_patient, 2 * per_site);
  policy.max_epsilon = 1.5 * per_site;
  EXPECT_THAT(policy.Check(central),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("the run plans epsilon"), HasSubstr("per patient"))));
  policy.max_epsilon = per_patient * 1.001;
  EXPECT_THAT(policy.Check(central), IsOk());
}

TEST(SitePolicyTest, MaxDeltaRefusesAWeakerDelta) {
  ASSERT_OK_AND_ASSIGN(SitePolicy defaults, ParsePolicy(""));
  EXPECT_EQ(defaults.max_delta, 1e-5);
  EXPECT_FALSE(defaults.max_epsilon.has_value());
  v1::RunSpec spec = DpSpec();
  spec.mutable_dp()->set_delta(1e-3);
  EXPECT_THAT(defaults.Check(spec), StatusIs(absl::StatusCode::kPermissionDenied,
                                             HasSubstr("delta 0.001 exceeds max_delta 1e-05")));
  ASSERT_OK_AND_ASSIGN(SitePolicy looser, ParsePolicy("max_delta = 1e-3\n"));
  EXPECT_THAT(looser.Check(spec), IsOk());
  EXPECT_THAT(ParsePolicy("max_delta = 1.5\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_delta")));
  EXPECT_THAT(ParsePolicy("max_epsilon = -1\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_epsilon")));
}

TEST(SitePolicyTest, SpecPinAllowsOnlyListedSpecs) {
  const v1::RunSpec pinned = CnnSpec();
  const std::string sha = RunSpecSha256Hex(pinned);
  // Upper case and OpenSSL's colon spelling are the same pin.
  std::string upper;
  for (char c : sha) upper.push_back(static_cast<char>(std::toupper(c)));
  ASSERT_OK_AND_ASSIGN(SitePolicy policy,
                       ParsePolicy("allowed_spec_sha256 = [\"" + upper + "\"]\n"));
  EXPECT_EQ(policy.allowed_spec_sha256, std::vector<std::string>{sha});
  EXPECT_THAT(policy.Check(pinned), IsOk());

  v1::RunSpec other = CnnSpec();
  other.set_lr(0.5);
  EXPECT_THAT(policy.Check(other),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       absl::StrCat("site policy: run spec sha256 ", RunSpecSha256Hex(other),
                                    " is not in allowed_spec_sha256")));
}

TEST(SitePolicyTest, ParsesEveryKey) {
  const std::string fingerprint(64, 'A');
  ASSERT_OK_AND_ASSIGN(SitePolicy policy,
                       ParsePolicy("allowed_models = [\"resnet18\", \"synthetic\"]\n"
                                   "allowed_spec_sha256 = []\n"
                                   "max_local_epochs = 3\n"
                                   "require_secure_aggregation = true\n"
                                   "require_differential_privacy = false\n"
                                   "coordinator_fingerprint = \"" +
                                   fingerprint + "\"\n"));
  EXPECT_EQ(policy.allowed_models, (std::vector<std::string>{"resnet18", "synthetic"}));
  EXPECT_EQ(policy.max_local_epochs, 3);
  EXPECT_TRUE(policy.require_secure_aggregation);
  EXPECT_EQ(policy.coordinator_fingerprint, std::string(64, 'a'));
}

TEST(SitePolicyTest, SyntaxErrorNamesTheLine) {
  EXPECT_THAT(ParsePolicy("max_local_epochs = 3\nallowed_models = [\"cnn\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("policy.toml:"), HasSubstr("TOML syntax error"))));
  EXPECT_THAT(ParsePolicy("max_local_epochs = 3\nthis is not toml\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("policy.toml:2"), HasSubstr("TOML syntax error"))));
}

TEST(SitePolicyTest, WrongTypeNamesTheKey) {
  EXPECT_THAT(ParsePolicy("max_local_epochs = \"ten\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("policy.toml:1"), HasSubstr("'max_local_epochs'"),
                             HasSubstr("integer"))));
  EXPECT_THAT(ParsePolicy("max_local_epochs = 0\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("between 1 and")));
  EXPECT_THAT(ParsePolicy("allowed_models = \"cnn\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'allowed_models'"), HasSubstr("array of strings"))));
  EXPECT_THAT(ParsePolicy("allowed_models = [\"cnn\", 3]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'allowed_models'")));
  EXPECT_THAT(
      ParsePolicy("require_secure_aggregation = \"yes\"\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'require_secure_aggregation'"), HasSubstr("true or false"))));
  EXPECT_THAT(ParsePolicy("allowed_spec_sha256 = [\"abc\"]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'allowed_spec_sha256'"), HasSubstr("64"))));
  EXPECT_THAT(ParsePolicy("coordinator_fingerprint = \"not hex\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'coordinator_fingerprint'")));
}

TEST(SitePolicyTest, UnknownKeyIsAnError) {
  // A typo must not silently fall back to the default.
  EXPECT_THAT(ParsePolicy("max_local_epochs = 2\nallowed_model = [\"cnn\"]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("policy.toml:2"),
                             HasSubstr("unknown site policy key 'allowed_model'"))));
  EXPECT_THAT(ParsePolicy("[limits]\nmax_local_epochs = 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'limits'")));
}

TEST(SitePolicyTest, LoadReadsAFileAndNamesAMissingOne) {
  ScratchDir dir;
  WriteFile(dir.Join("policy.toml"), "allowed_models = [\"resnet18\"]\nmax_local_epochs = 2\n");
  ASSERT_OK_AND_ASSIGN(SitePolicy policy, SitePolicy::Load(dir.Join("policy.toml")));
  EXPECT_EQ(policy.allowed_models, std::vector<std::string>{"resnet18"});
  EXPECT_EQ(policy.max_local_epochs, 2);

  WriteFile(dir.Join("bad.toml"), "max_local_epochs = [\n");
  EXPECT_THAT(SitePolicy::Load(dir.Join("bad.toml")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.toml:")));
  EXPECT_THAT(SitePolicy::Load(dir.Join("missing.toml")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.toml")));
}

TEST(SitePolicyTest, RunSpecSha256IsStableAndCoversEveryField) {
  const v1::RunSpec spec = CnnSpec();
  const std::string sha = RunSpecSha256Hex(spec);
  EXPECT_EQ(sha.size(), 64u);
  EXPECT_EQ(sha, RunSpecSha256Hex(CnnSpec()));
  v1::RunSpec copy;
  ASSERT_TRUE(copy.ParseFromString(spec.SerializeAsString()));
  EXPECT_EQ(RunSpecSha256Hex(copy), sha);
  // The empty spec serializes to nothing: SHA-256 of "".
  EXPECT_EQ(RunSpecSha256Hex(v1::RunSpec()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  v1::RunSpec private_run = CnnSpec();
  private_run.mutable_dp()->set_level(v1::DP_LEVEL_SAMPLE);
  EXPECT_NE(RunSpecSha256Hex(private_run), sha);
}

// ---- SiteWorker --------------------------------------------------------------

SiteDataset TinyDataset() {
  SiteDataset data;
  for (ImageSet* set : {&data.train, &data.val}) {
    set->height = 4;
    set->width = 4;
    set->channels = 1;
    set->labels = {0, 1};
    set->pixels.assign(2 * 16, 128);
  }
  return data;
}

// Counts the specs it is asked about; approves or refuses them all.
class CountingApprover : public SpecApprover {
 public:
  explicit CountingApprover(bool approve) : approve_(approve) {}
  absl::Status Approve(const v1::RunSpec&, const std::string& sha) override {
    ++calls;
    last_sha = sha;
    return approve_ ? absl::OkStatus()
                    : absl::PermissionDeniedError("site policy: rejected by the site operator");
  }
  int calls = 0;
  std::string last_sha;

 private:
  bool approve_;
};

TEST(SiteWorkerPolicyTest, RefusesDisallowedArchitectureBeforeTouchingData) {
  SiteWorkerOptions options;
  options.site = "site-1";
  options.threads = 1;
  options.policy = SitePolicy::Defaults();
  options.policy->allowed_models = {"resnet18"};
  CountingApprover approver(/*approve=*/true);
  options.approver = &approver;
  SiteWorker worker(options, TinyDataset());

  const v1::RunSpec spec = CnnSpec();
  const auto refused = StatusIs(absl::StatusCode::kPermissionDenied,
                                "site policy: model 'cnn' is not in allowed_models [resnet18]");
  EXPECT_THAT(worker.CheckTask(spec), refused);
  // Each task kind goes through the same check first; none reaches the data
  // or the operator.
  EXPECT_THAT(worker.BuildInitialModel(spec), refused);
  EXPECT_THAT(worker.Train(1, 1, spec, TensorBundle()), refused);
  EXPECT_THAT(worker.Evaluate(1, spec, TensorBundle()), refused);
  EXPECT_EQ(approver.calls, 0);
}

TEST(SiteWorkerPolicyTest, AsksTheOperatorOnlyAfterThePolicyPasses) {
  SiteWorkerOptions options;
  options.site = "site-1";
  options.threads = 1;
  CountingApprover approver(/*approve=*/false);
  options.approver = &approver;
  SiteWorker worker(options, TinyDataset());

  EXPECT_THAT(worker.CheckTask(CnnSpec()), StatusIs(absl::StatusCode::kPermissionDenied,
                                                    "site policy: rejected by the site operator"));
  EXPECT_EQ(approver.calls, 1);
  EXPECT_EQ(approver.last_sha, RunSpecSha256Hex(CnnSpec()));

  v1::RunSpec long_run = CnnSpec();
  long_run.set_local_epochs(50);
  EXPECT_THAT(worker.CheckTask(long_run),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("max_local_epochs")));
  EXPECT_EQ(approver.calls, 1);
}

TEST(SiteWorkerPolicyTest, DefaultPolicyAllowsSyntheticOnlyWithoutData) {
  v1::RunSpec synthetic = CnnSpec();
  synthetic.set_model("synthetic");
  synthetic.set_synthetic_params(4);
  SiteWorkerOptions options;
  options.site = "site-1";
  options.threads = 1;

  SiteWorker benchmark_site(options, std::nullopt);
  EXPECT_THAT(benchmark_site.CheckTask(synthetic), IsOk());

  SiteWorker hospital(options, TinyDataset());
  EXPECT_THAT(hospital.CheckTask(synthetic),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("model 'synthetic' is not in allowed_models")));
}

// Site-level DP at the worker, on a synthetic model (no data, no LibTorch
// training): the change sent is clipped to S, carries this site's noise
// share when the noise is distributed, and reports whether it fit S only
// when adaptive clipping asks for that bit.
TEST(SiteWorkerPolicyTest, SiteLevelDpClipsTheChangeAndSendsTheBitOnlyWhenAsked) {
  v1::RunSpec spec = CnnSpec();
  spec.set_model("synthetic");
  spec.set_synthetic_params(20000);
  spec.set_rounds(3);
  *spec.mutable_dp() = CompletedSiteDp(/*clip=*/0.01, /*noise_multiplier=*/1.0,
                                       v1::DP_NOISE_CENTRAL, /*expected_sites=*/5);
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(4);
  SiteWorkerOptions options;
  options.site = "site-1";
  options.threads = 1;
  options.dp_noise = noise.get();
  options.policy = SitePolicy::Defaults();
  options.policy->allowed_models.push_back("synthetic");
  options.policy->allow_central_dp_noise = true;
  SiteWorker worker(options, std::nullopt);
  ASSERT_OK_AND_ASSIGN(TensorBundle global, worker.BuildInitialModel(spec));

  ASSERT_OK_AND_ASSIGN(LocalUpdate fixed, worker.Train(1, 1, spec, global));
  ASSERT_OK_AND_ASSIGN(double norm, privacy::UpdateNorm(global, fixed.weights));
  EXPECT_LE(norm, 0.01);
  EXPECT_GT(norm, 0.0099);
  EXPECT_GT(fixed.dp_epsilon_spent, 0);
  v1::RunSpec loose = spec;
  loose.mutable_dp()->set_clip_norm(1e6);
  ASSERT_OK_AND_ASSIGN(LocalUpdate fits, worker.Train(4, 1, loose, global));
  EXPECT_FALSE(fits.dp_within_clip) << "no bit leaves the site without adaptive clipping";

  v1::RunSpec adaptive = spec;
  adaptive.mutable_dp()->set_adaptive_clipping(true);
  EXPECT_THAT(worker.Train(2, 1, adaptive, global),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("adaptive clip")));
  ASSERT_OK_AND_ASSIGN(LocalUpdate wide,
                       worker.Train(2, 1, adaptive, global, /*dp_clip_norm=*/1e6));
  EXPECT_TRUE(wide.dp_within_clip);
  ASSERT_OK_AND_ASSIGN(LocalUpdate narrow, worker.Train(2, 2, adaptive, global, 0.01));
  EXPECT_FALSE(narrow.dp_within_clip);
  ASSERT_OK_AND_ASSIGN(norm, privacy::UpdateNorm(global, narrow.weights));
  EXPECT_LE(norm, 0.01) << "the task's clip, not the spec's";

  v1::RunSpec distributed = spec;
  distributed.set_secure_aggregation(true);
  distributed.mutable_dp()->set_noise_placement(v1::DP_NOISE_DISTRIBUTED);
  distributed.mutable_secagg()->set_clip(privacy::MinSecAggClipForSiteNoise(distributed.dp()));
  ASSERT_OK_AND_ASSIGN(LocalUpdate shared, worker.Train(3, 1, distributed, global));
  // The clipped change (norm 0.01 over 20000 values) is small beside the
  // share, sigma S / sqrt(5) = 0.00447 per value.
  const std::vector<float> before = FloatsOf(global), after = FloatsOf(shared.weights);
  double squares = 0;
  for (size_t i = 0; i < before.size(); ++i) squares += std::pow(after[i] - before[i], 2);
  const double per_value = std::sqrt(squares / before.size());
  EXPECT_NEAR(per_value, 0.01 / std::sqrt(5.0), 0.01 / std::sqrt(5.0) * 0.05);
}

}  // namespace
}  // namespace fedmi
