#include "coordinator/krum_aggregator.h"

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/aggregator.h"
#include "tests/coordinator/spooled_aggregator_test_util.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::SizeIs;

using Ranked = KrumAggregator::RankedUpdate;

// "site (score, selected)" for each ranked update, best first.
std::vector<std::string> Ranking(const KrumAggregator& krum) {
  std::vector<std::string> lines;
  for (const Ranked& ranked : krum.last_ranking()) {
    lines.push_back(absl::StrCat(ranked.site, " (", ranked.score, ranked.selected ? ", in)" : ")"));
  }
  return lines;
}

// Five sites in the plane, f = 1, so each is scored over its n - f - 2 = 2
// nearest others. Squared distances:
//        b   c   d    e
//   a    1   4   8  162
//   b        5   5  145
//   c            4  130
//   d                98
// Scores: a 1+4 = 5, b 1+5 = 6, c 4+4 = 8, d 4+5 = 9, e 98+130 = 228.
const std::vector<std::string> kPlaneSites = {"a", "b", "c", "d", "e"};
const std::vector<std::vector<float>> kPlane = {{1, -3}, {2, -3}, {1, -1}, {3, -1}, {10, 6}};

// Four honest sites that roughly agree, for the outlier tests (as in
// trimmed_mean_aggregator_test.cc).
const std::vector<std::vector<float>> kHonest = {
    {1.0f, -2.0f, 0.5f}, {1.5f, -1.5f, 0.25f}, {0.5f, -2.5f, 0.75f}, {1.25f, -2.25f, 0.5f}};

class KrumAggregatorTest : public SpoolingTest {
 protected:
  // Krum ("krum", selected 1) or Multi-Krum.
  std::unique_ptr<KrumAggregator> Make(int32_t byzantine_sites, int32_t selected,
                                       size_t parameters_per_chunk = size_t{64} * 1024) const {
    KrumOptions options;
    options.byzantine_sites = byzantine_sites;
    options.selected = selected;
    options.spool = Spool(parameters_per_chunk);
    return std::make_unique<KrumAggregator>(selected == 1 ? "krum" : "multikrum", options);
  }

  // Begins round 1 of `krum` and accepts updates[i] from sites[i] in `order`,
  // with example counts that an example-weighted mean would follow.
  void AcceptAll(KrumAggregator& krum, const std::vector<std::string>& sites,
                 const std::vector<std::vector<float>>& updates, const std::vector<int>& order) {
    const std::vector<TensorSpec> specs = {
        Float32("w", {static_cast<int64_t>(updates.front().size())})};
    ASSERT_THAT(krum.Begin(1, specs), IsOk());
    for (int i : order) {
      ASSERT_THAT(AcceptInto(krum, sites[i], 1 + 1000 * i, specs, updates[i]), IsOk());
    }
  }
};

TEST_F(KrumAggregatorTest, KrumReturnsTheBestScoredUpdateByHand) {
  // One chunk, and a chunk of one parameter: the distances add up across chunks.
  for (size_t chunk : {size_t{64} * 1024, size_t{1}}) {
    std::unique_ptr<KrumAggregator> krum = Make(1, 1, chunk);
    AcceptAll(*krum, kPlaneSites, kPlane, {4, 3, 2, 1, 0});
    ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
    EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, -3.0f)) << "chunk " << chunk;
    EXPECT_THAT(Ranking(*krum), ElementsAre("a (5, in)", "b (6)", "c (8)", "d (9)", "e (228)"));
  }
}

