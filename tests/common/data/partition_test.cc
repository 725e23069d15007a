#include "common/data/partition.h"

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// `n` rows with labels cycling through 0 .. classes-1.
std::vector<int64_t> CyclicLabels(int64_t n, int64_t classes) {
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i % classes;
  return labels;
}

// Every row in [0, n) appears in exactly one site, and each site is sorted.
void ExpectExactCover(const std::vector<std::vector<int64_t>>& sites, int64_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& site : sites) {
    EXPECT_TRUE(std::is_sorted(site.begin(), site.end()));
    for (int64_t row : site) {
      ASSERT_GE(row, 0);
      ASSERT_LT(row, n);
      ++seen[row];
    }
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n);
}

class PartitionTest : public ::testing::TestWithParam<PartitionKind> {};

TEST_P(PartitionTest, AssignsEveryRowOnceDeterministically) {
  const std::vector<int64_t> labels = CyclicLabels(1000, 4);
  PartitionOptions options;
  options.kind = GetParam();
  options.sites = 5;
  options.alpha = 0.5;
  options.seed = 42;
  options.min_per_site = 20;

  absl::StatusOr<std::vector<std::vector<int64_t>>> first = PartitionIndices(labels, options);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 5u);
  ExpectExactCover(*first, 1000);
  for (const auto& site : *first) EXPECT_GE(site.size(), 20u);

  absl::StatusOr<std::vector<std::vector<int64_t>>> again = PartitionIndices(labels, options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);

  options.seed = 43;
  absl::StatusOr<std::vector<std::vector<int64_t>>> other = PartitionIndices(labels, options);
  ASSERT_TRUE(other.ok());
  ExpectExactCover(*other, 1000);
  EXPECT_NE(*first, *other);
}

TEST_P(PartitionTest, SingleSiteGetsEverything) {
  PartitionOptions options;
  options.kind = GetParam();
  options.sites = 1;
  absl::StatusOr<std::vector<std::vector<int64_t>>> sites =
      PartitionIndices(CyclicLabels(50, 2), options);
  ASSERT_TRUE(sites.ok()) << sites.status();
  ASSERT_EQ(sites->size(), 1u);
  EXPECT_EQ((*sites)[0].size(), 50u);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, PartitionTest,
                         ::testing::Values(PartitionKind::kIid, PartitionKind::kDirichlet,
                                           PartitionKind::kQuantity),
                         [](const auto& info) {
                           return std::string(PartitionKindName(info.param));
                         });

TEST(IidPartitionTest, DealsEvenly) {
  PartitionOptions options;
  options.sites = 3;
  options.min_per_site = 0;
  absl::StatusOr<std::vector<std::vector<int64_t>>> sites =
      PartitionIndices(CyclicLabels(101, 2), options);
  ASSERT_TRUE(sites.ok());
  EXPECT_EQ((*sites)[0].size(), 34u);
  EXPECT_EQ((*sites)[1].size(), 34u);
  EXPECT_EQ((*sites)[2].size(), 33u);
}

// Share of the site's rows that belong to its most common class.
double MajorityShare(const std::vector<int64_t>& site, const std::vector<int64_t>& labels,
                     int classes) {
  std::vector<int64_t> counts(classes, 0);
  for (int64_t row : site) ++counts[labels[row]];
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / site.size();
}

double MeanMajorityShare(double alpha, const std::vector<int64_t>& labels) {
  PartitionOptions options;
  options.kind = PartitionKind::kDirichlet;
  options.sites = 4;
  options.alpha = alpha;
  options.seed = 1;
  options.min_per_site = 10;
  absl::StatusOr<std::vector<std::vector<int64_t>>> sites = PartitionIndices(labels, options);
  EXPECT_TRUE(sites.ok()) << sites.status();
  if (!sites.ok()) return 0;
  double total = 0;
  for (const auto& site : *sites) total += MajorityShare(site, labels, 4);
  return total / sites->size();
}

