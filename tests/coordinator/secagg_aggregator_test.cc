#include "coordinator/secagg_aggregator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>

#include "common/base/status.h"
#include "common/privacy/dp_plan.h"
#include "common/privacy/site_update.h"
#include "common/secagg/secagg.h"
#include "common/secagg/secagg_bundle.h"
#include "tests/common/privacy/dp_settings_fixture.h"
#include "tests/common/secagg/secagg_test_support.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kRun = 7;
constexpr int32_t kRound = 4;
constexpr double kClip = 0.25;

std::string Seed(uint8_t byte) { return std::string(secagg::kKeySize, static_cast<char>(byte)); }

TensorSpec Float32(const std::string& name, std::vector<int64_t> shape) {
  return TensorSpec{name, DType::kFloat32, std::move(shape)};
}

// "fc.weight" holds more than 1 MiB of words (262144), so a chunk boundary
// falls inside it and unmasking runs with first_word != 0.
std::vector<TensorSpec> ModelSpecs() {
  return {Float32("conv.weight", {8, 3, 3, 3}), Float32("fc.weight", {600, 500}),
          Float32("fc.bias", {600})};
}

std::vector<uint32_t> WordsOf(const TensorBundle& bundle) {
  std::vector<uint32_t> words(bundle.body.size() / sizeof(uint32_t));
  std::memcpy(words.data(), bundle.body.data(), bundle.body.size());
  return words;
}

// One simulated site after key advertisement.
struct SimSite {
  std::string name;
  secagg::KeyPair mask_key;
  std::string self_seed;
  std::vector<float> local;
  double weight = 1;
};

absl::StatusOr<std::string> PairSeed(const secagg::KeyPair& mine, const std::string& peer_public) {
  ASSIGN_OR_RETURN(std::string secret, secagg::AgreeSharedSecret(mine.private_key, peer_public));
  return secagg::DerivePairwiseMaskSeed(secret, TestRoundId(kRun, kRound));
}

class SecAggAggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(codec_, secagg::FixedPointCodec::Create({kClip, 1000}));
    ASSERT_OK_AND_ASSIGN(aggregator_, SecAggAggregator::Create({kClip, 1000}));
    ASSERT_OK_AND_ASSIGN(store_, ModelStore::Open(models_.path()));
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> value(-1, 1);
    global_.resize(TotalBytes(specs_) / sizeof(float));
    for (float& v : global_) v = value(rng);
    ASSERT_OK_AND_ASSIGN(global_path_, WriteBundleFile(globals_.path(), Global()));
  }

  TensorBundle Global() const { return FloatBundle(specs_, global_); }

  // Sites whose deltas are mostly within the clip, some beyond it.
  std::vector<SimSite> MakeSites(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> delta(-0.3f, 0.3f);
    std::vector<SimSite> sites;
    for (int i = 0; i < n; ++i) {
      SimSite site;
      site.name = "hospital-" + std::to_string(i);
      site.mask_key = *secagg::GenerateKeyPair();
      site.self_seed = *secagg::Hkdf(Seed(static_cast<uint8_t>(seed + i)), "", "self", 32);
      site.local = global_;
      for (float& v : site.local) v += delta(rng);
      site.weight = 0.2 * (i + 1);
      sites.push_back(std::move(site));
    }
    return sites;
  }

  // Site `index` of `sites` (also its graph index) masks its update and
  // "uploads" it: returns the spooled bundle file's path.
  absl::StatusOr<std::string> Upload(const std::vector<SimSite>& sites,
                                     const std::vector<std::vector<int>>& graph, int index) {
    const SimSite& me = sites[index];
    ASSIGN_OR_RETURN(
        TensorBundle masked,
        MaskUpdateForSecAgg(
            Global(), FloatBundle(specs_, me.local), me.weight, codec_, index, graph[index],
            [&](int peer) { return PairSeed(me.mask_key, sites[peer].mask_key.public_key); },
            me.self_seed));
    return WriteBundleFile(updates_.path(), masked);
  }

  absl::Status AcceptFile(const std::string& site, double weight, const std::string& path) {
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> reader, BundleFileReader::Open(path));
    return aggregator_->Accept(site, weight, *reader);
  }

  // Begins a round and accepts every site of `sites` except `skip`.
  void CollectAll(const std::vector<SimSite>& sites, const std::vector<std::vector<int>>& graph,
                  int skip = -1) {
    ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
    for (int i = 0; i < static_cast<int>(sites.size()); ++i) {
      if (i == skip) continue;
      ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, graph, i));
      ASSERT_THAT(AcceptFile(sites[i].name, sites[i].weight, path), IsOk());
    }
  }

  static UnmaskingInput Unmasking(const std::vector<SimSite>& sites,
                                  std::vector<std::vector<int>> graph, int dropped = -1) {
    UnmaskingInput input;
    input.graph = std::move(graph);
    for (int i = 0; i < static_cast<int>(sites.size()); ++i) {
      if (i == dropped) {
        input.dropped.push_back(i);
      } else {
        input.survivors.push_back(i);
      }
    }
    input.secrets.self_seed = [&sites](int s) -> absl::StatusOr<std::string> {
      return sites[s].self_seed;
    };
    input.secrets.pairwise_seed = [&sites](int d, int s) {
      return PairSeed(sites[d].mask_key, sites[s].mask_key.public_key);
    };
    return input;
  }

  absl::StatusOr<TensorBundle> FinishAndRead(const UnmaskingInput& unmasking,
                                             std::string* sha = nullptr) {
    ASSIGN_OR_RETURN(std::string hex, aggregator_->Finish(*store_, unmasking));
    if (sha != nullptr) *sha = hex;
    ASSIGN_OR_RETURN(std::string path, store_->PathFor(hex));
    return ReadBundleFile(path);
  }

  // Weighted FedAvg of the sites' clipped deltas in double precision, from
  // the float32 deltas the sites compute.
  std::vector<double> Reference(const std::vector<const SimSite*>& sites) const {
    double total = 0;
    for (const SimSite* site : sites) total += site->weight;
    std::vector<double> expected(global_.size());
    for (size_t i = 0; i < global_.size(); ++i) {
      double sum = 0;
      for (const SimSite* site : sites) {
        const float delta = site->local[i] - global_[i];
        sum += site->weight * std::clamp<double>(delta, -kClip, kClip);
      }
      expected[i] = global_[i] + sum / total;
    }
    return expected;
  }

  // The codec's bound on the decoded sum, divided by the total weight, plus
  // the final rounding to float32.
  void ExpectWithinBound(const TensorBundle& got, const std::vector<double>& expected,
                         int num_sites, double total_weight) const {
    ASSERT_EQ(got.specs, specs_);
    const std::vector<float> values = FloatsOf(got);
    ASSERT_EQ(values.size(), expected.size());
    const double quantization = codec_.ErrorBound(num_sites) / total_weight * (1 + 1e-9);
    int failures = 0;
    double worst = 0;
    for (size_t i = 0; i < values.size() && failures < 5; ++i) {
      const float magnitude = static_cast<float>(std::abs(expected[i]) + quantization);
      const double half_ulp =
          (std::nextafter(magnitude, std::numeric_limits<float>::infinity()) - magnitude) / 2.0;
      const double error = std::abs(values[i] - expected[i]);
      worst = std::max(worst, error);
      if (error > quantization + half_ulp + 1e-12) {
        ++failures;
        ADD_FAILURE() << "parameter " << i << ": got " << values[i] << ", expected " << expected[i]
                      << " within " << quantization << " + " << half_ulp;
      }
    }
    EXPECT_GT(worst, 0);  // the comparison is not vacuous
  }

  std::vector<TensorSpec> specs_ = ModelSpecs();
  std::vector<float> global_;
  ScratchDir globals_;
  ScratchDir updates_;
  ScratchDir models_;
  std::string global_path_;
  secagg::FixedPointCodec codec_ = *secagg::FixedPointCodec::Create({kClip, 1000});
  std::unique_ptr<SecAggAggregator> aggregator_;
  std::unique_ptr<ModelStore> store_;
};