TEST_F(KrumAggregatorTest, MultiKrumAveragesTheBestScoredUnweighted) {
  // m = n - f = 4 by default: a, b, c, d -> ((1+2+1+3)/4, (-3-3-1-1)/4).
  std::unique_ptr<KrumAggregator> multi = Make(1, 0);
  AcceptAll(*multi, kPlaneSites, kPlane, {0, 1, 2, 3, 4});
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*multi));
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.75f, -2.0f));
  EXPECT_THAT(Ranking(*multi),
              ElementsAre("a (5, in)", "b (6, in)", "c (8, in)", "d (9, in)", "e (228)"));

  // m = 2: a and b.
  std::unique_ptr<KrumAggregator> two = Make(1, 2);
  AcceptAll(*two, kPlaneSites, kPlane, {2, 4, 0, 3, 1});
  ASSERT_OK_AND_ASSIGN(TensorBundle pair, FinishAndRead(*two));
  EXPECT_THAT(FloatsOf(pair), ElementsAre(1.5f, -3.0f));
}

TEST_F(KrumAggregatorTest, TiedScoresGoToTheFirstSiteNameWhateverTheArrivalOrder) {
  // f = 0, n = 3: one nearest neighbour each. On a line: site-b at 0,
  // site-a at 1, site-c at 3. Squared distances: a-b 1, a-c 4, b-c 9.
  // Scores: site-a 1, site-b 1 (a tie), site-c 4.
  const std::vector<std::string> sites = {"site-b", "site-a", "site-c"};
  const std::vector<std::vector<float>> updates = {{0}, {1}, {3}};
  for (const std::vector<int>& order :
       {std::vector<int>{0, 1, 2}, std::vector<int>{2, 1, 0}, std::vector<int>{0, 2, 1}}) {
    std::unique_ptr<KrumAggregator> krum = Make(0, 1);
    AcceptAll(*krum, sites, updates, order);
    ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
    EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f)) << "site-a wins the tie";
    EXPECT_THAT(Ranking(*krum), ElementsAre("site-a (1, in)", "site-b (1)", "site-c (4)"));

    std::unique_ptr<KrumAggregator> multi = Make(0, 2);
    AcceptAll(*multi, sites, updates, order);
    ASSERT_OK_AND_ASSIGN(TensorBundle mean, FinishAndRead(*multi));
    EXPECT_THAT(FloatsOf(mean), ElementsAre(0.5f));
  }
}

TEST_F(KrumAggregatorTest, ScaledOutlierIsNeverSelected) {
  // Squared distances among the honest sites: h0-h1 0.5625, h0-h2 0.5625,
  // h0-h3 0.125, h1-h2 2.25, h1-h3 0.6875, h2-h3 0.6875. The outlier
  // (10, -20, 5) is 425.25, 437.0625, 414.5625 and 411.875 from h0..h3.
  // Scores over the 2 nearest: h0 0.125+0.5625 = 0.6875, h3 0.125+0.6875 =
  // 0.8125, h1 and h2 0.5625+0.6875 = 1.25 (a tie: h1 first by name), the
  // outlier 411.875+414.5625 = 826.4375.
  std::vector<std::vector<float>> updates = kHonest;
  updates.push_back({10.0f, -20.0f, 5.0f});  // h0 scaled x10
  const std::vector<std::string> sites = {"h0", "h1", "h2", "h3", "evil"};
  std::unique_ptr<KrumAggregator> krum = Make(1, 1);
  AcceptAll(*krum, sites, updates, {4, 2, 1, 0, 3});
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, -2.0f, 0.5f)) << "h0's update";
  // StrCat prints 6 significant digits: 826.4375 shows as 826.438.
  EXPECT_THAT(Ranking(*krum), ElementsAre("h0 (0.6875, in)", "h3 (0.8125)", "h1 (1.25)",
                                          "h2 (1.25)", "evil (826.438)"));

  // Multi-Krum's m = n - f = 4 keeps exactly the honest sites:
  // ((1+1.5+0.5+1.25)/4, (-2-1.5-2.5-2.25)/4, (0.5+0.25+0.75+0.5)/4).
  std::unique_ptr<KrumAggregator> multi = Make(1, 0);
  AcceptAll(*multi, sites, updates, {0, 1, 4, 2, 3});
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, FinishAndRead(*multi));
  EXPECT_THAT(FloatsOf(mean), ElementsAre(1.0625f, -2.0625f, 0.5f));
  EXPECT_THAT(multi->last_ranking().back(),
              AllOf(Field(&Ranked::site, "evil"), Field(&Ranked::selected, false)));
}