TEST(DirichletPartitionTest, SmallAlphaSkewsLabels) {
  const std::vector<int64_t> labels = CyclicLabels(2000, 4);
  // With 4 balanced classes an unskewed site has a majority share near 0.25.
  const double skewed = MeanMajorityShare(0.1, labels);
  const double mild = MeanMajorityShare(100.0, labels);
  EXPECT_GT(skewed, 0.6);
  EXPECT_LT(mild, 0.35);
}

TEST(DirichletPartitionTest, HandlesNonContiguousLabels) {
  std::vector<int64_t> labels;
  for (int i = 0; i < 300; ++i) labels.push_back(i % 3 == 0 ? 7 : 42);
  PartitionOptions options;
  options.kind = PartitionKind::kDirichlet;
  options.sites = 3;
  options.min_per_site = 5;
  absl::StatusOr<std::vector<std::vector<int64_t>>> sites = PartitionIndices(labels, options);
  ASSERT_TRUE(sites.ok()) << sites.status();
  ExpectExactCover(*sites, 300);
}

TEST(QuantityPartitionTest, SmallAlphaSkewsSizes) {
  PartitionOptions options;
  options.kind = PartitionKind::kQuantity;
  options.sites = 4;
  options.alpha = 0.3;
  options.min_per_site = 10;
  options.seed = 3;
  absl::StatusOr<std::vector<std::vector<int64_t>>> sites =
      PartitionIndices(CyclicLabels(2000, 2), options);
  ASSERT_TRUE(sites.ok()) << sites.status();
  size_t smallest = 2000, largest = 0;
  for (const auto& site : *sites) {
    smallest = std::min(smallest, site.size());
    largest = std::max(largest, site.size());
  }
  EXPECT_GE(smallest, 10u);
  EXPECT_GT(largest, 2 * smallest);
}

TEST(PartitionErrorsTest, RejectsImpossibleRequests) {
  const std::vector<int64_t> labels = CyclicLabels(100, 2);
  PartitionOptions options;
  options.sites = 0;
  EXPECT_THAT(PartitionIndices(labels, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 1 site, got 0")));

  options.sites = 11;
  options.min_per_site = 10;
  EXPECT_THAT(
      PartitionIndices(labels, options),
      StatusIs(
          absl::StatusCode::kFailedPrecondition,
          HasSubstr("cannot give each of 11 sites at least 10 rows: there are only 100 rows")));

  options.sites = 2;
  options.kind = PartitionKind::kDirichlet;
  options.alpha = 0;
  EXPECT_THAT(PartitionIndices(labels, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("dirichlet partition needs alpha > 0, got 0")));
  options.kind = PartitionKind::kQuantity;
  options.alpha = -1;
  EXPECT_THAT(PartitionIndices(labels, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("quantity partition needs alpha > 0")));

  options.kind = PartitionKind::kIid;
  options.min_per_site = -1;
  EXPECT_THAT(PartitionIndices(labels, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_per_site must be >= 0")));
}

TEST(PartitionErrorsTest, GivesUpOnHopelessDirichlet) {
  // One class, 10 sites of at least 9 of 100 rows: a tiny alpha puts nearly
  // all rows on one site every time.
  PartitionOptions options;
  options.kind = PartitionKind::kDirichlet;
  options.sites = 10;
  options.alpha = 0.001;
  options.min_per_site = 9;
  EXPECT_THAT(
      PartitionIndices(std::vector<int64_t>(100, 0), options),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in 1000 attempts; raise alpha")));
}

TEST(ParsePartitionKindTest, ParsesNamesAndListsValidOnes) {
  EXPECT_EQ(*ParsePartitionKind("iid"), PartitionKind::kIid);
  EXPECT_EQ(*ParsePartitionKind("dirichlet"), PartitionKind::kDirichlet);
  EXPECT_EQ(*ParsePartitionKind("quantity"), PartitionKind::kQuantity);
  EXPECT_THAT(
      ParsePartitionKind("labeldir"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr(
                   "unknown partition 'labeldir'; valid partitions are iid, dirichlet, quantity")));
}

}  // namespace
}  // namespace fedmi