std::vector<const SimSite*> Pointers(const std::vector<SimSite>& sites, int skip = -1) {
  std::vector<const SimSite*> out;
  for (int i = 0; i < static_cast<int>(sites.size()); ++i) {
    if (i != skip) out.push_back(&sites[i]);
  }
  return out;
}

TEST_F(SecAggAggregatorTest, FiveSitesMatchWeightedFedAvgForSparseAndCompleteGraphs) {
  const std::vector<SimSite> sites = MakeSites(5, 10);
  const std::vector<double> expected = Reference(Pointers(sites));
  for (int k = 2; k <= 4; ++k) {
    SCOPED_TRACE(absl::StrCat("k = ", k));
    ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(5, k, Seed(static_cast<uint8_t>(k))));
    CollectAll(sites, graph);
    EXPECT_THAT(aggregator_->accepted_sites(),
                ElementsAre("hospital-0", "hospital-1", "hospital-2", "hospital-3", "hospital-4"));
    EXPECT_DOUBLE_EQ(aggregator_->total_weight(), 3.0);
    ASSERT_OK_AND_ASSIGN(TensorBundle result, FinishAndRead(Unmasking(sites, graph)));
    ExpectWithinBound(result, expected, 5, 3.0);
  }
}

TEST_F(SecAggAggregatorTest, CompleteGraphGivesTheSameModelAsSparseOnes) {
  const std::vector<SimSite> sites = MakeSites(5, 20);
  std::string sparse_sha, complete_sha;
  ASSERT_OK_AND_ASSIGN(auto sparse, secagg::NeighbourGraph(5, 2, Seed(9)));
  CollectAll(sites, sparse);
  ASSERT_OK_AND_ASSIGN(TensorBundle first, FinishAndRead(Unmasking(sites, sparse), &sparse_sha));
  ASSERT_OK_AND_ASSIGN(auto complete, secagg::NeighbourGraph(5, 4, Seed(9)));
  CollectAll(sites, complete);
  ASSERT_OK_AND_ASSIGN(TensorBundle second,
                       FinishAndRead(Unmasking(sites, complete), &complete_sha));
  // Masks cancel exactly, so only the quantized updates decide the result.
  EXPECT_EQ(sparse_sha, complete_sha);
  ExpectWithinBound(second, Reference(Pointers(sites)), 5, 3.0);
}