TEST_F(KrumAggregatorTest, SignFlippedOutlierIsNeverSelected) {
  std::vector<std::vector<float>> updates = kHonest;
  updates.push_back({-1.0f, 2.0f, -0.5f});  // h0 sign-flipped
  const std::vector<std::string> sites = {"h0", "h1", "h2", "h3", "evil"};
  std::unique_ptr<KrumAggregator> krum = Make(1, 1);
  AcceptAll(*krum, sites, updates, {0, 1, 2, 3, 4});
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, -2.0f, 0.5f));
  // The outlier (-1, 2, -0.5) is 21, 19.0625, 24.0625 and 24.125 from h0..h3:
  // it scores 19.0625+21; the honest scores are as above.
  EXPECT_THAT(Ranking(*krum), ElementsAre("h0 (0.6875, in)", "h3 (0.8125)", "h1 (1.25)",
                                          "h2 (1.25)", "evil (40.0625)"));

  std::unique_ptr<KrumAggregator> multi = Make(1, 0);
  AcceptAll(*multi, sites, updates, {4, 3, 2, 1, 0});
  ASSERT_OK_AND_ASSIGN(TensorBundle mean, FinishAndRead(*multi));
  EXPECT_THAT(FloatsOf(mean), ElementsAre(1.0625f, -2.0625f, 0.5f));
}

TEST_F(KrumAggregatorTest, FinishRefusesFewerThanTwoFPlusThreeUpdatesAndCanBeRetried) {
  std::unique_ptr<KrumAggregator> krum = Make(1, 1);
  AcceptAll(*krum, kPlaneSites, kPlane, {0, 1, 2, 3});
  EXPECT_THAT(krum->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("krum round 1"), HasSubstr("4 updates"),
                             HasSubstr("byzantine_sites 1"), HasSubstr("2f + 3 = 5"))));
  // A late fifth update makes the round whole.
  ASSERT_THAT(AcceptInto(*krum, "e", 1, {Float32("w", {2})}, kPlane[4]), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
  EXPECT_THAT(FloatsOf(model), ElementsAre(1.0f, -3.0f));

  std::unique_ptr<KrumAggregator> two_byzantine = Make(2, 0);
  AcceptAll(*two_byzantine, kPlaneSites, kPlane, {0, 1, 2, 3, 4});
  EXPECT_THAT(two_byzantine->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("multikrum"), HasSubstr("2f + 3 = 7"))));
}

TEST_F(KrumAggregatorTest, MultiKrumRefusesToSelectMoreThanNMinusF) {
  std::unique_ptr<KrumAggregator> multi = Make(1, 5);
  AcceptAll(*multi, kPlaneSites, kPlane, {0, 1, 2, 3, 4});
  EXPECT_THAT(multi->Finish(*store_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("select 5 of 5"), HasSubstr("at most n - f = 4"))));
}