// Site `dropped` took part in key agreement and share distribution but never
// uploaded. Its mask private key is Shamir-shared among its neighbours and
// reconstructed from the survivors' shares; the result is bit-identical to a
// round of the four survivors alone.
TEST_F(SecAggAggregatorTest, DropoutRecoversTheSurvivorsWeightedMean) {
  const std::vector<SimSite> sites = MakeSites(5, 30);
  ASSERT_OK_AND_ASSIGN(auto complete, secagg::NeighbourGraph(5, 4, Seed(3)));
  ASSERT_OK_AND_ASSIGN(auto sparse, secagg::NeighbourGraph(5, 2, Seed(4)));
  for (const auto& [graph, dropped_index] :
       {std::make_pair(complete, 2), std::make_pair(sparse, 0)}) {
    const int dropped = dropped_index;
    SCOPED_TRACE(absl::StrCat("dropped ", dropped, ", degree ", graph[0].size()));
    const SimSite& gone = sites[dropped];
    const int degree = static_cast<int>(graph[dropped].size());
    const int threshold = degree / 2 + 1;
    ASSERT_OK_AND_ASSIGN(std::vector<secagg::Share> shares,
                         secagg::ShamirSplit(gone.mask_key.private_key, threshold, degree));
    ASSERT_OK_AND_ASSIGN(std::string recovered_key, secagg::ShamirReconstruct(shares, threshold));

    CollectAll(sites, graph, dropped);
    EXPECT_EQ(aggregator_->accepted_sites().size(), 4u);
    const double survivors_weight = 3.0 - gone.weight;
    EXPECT_DOUBLE_EQ(aggregator_->total_weight(), survivors_weight);

    UnmaskingInput unmasking = Unmasking(sites, graph, dropped);
    // A survivor's neighbour must be accounted for, and its masks cancelled.
    UnmaskingInput unlisted = unmasking;
    unlisted.dropped.clear();
    EXPECT_THAT(aggregator_->Finish(*store_, unlisted),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither a survivor")));
    UnmaskingInput no_pairwise_seeds = unmasking;
    no_pairwise_seeds.secrets.pairwise_seed = nullptr;
    EXPECT_THAT(aggregator_->Finish(*store_, no_pairwise_seeds),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pairwise seeds")));
    unmasking.secrets.pairwise_seed = [&](int d, int s) -> absl::StatusOr<std::string> {
      if (d != dropped) return absl::InternalError("asked for a site that did not drop");
      secagg::KeyPair reconstructed{recovered_key, ""};
      return PairSeed(reconstructed, sites[s].mask_key.public_key);
    };
    std::string sha;
    ASSERT_OK_AND_ASSIGN(TensorBundle result, FinishAndRead(unmasking, &sha));
    ExpectWithinBound(result, Reference(Pointers(sites, dropped)), 4, survivors_weight);

    // The same four sites alone, in a complete 4-site graph.
    std::vector<SimSite> alone;
    for (int i = 0; i < 5; ++i) {
      if (i != dropped) alone.push_back(sites[i]);
    }
    ASSERT_OK_AND_ASSIGN(auto graph4, secagg::NeighbourGraph(4, 3, Seed(5)));
    CollectAll(alone, graph4);
    std::string alone_sha;
    ASSERT_THAT(FinishAndRead(Unmasking(alone, graph4), &alone_sha), IsOk());
    EXPECT_EQ(sha, alone_sha);
  }
}

TEST_F(SecAggAggregatorTest, TheCoordinatorHoldsOnlyMaskedWords) {
  const std::vector<SimSite> sites = MakeSites(5, 40);
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(5, 2, Seed(6)));
  ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
  EXPECT_EQ(aggregator_->accumulator_for_testing().size(), global_.size());
  ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, graph, 1));
  ASSERT_THAT(AcceptFile(sites[1].name, sites[1].weight, path), IsOk());

  std::vector<float> delta(global_.size());
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = sites[1].local[i] - global_[i];
  std::vector<uint32_t> quantized(delta.size());
  ASSERT_THAT(codec_.Encode(delta.data(), delta.size(), sites[1].weight, quantized.data()), IsOk());
  const std::vector<uint32_t>& held = aggregator_->accumulator_for_testing();
  ASSERT_OK_AND_ASSIGN(TensorBundle spooled, ReadBundleFile(path));
  EXPECT_EQ(held, WordsOf(spooled));
  size_t unchanged = 0;
  for (size_t i = 0; i < held.size(); ++i) unchanged += held[i] == quantized[i];
  EXPECT_LE(unchanged, 2u) << "of " << held.size() << " words";
  // Nor does the masked sum decode as an update.
  std::vector<double> decoded(held.size());
  EXPECT_THAT(codec_.Decode(held.data(), held.size(), 1, decoded.data()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("masks")));
}

TEST_F(SecAggAggregatorTest, AWrongSelfSeedIsDataLossAndFinishCanBeRetried) {
  const std::vector<SimSite> sites = MakeSites(5, 50);
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(5, 3, Seed(7)));
  CollectAll(sites, graph);
  UnmaskingInput wrong = Unmasking(sites, graph);
  wrong.secrets.self_seed = [&](int s) -> absl::StatusOr<std::string> {
    return s == 3 ? Seed(99) : sites[s].self_seed;
  };
  EXPECT_THAT(aggregator_->Finish(*store_, wrong),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("'conv.weight'"), HasSubstr("were all masks removed?"))));
  UnmaskingInput failing = Unmasking(sites, graph);
  failing.secrets.self_seed = [](int /*site*/) -> absl::StatusOr<std::string> {
    return absl::UnavailableError("site 2 did not send its share");
  };
  EXPECT_THAT(aggregator_->Finish(*store_, failing),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("share")));
  UnmaskingInput short_list = Unmasking(sites, graph);
  short_list.survivors.pop_back();
  EXPECT_THAT(aggregator_->Finish(*store_, short_list),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("4 survivors")));
  // The failed attempts left the sum intact.
  ASSERT_OK_AND_ASSIGN(TensorBundle result, FinishAndRead(Unmasking(sites, graph)));
  ExpectWithinBound(result, Reference(Pointers(sites)), 5, 3.0);
  // The round is over.
  EXPECT_THAT(aggregator_->Finish(*store_, Unmasking(sites, graph)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
}

TEST_F(SecAggAggregatorTest, BeginRefusesWhatItCannotAggregate) {
  EXPECT_THAT(SecAggAggregator::Create({0, 10}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("clip")));
  const std::vector<TensorSpec> mixed = {Float32("w", {2}),
                                         TensorSpec{"steps", DType::kFloat64, {1}}};
  EXPECT_THAT(aggregator_->Begin(1, mixed, global_path_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'steps'"), HasSubstr("float64"))));
  EXPECT_THAT(aggregator_->Begin(1, {Float32("w", {2})}, global_path_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("global model")));
  EXPECT_THAT(aggregator_->Begin(1, specs_, globals_.Join("missing")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  // A failed Begin leaves no round to accept into.
  ASSERT_OK_AND_ASSIGN(std::string path, Upload(MakeSites(1, 60), {{}}, 0));
  EXPECT_THAT(AcceptFile("hospital-0", 1, path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without a round")));
}

TEST_F(SecAggAggregatorTest, AcceptRefusesBadUpdatesWeightsAndDuplicates) {
  const std::vector<SimSite> sites = MakeSites(2, 70);
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(2, 1, Seed(8)));
  ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
  EXPECT_THAT(aggregator_->Finish(*store_, Unmasking(sites, graph)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no update")));
  ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, graph, 0));

  // An unmasked float32 model is not a masked update.
  ASSERT_OK_AND_ASSIGN(std::string plain,
                       WriteBundleFile(updates_.path(), FloatBundle(specs_, sites[0].local)));
  EXPECT_THAT(
      AcceptFile("hospital-0", 0.5, plain),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("'conv.weight'"), HasSubstr("dtype float32, expected int32"))));
  std::vector<TensorSpec> reshaped = *MaskedUpdateSpecs(specs_);
  reshaped[2].shape = {300, 2};
  TensorBundle wrong_shape;
  wrong_shape.specs = reshaped;
  wrong_shape.body.resize(TotalBytes(reshaped));
  ASSERT_OK_AND_ASSIGN(std::string reshaped_path, WriteBundleFile(updates_.path(), wrong_shape));
  EXPECT_THAT(AcceptFile("hospital-0", 0.5, reshaped_path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'fc.bias'"), HasSubstr("shape [300,2], expected [600]"))));

  for (double weight : {0.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN(),
                        std::numeric_limits<double>::infinity()}) {
    EXPECT_THAT(AcceptFile("hospital-0", weight, path),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight")))
        << weight;
  }
  ASSERT_THAT(AcceptFile("hospital-0", sites[0].weight, path), IsOk());
  EXPECT_THAT(AcceptFile("hospital-0", sites[0].weight, path),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'hospital-0'")));
  EXPECT_THAT(aggregator_->accepted_sites(), ElementsAre("hospital-0"));
  EXPECT_DOUBLE_EQ(aggregator_->total_weight(), sites[0].weight);
}

TEST_F(SecAggAggregatorTest, AcceptRefusesMoreSitesThanTheCodecAllows) {
  ASSERT_OK_AND_ASSIGN(aggregator_, SecAggAggregator::Create({kClip, 2}));
  ASSERT_OK_AND_ASSIGN(codec_, secagg::FixedPointCodec::Create({kClip, 2}));
  const std::vector<SimSite> sites = MakeSites(3, 80);
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(3, 2, Seed(9)));
  ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, graph, i));
    ASSERT_THAT(AcceptFile(sites[i].name, sites[i].weight, path), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, graph, 2));
  EXPECT_THAT(AcceptFile(sites[2].name, sites[2].weight, path),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("at most 2 sites")));
}

TEST_F(SecAggAggregatorTest, AReadErrorBreaksTheRound) {
  const std::vector<SimSite> sites = MakeSites(1, 90);
  ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string path, Upload(sites, {{}}, 0));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BundleFileReader> reader, BundleFileReader::Open(path));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  EXPECT_THAT(aggregator_->Accept(sites[0].name, sites[0].weight, *reader),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("short read")));
  EXPECT_THAT(aggregator_->Finish(*store_, Unmasking(sites, {{}})),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("unusable")));
  // A new Begin starts over.
  ASSERT_THAT(aggregator_->Begin(kRound, specs_, global_path_), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string again, Upload(sites, {{}}, 0));
  ASSERT_THAT(AcceptFile(sites[0].name, sites[0].weight, again), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle result, FinishAndRead(Unmasking(sites, {{}})));
  ExpectWithinBound(result, Reference(Pointers(sites)), 1, sites[0].weight);
}