TEST_F(KrumAggregatorTest, RefusesNonFiniteValuesByNameAndStaysUsable) {
  std::unique_ptr<KrumAggregator> krum = Make(0, 1);
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  ASSERT_THAT(krum->Begin(1, specs), IsOk());
  ASSERT_THAT(AcceptInto(*krum, "a", 1, specs, {0, 0}), IsOk());
  EXPECT_THAT(AcceptInto(*krum, "diverged", 1, specs, {0, std::nanf("")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("krum"), HasSubstr("'diverged'"), HasSubstr("tensor 'w'"),
                             HasSubstr("element 1"))));
  EXPECT_THAT(AcceptInto(*krum, "exploded", 1, specs, {-INFINITY, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'exploded'")));
  EXPECT_EQ(krum->accepted(), 1);
  ASSERT_THAT(AcceptInto(*krum, "b", 1, specs, {1, 0}), IsOk());
  ASSERT_THAT(AcceptInto(*krum, "c", 1, specs, {5, 0}), IsOk());
  ASSERT_OK_AND_ASSIGN(TensorBundle model, FinishAndRead(*krum));
  // Scores over 1 neighbour: a 1, b 1, c 16: a wins the tie by name.
  EXPECT_THAT(FloatsOf(model), ElementsAre(0.0f, 0.0f));
}

TEST_F(KrumAggregatorTest, BeginRefusesNegativeOptions) {
  EXPECT_THAT(Make(-1, 1)->Begin(1, {Float32("w", {1})}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("krum"), HasSubstr("byzantine_sites must be >= 0"))));
  EXPECT_THAT(Make(1, -2)->Begin(1, {Float32("w", {1})}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("multikrum"), HasSubstr("got -2"))));
  EXPECT_THAT(Entries(spool_.path()), ::testing::IsEmpty());
}

TEST(KrumStrategyTest, MakeAggregatorBuildsKrumAndMultiKrumFromTheOptions) {
  ScratchDir updates, models, spool;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> store, ModelStore::Open(models.path()));
  AggregatorOptions options;
  options.byzantine_sites = 1;
  options.multikrum_selected = 2;
  options.spool.spool_parent = spool.path();
  const std::vector<TensorSpec> specs = {Float32("w", {2})};
  // "krum" selects one whatever multikrum_selected says; "multikrum" takes 2.
  for (const auto& [strategy, expected] :
       {std::pair<std::string, std::vector<float>>{"krum", {1, -3}},
        std::pair<std::string, std::vector<float>>{"multikrum", {1.5f, -3}}}) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Aggregator> aggregator, MakeAggregator(strategy, options));
    ASSERT_NE(dynamic_cast<KrumAggregator*>(aggregator.get()), nullptr);
    ASSERT_THAT(aggregator->Begin(1, specs), IsOk());
    for (size_t i = 0; i < kPlane.size(); ++i) {
      ASSERT_THAT(AcceptUpdate(*aggregator, updates.path(), kPlaneSites[i], 1, specs, kPlane[i]),
                  IsOk());
    }
    ASSERT_OK_AND_ASSIGN(std::string sha, aggregator->Finish(*store));
    ASSERT_OK_AND_ASSIGN(std::string path, store->PathFor(sha));
    ASSERT_OK_AND_ASSIGN(TensorBundle model, ReadBundleFile(path));
    EXPECT_EQ(FloatsOf(model), expected) << strategy;
  }
  options.byzantine_sites = -1;
  EXPECT_THAT(MakeAggregator("krum", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byzantine_sites")));
  EXPECT_THAT(ValidateAggregatorOptions("multikrum", options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byzantine_sites")));
  EXPECT_THAT(ValidateAggregatorOptions("fedavg", options), IsOk());
}

TEST(KrumStrategyTest, MinUpdatesForIsTwoFPlusThreeOrMPlusF) {
  AggregatorOptions options;  // f = 1, m = 0 (n - f)
  EXPECT_EQ(MinUpdatesFor("krum", options), 5);
  EXPECT_EQ(MinUpdatesFor("multikrum", options), 5);
  options.multikrum_selected = 6;
  EXPECT_EQ(MinUpdatesFor("multikrum", options), 7);
  EXPECT_EQ(MinUpdatesFor("krum", options), 5) << "krum always selects one";
  options.byzantine_sites = 0;
  options.multikrum_selected = 0;
  EXPECT_EQ(MinUpdatesFor("krum", options), 3);
  EXPECT_EQ(MinUpdatesFor("fedavg", options), 1);
  EXPECT_EQ(MinUpdatesFor("median", options), 1);
}

}  // namespace
}  // namespace fedmi