TEST_F(SecAggAggregatorTest, MaskUpdateRefusesWhatASiteMustNotSend) {
  const std::vector<SimSite> sites = MakeSites(2, 100);
  auto seed = [&](int /*peer*/) {
    return PairSeed(sites[0].mask_key, sites[1].mask_key.public_key);
  };
  const TensorBundle local = FloatBundle(specs_, sites[0].local);

  std::vector<float> diverged = sites[0].local;
  diverged[216 + 7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(MaskUpdateForSecAgg(Global(), FloatBundle(specs_, diverged), 0.5, codec_, 0, {1},
                                  seed, sites[0].self_seed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("non-finite"), HasSubstr("'fc.weight' element 7"))));
  for (double weight : {0.0, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THAT(
        MaskUpdateForSecAgg(Global(), local, weight, codec_, 0, {1}, seed, sites[0].self_seed),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weight")));
  }
  TensorBundle renamed = local;
  renamed.specs[0].name = "conv.w";
  EXPECT_THAT(MaskUpdateForSecAgg(Global(), renamed, 0.5, codec_, 0, {1}, seed, sites[0].self_seed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("named 'conv.w'")));
  EXPECT_THAT(
      MaskUpdateForSecAgg(Global(), local, 0.5, codec_, 0, {0, 1}, seed, sites[0].self_seed),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("itself")));
  EXPECT_THAT(MaskUpdateForSecAgg(Global(), local, 0.5, codec_, 0, {1}, seed, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("self-mask seed")));
  TensorBundle wide = FloatBundle({TensorSpec{"w", DType::kFloat64, {1}}}, {0, 0});
  EXPECT_THAT(MaskUpdateForSecAgg(wide, wide, 0.5, codec_, 0, {1}, seed, sites[0].self_seed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("float64")));

  ASSERT_OK_AND_ASSIGN(TensorBundle masked, MaskUpdateForSecAgg(Global(), local, 0.5, codec_, 0,
                                                                {1}, seed, sites[0].self_seed));
  EXPECT_EQ(masked.specs, *MaskedUpdateSpecs(specs_));
  EXPECT_EQ(masked.specs[1].dtype, DType::kInt32);
  EXPECT_EQ(masked.body.size(), local.body.size());
}

// Site-level DP under masking: each site clips its change to S and masks it
// with weight 1; the coordinator divides the sum by the expected sites. With
// or without one site, the two models differ by that site's clipped change
// over n: at most S / n, however far the site trained, up to the codec.
TEST_F(SecAggAggregatorTest, SiteLevelDpBoundsEachSitesContributionUnderMasking) {
  constexpr double kSiteClip = 0.5;
  constexpr int kSites = 5;
  std::vector<SimSite> sites = MakeSites(kSites, 40);
  for (SimSite& site : sites) {
    TensorBundle local = FloatBundle(specs_, site.local);
    ASSERT_OK_AND_ASSIGN(privacy::ClippedSiteUpdate clipped,
                         privacy::ClipSiteUpdate(Global(), kSiteClip, 0, nullptr, &local));
    ASSERT_GT(clipped.norm, 50 * kSiteClip) << "trained far beyond the clip";
    site.local = FloatsOf(local);
    site.weight = 1;
  }
  SiteDpSum sum;
  sum.denominator = kSites;
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(kSites, 4, Seed(7)));
  CollectAll(sites, graph);
  aggregator_->UseSiteDp(sum);
  ASSERT_OK_AND_ASSIGN(TensorBundle with_all, FinishAndRead(Unmasking(sites, graph)));
  CollectAll(sites, graph, /*skip=*/2);
  aggregator_->UseSiteDp(sum);
  ASSERT_OK_AND_ASSIGN(TensorBundle without_one, FinishAndRead(Unmasking(sites, graph, 2)));
  const std::vector<float> a = FloatsOf(with_all), b = FloatsOf(without_one);
  double squared = 0;
  for (size_t i = 0; i < a.size(); ++i) squared += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
  // Per element: the codec's error on each sum over n, plus rounding to float32.
  const double per_element = 2 * codec_.ErrorBound(kSites) / kSites + 2 * 1.2e-7;
  const double slack = std::sqrt(static_cast<double>(a.size())) * per_element;
  EXPECT_LE(std::sqrt(squared), kSiteClip / kSites + slack);
  EXPECT_GE(std::sqrt(squared), kSiteClip / kSites - slack) << "the site's full clipped change";
}

// Distributed noise: each of n sites adds N(0, (sigma S)^2 / n) before
// masking; the unmasked sum carries N(0, (sigma S)^2), which no party saw
// without it.
TEST_F(SecAggAggregatorTest, SitesNoiseSharesSumToSigmaTimesClip) {
  constexpr int kSites = 5;
  const v1::DpSettings dp =
      CompletedSiteDp(/*clip=*/0.02, /*noise_multiplier=*/1.0, v1::DP_NOISE_DISTRIBUTED, kSites);
  ASSERT_LE(privacy::MinSecAggClipForSiteNoise(dp), kClip) << "no share is clamped";
  std::unique_ptr<privacy::NoiseSource> noise = privacy::MakeSeededNoiseSource(17);
  std::vector<SimSite> sites = MakeSites(kSites, 50);
  for (SimSite& site : sites) {
    TensorBundle local = Global();  // no change: what remains is the noise
    ASSERT_THAT(privacy::ClipSiteUpdate(Global(), dp.clip_norm(), privacy::SiteNoiseShareStddev(dp),
                                        noise.get(), &local),
                IsOk());
    site.local = FloatsOf(local);
    site.weight = 1;
  }
  ASSERT_OK_AND_ASSIGN(auto graph, secagg::NeighbourGraph(kSites, 4, Seed(8)));
  CollectAll(sites, graph);
  aggregator_->UseSiteDp(SiteDpSum::ForRound(dp, dp.clip_norm(), nullptr));
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(Unmasking(sites, graph)));
  const std::vector<float> values = FloatsOf(model);
  double sum = 0, squares = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double on_sum = (double{values[i]} - global_[i]) * kSites;
    sum += on_sum;
    squares += on_sum * on_sum;
  }
  const double n = static_cast<double>(values.size());
  const double mean = sum / n;
  const double stddev = std::sqrt(squares / n - mean * mean);
  EXPECT_NEAR(mean, 0, 0.02 * 0.01);
  EXPECT_NEAR(stddev, 0.02, 0.02 * 0.05);
}

}  // namespace
}  // namespace fedmi
