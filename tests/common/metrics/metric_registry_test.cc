#include "common/metrics/metric_registry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "tests/common/metrics/exposition_checker.h"
#include "tests/common/metrics/sample_registry.h"
#include "tests/test_util.h"

namespace fedmi::metrics {
namespace {

using ::fedmi::metrics::testing::CheckExposition;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One family of each type, registered and filled out of order.
void FillMixedRegistry(MetricRegistry& registry) {
  CounterFamily* refused =
      registry
          .AddCounter("fedmi_updates_refused_total", "Updates the coordinator refused, by reason.",
                      {"reason"})
          .value();
  GaugeFamily* sites = registry.AddGauge("fedmi_sites_connected", "Sites with a session.").value();
  HistogramFamily* duration = registry
                                  .AddHistogram("fedmi_round_duration_seconds",
                                                "Wall time of a round.", {1, 2.5, 10}, {"strategy"})
                                  .value();
  GaugeFamily* round =
      registry.AddGauge("fedmi_run_round", "Current round of a run.", {"run", "phase"}).value();
  GaugeFamily* auc =
      registry.AddGauge("fedmi_run_validation_auc", "Latest validation AUC.", {"run"}).value();
  // Labelled and never set: not rendered.
  ASSERT_THAT(registry.AddCounter("fedmi_sent_bytes_total", "Bytes sent.", {"site"}), IsOk());

  ASSERT_THAT(refused->Add({"norm_bound"}, 2), IsOk());
  ASSERT_THAT(refused->Increment({"late"}), IsOk());
  ASSERT_THAT(sites->Set({}, 3), IsOk());
  // 0.5 and 1 fall in le=1 (bounds are inclusive), 2.5 in le=2.5, 3 in
  // le=10, 12 only in +Inf; cumulative 2, 3, 4, 5; sum 19.
  for (double seconds : {3.0, 0.5, 12.0, 1.0, 2.5}) {
    ASSERT_THAT(duration->Observe({"fedavg"}, seconds), IsOk());
  }
  ASSERT_THAT(duration->Observe({"krum"}, 7), IsOk());
  ASSERT_THAT(round->Set({"run-2", "training"}, 4), IsOk());
  ASSERT_THAT(round->Set({"run-10", "evaluating"}, 12), IsOk());
  ASSERT_THAT(auc->Set({"run-2"}, 0.8125), IsOk());
}

constexpr char kMixedExposition[] =
    "# HELP fedmi_round_duration_seconds Wall time of a round.\n"
    "# TYPE fedmi_round_duration_seconds histogram\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"fedavg\",le=\"1\"} 2\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"fedavg\",le=\"2.5\"} 3\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"fedavg\",le=\"10\"} 4\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"fedavg\",le=\"+Inf\"} 5\n"
    "fedmi_round_duration_seconds_sum{strategy=\"fedavg\"} 19\n"
    "fedmi_round_duration_seconds_count{strategy=\"fedavg\"} 5\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"krum\",le=\"1\"} 0\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"krum\",le=\"2.5\"} 0\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"krum\",le=\"10\"} 1\n"
    "fedmi_round_duration_seconds_bucket{strategy=\"krum\",le=\"+Inf\"} 1\n"
    "fedmi_round_duration_seconds_sum{strategy=\"krum\"} 7\n"
    "fedmi_round_duration_seconds_count{strategy=\"krum\"} 1\n"
    "# HELP fedmi_run_round Current round of a run.\n"
    "# TYPE fedmi_run_round gauge\n"
    "fedmi_run_round{run=\"run-10\",phase=\"evaluating\"} 12\n"
    "fedmi_run_round{run=\"run-2\",phase=\"training\"} 4\n"
    "# HELP fedmi_run_validation_auc Latest validation AUC.\n"
    "# TYPE fedmi_run_validation_auc gauge\n"
    "fedmi_run_validation_auc{run=\"run-2\"} 0.8125\n"
    "# HELP fedmi_sites_connected Sites with a session.\n"
    "# TYPE fedmi_sites_connected gauge\n"
    "fedmi_sites_connected 3\n"
    "# HELP fedmi_updates_refused_total Updates the coordinator refused, by reason.\n"
    "# TYPE fedmi_updates_refused_total counter\n"
    "fedmi_updates_refused_total{reason=\"late\"} 1\n"
    "fedmi_updates_refused_total{reason=\"norm_bound\"} 2\n";

TEST(MetricRegistryTest, RendersEachTypeByteExactly) {
  MetricRegistry registry;
  FillMixedRegistry(registry);
  const std::string text = registry.RenderText();
  EXPECT_EQ(text, kMixedExposition);
  EXPECT_THAT(CheckExposition(text), IsOk());
}

TEST(MetricRegistryTest, RendersTheSameTextWhateverTheOrderOfUpdates) {
  MetricRegistry forward;
  FillMixedRegistry(forward);
  // The same content, families and samples created in the reverse order.
  MetricRegistry backward;
  ASSERT_THAT(backward.AddCounter("fedmi_sent_bytes_total", "Bytes sent.", {"site"}), IsOk());
  GaugeFamily* auc =
      backward.AddGauge("fedmi_run_validation_auc", "Latest validation AUC.", {"run"}).value();
  GaugeFamily* round =
      backward.AddGauge("fedmi_run_round", "Current round of a run.", {"run", "phase"}).value();
  HistogramFamily* duration = backward
                                  .AddHistogram("fedmi_round_duration_seconds",
                                                "Wall time of a round.", {1, 2.5, 10}, {"strategy"})
                                  .value();
  GaugeFamily* sites = backward.AddGauge("fedmi_sites_connected", "Sites with a session.").value();
  CounterFamily* refused =
      backward
          .AddCounter("fedmi_updates_refused_total", "Updates the coordinator refused, by reason.",
                      {"reason"})
          .value();
  ASSERT_THAT(auc->Set({"run-2"}, 0.8125), IsOk());
  ASSERT_THAT(round->Set({"run-10", "evaluating"}, 12), IsOk());
  ASSERT_THAT(round->Set({"run-2", "training"}, 4), IsOk());
  ASSERT_THAT(duration->Observe({"krum"}, 7), IsOk());
  for (double seconds : {2.5, 1.0, 12.0, 0.5, 3.0}) {
    ASSERT_THAT(duration->Observe({"fedavg"}, seconds), IsOk());
  }
  ASSERT_THAT(sites->Add({}, 3), IsOk());
  ASSERT_THAT(refused->Increment({"late"}), IsOk());
  ASSERT_THAT(refused->Add({"norm_bound"}, 1.5), IsOk());
  ASSERT_THAT(refused->Add({"norm_bound"}, 0.5), IsOk());

  EXPECT_EQ(backward.RenderText(), forward.RenderText());
  EXPECT_EQ(forward.RenderText(), forward.RenderText());
}

TEST(MetricRegistryTest, UnlabelledFamiliesShowZeroFromRegistration) {
  MetricRegistry registry;
  ASSERT_THAT(registry.AddCounter("fedmi_audit_entries_total", "Audit entries."), IsOk());
  ASSERT_THAT(registry.AddHistogram("fedmi_upload_bytes", "Upload sizes.", {1024}), IsOk());
  EXPECT_EQ(registry.RenderText(),
            "# HELP fedmi_audit_entries_total Audit entries.\n"
            "# TYPE fedmi_audit_entries_total counter\n"
            "fedmi_audit_entries_total 0\n"
            "# HELP fedmi_upload_bytes Upload sizes.\n"
            "# TYPE fedmi_upload_bytes histogram\n"
            "fedmi_upload_bytes_bucket{le=\"1024\"} 0\n"
            "fedmi_upload_bytes_bucket{le=\"+Inf\"} 0\n"
            "fedmi_upload_bytes_sum 0\n"
            "fedmi_upload_bytes_count 0\n");
  MetricRegistry empty;
  EXPECT_EQ(empty.RenderText(), "");
}

TEST(MetricRegistryTest, EscapesHelpAndLabelValues) {
  MetricRegistry registry;
  GaugeFamily* gauge =
      registry.AddGauge("fedmi_site_info", "Sites.\nOne line per \\ \"site\".", {"site"}).value();
  ASSERT_THAT(gauge->Set({"st-mary's \"north\"\nwing\\b"}, 1), IsOk());
  const std::string text = registry.RenderText();
  EXPECT_EQ(text,
            "# HELP fedmi_site_info Sites.\\nOne line per \\\\ \"site\".\n"
            "# TYPE fedmi_site_info gauge\n"
            "fedmi_site_info{site=\"st-mary's \\\"north\\\"\\nwing\\\\b\"} 1\n");
  EXPECT_THAT(CheckExposition(text), IsOk());
}

TEST(MetricRegistryTest, HistogramCumulatesBuckets) {
  MetricRegistry registry;
  // A trailing +Inf is the bucket every histogram has: accepted, not doubled.
  HistogramFamily* sizes =
      registry
          .AddHistogram("fedmi_update_bytes", "Update sizes.",
                        {10, 100, 1000, std::numeric_limits<double>::infinity()})
          .value();
  EXPECT_THAT(sizes->upper_bounds(), ElementsAre(10, 100, 1000));
  // Per bucket: le=10: {-5, 10} = 2; le=100: {10.5, 99, 100} = 3;
  // le=1000: {} = 0; +Inf: {1000.5, 5e6} = 2.
  for (double bytes : {100.0, -5.0, 5e6, 10.0, 99.0, 1000.5, 10.5}) {
    ASSERT_THAT(sizes->Observe({}, bytes), IsOk());
  }
  const HistogramSample sample = sizes->Sample().value();
  EXPECT_THAT(sample.cumulative_counts, ElementsAre(2, 5, 5, 7));
  EXPECT_EQ(sample.count, 7u);
  EXPECT_EQ(sample.sum, 100 - 5 + 5e6 + 10 + 99 + 1000.5 + 10.5);
  const std::string text = registry.RenderText();
  EXPECT_EQ(text,
            "# HELP fedmi_update_bytes Update sizes.\n"
            "# TYPE fedmi_update_bytes histogram\n"
            "fedmi_update_bytes_bucket{le=\"10\"} 2\n"
            "fedmi_update_bytes_bucket{le=\"100\"} 5\n"
            "fedmi_update_bytes_bucket{le=\"1000\"} 5\n"
            "fedmi_update_bytes_bucket{le=\"+Inf\"} 7\n"
            "fedmi_update_bytes_sum 5001215\n"
            "fedmi_update_bytes_count 7\n");
  EXPECT_THAT(CheckExposition(text), IsOk());
}

// A histogram fed from a log: the refresh runs before any family renders,
// so the render shows what the log held when it began, not one scrape late.
TEST(MetricRegistryTest, RefreshRunsBeforeEveryRender) {
  MetricRegistry registry;
  HistogramFamily* durations =
      registry.AddHistogram("fedmi_round_duration_seconds", "Round durations.", {60}).value();
  std::vector<double> log = {30};
  size_t read = 0;
  int refreshes = 0;
  registry.AddRefresh([&] {
    ++refreshes;
    for (; read < log.size(); ++read) durations->Observe({}, log[read]).IgnoreError();
  });
  EXPECT_EQ(refreshes, 0);
  EXPECT_THAT(registry.RenderText(), HasSubstr("fedmi_round_duration_seconds_count 1\n"));
  log.push_back(90);
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("fedmi_round_duration_seconds_bucket{le=\"60\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fedmi_round_duration_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("fedmi_round_duration_seconds_sum 120\n"));
  EXPECT_EQ(refreshes, 2);
}

TEST(MetricRegistryTest, RefusesBadBucketLayouts) {
  MetricRegistry registry;
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THAT(registry.AddHistogram("fedmi_a_seconds", "A.", {1, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strictly increase")));
  EXPECT_THAT(registry.AddHistogram("fedmi_b_seconds", "B.", {2, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1 follows 2")));
  EXPECT_THAT(registry.AddHistogram("fedmi_c_seconds", "C.", {1, std::nan(""), 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NaN is not finite")));
  EXPECT_THAT(registry.AddHistogram("fedmi_d_seconds", "D.", {-inf, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-Inf is not finite")));
  EXPECT_THAT(registry.AddHistogram("fedmi_e_seconds", "E.", {inf, inf}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("+Inf is not finite")));
  EXPECT_EQ(registry.RenderText(), "");
  HistogramFamily* only_inf = registry.AddHistogram("fedmi_f_seconds", "F.", {}).value();
  ASSERT_THAT(only_inf->Observe({}, 3), IsOk());
  EXPECT_THAT(only_inf->Observe({}, std::nan("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("finite values only")));
  EXPECT_THAT(only_inf->Observe({}, inf),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not +Inf")));
  EXPECT_THAT(only_inf->Sample().value().cumulative_counts, ElementsAre(1));
  EXPECT_EQ(only_inf->Sample().value().sum, 3);
}

TEST(MetricRegistryTest, RefusesInvalidDeclarations) {
  MetricRegistry registry;
  EXPECT_THAT(registry.AddCounter("fedmi_updates", "Updates."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"_total\"")));
  EXPECT_THAT(registry.AddGauge("fedmi-sites", "Sites."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'-' at position 5")));
  EXPECT_THAT(registry.AddGauge("fedmi_sites", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no help text")));
  EXPECT_THAT(registry.AddGauge("fedmi_sites", "Sites \xC3."),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("help text is not UTF-8")));
  EXPECT_THAT(registry.AddGauge("fedmi_sites", "Sites.", {"site", "__kind"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"__kind\"")));
  EXPECT_THAT(registry.AddHistogram("fedmi_round_seconds", "Rounds.", {1}, {"le"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserved")));
  EXPECT_THAT(registry.AddGauge("fedmi_sites", "Sites.", {"site", "site"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names label site twice")));
  EXPECT_THAT(registry.AddGaugeCollector("fedmi_Sites", "Sites.", {}, [](MetricSnapshot&) {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("upper-case")));
  ASSERT_THAT(registry.AddGauge("fedmi_sites", "Sites."), IsOk());
  EXPECT_THAT(registry.AddGauge("fedmi_sites", "Sites again."),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("fedmi_sites")));
  EXPECT_THAT(registry.AddCounterCollector("fedmi_sites", "Sites.", {}, [](MetricSnapshot&) {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"_total\"")));
}

TEST(MetricRegistryTest, CounterRefusesToGoDown) {
  MetricRegistry registry;
  CounterFamily* counter =
      registry.AddCounter("fedmi_updates_total", "Updates.", {"outcome"}).value();
  ASSERT_THAT(counter->Add({"accepted"}, 5), IsOk());
  EXPECT_THAT(counter->Add({"accepted"}, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot add -1")));
  EXPECT_THAT(counter->Add({"accepted"}, std::nan("")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot add NaN")));
  EXPECT_THAT(counter->Add({"accepted"}, std::numeric_limits<double>::infinity()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot add +Inf")));
  EXPECT_EQ(counter->Value({"accepted"}).value(), 5);
  // A refused first update creates no sample.
  EXPECT_THAT(counter->Add({"refused"}, -2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only goes up")));
  EXPECT_THAT(counter->Value({"refused"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("fedmi_updates_total")));
}

TEST(MetricRegistryTest, RefusesLabelValuesThatDoNotFit) {
  MetricRegistry registry;
  GaugeFamily* gauge = registry.AddGauge("fedmi_run_round", "Round.", {"run", "phase"}).value();
  EXPECT_THAT(gauge->Set({"run-1"}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("2 label names but was given 1 label values")));
  EXPECT_THAT(gauge->Set({"run-1", "training", "x"}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given 3")));
  EXPECT_THAT(gauge->Set({"run-1", "train\xFFing"}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label phase is not UTF-8")));
  HistogramFamily* histogram =
      registry.AddHistogram("fedmi_round_duration_seconds", "Rounds.", {1}, {"run"}).value();
  EXPECT_THAT(histogram->Observe({}, 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given 0")));
  EXPECT_EQ(registry.RenderText(), "");
}

TEST(MetricRegistryTest, ConcurrentUpdatesSumExactly) {
  MetricRegistry registry;
  CounterFamily* counter = registry.AddCounter("fedmi_events_total", "Events.", {"kind"}).value();
  GaugeFamily* gauge = registry.AddGauge("fedmi_in_flight", "In flight.").value();
  HistogramFamily* histogram =
      registry.AddHistogram("fedmi_wait_seconds", "Waits.", {0.5, 1.5}).value();
  constexpr int kThreads = 8;
  constexpr int kUpdates = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUpdates; ++i) {
        EXPECT_THAT(counter->Increment({"a"}), IsOk());
        EXPECT_THAT(counter->Add({t % 2 == 0 ? "even" : "odd"}, 0.5), IsOk());
        EXPECT_THAT(gauge->Add({}, i % 2 == 0 ? 1 : -1), IsOk());
        EXPECT_THAT(histogram->Observe({}, (t + i) % 2 == 0 ? 1.0 : 2.0), IsOk());
      }
    });
  }
  // Renders while the updates run must stay well formed.
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) EXPECT_THAT(CheckExposition(registry.RenderText()), IsOk());
  });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counter->Value({"a"}).value(), kThreads * kUpdates);
  EXPECT_EQ(counter->Value({"even"}).value(), kThreads / 2 * kUpdates * 0.5);
  EXPECT_EQ(counter->Value({"odd"}).value(), kThreads / 2 * kUpdates * 0.5);
  EXPECT_EQ(gauge->Value().value(), 0);
  const HistogramSample waits = histogram->Sample().value();
  // Half the observations are 1.0 (le=1.5), half 2.0 (+Inf only).
  EXPECT_THAT(waits.cumulative_counts,
              ElementsAre(0, kThreads * kUpdates / 2, kThreads * kUpdates));
  EXPECT_EQ(waits.sum, kThreads * kUpdates / 2 * 3.0);
}

TEST(MetricRegistryTest, CollectorsReportTheirOwnersStateAtEachRender) {
  // Stands for the coordinator's site registry.
  absl::Mutex mu;
  std::map<std::string, bool> connected = {{"site-b", true}, {"site-a", false}};
  MetricRegistry registry;
  ASSERT_THAT(
      registry.AddGaugeCollector("fedmi_site_connected", "1 while a site has a session.", {"site"},
                                 [&](MetricSnapshot& snapshot) {
                                   absl::MutexLock lock(&mu);
                                   for (const auto& [site, up] : connected) {
                                     EXPECT_THAT(snapshot.Set({site}, up ? 1 : 0), IsOk());
                                   }
                                 }),
      IsOk());
  EXPECT_EQ(registry.RenderText(),
            "# HELP fedmi_site_connected 1 while a site has a session.\n"
            "# TYPE fedmi_site_connected gauge\n"
            "fedmi_site_connected{site=\"site-a\"} 0\n"
            "fedmi_site_connected{site=\"site-b\"} 1\n");
  {
    absl::MutexLock lock(&mu);
    connected.erase("site-b");
  }
  EXPECT_EQ(registry.RenderText(),
            "# HELP fedmi_site_connected 1 while a site has a session.\n"
            "# TYPE fedmi_site_connected gauge\n"
            "fedmi_site_connected{site=\"site-a\"} 0\n");
  {
    absl::MutexLock lock(&mu);
    connected.clear();
  }
  EXPECT_EQ(registry.RenderText(), "");
}

TEST(MetricRegistryTest, CollectorSetsAreChecked) {
  MetricRegistry registry;
  ASSERT_THAT(registry.AddCounterCollector(
                  "fedmi_audit_entries_total", "Audit entries.", {"kind"},
                  [](MetricSnapshot& snapshot) {
                    EXPECT_THAT(snapshot.Set({}, 1),
                                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("given 0")));
                    EXPECT_THAT(snapshot.Set({"run"}, -3),
                                StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("counter and cannot be -3")));
                    EXPECT_THAT(snapshot.Set({"run"}, 9), IsOk());
                    EXPECT_THAT(snapshot.Set({"run"}, 10), IsOk());  // replaces 9
                  }),
              IsOk());
  EXPECT_EQ(registry.RenderText(),
            "# HELP fedmi_audit_entries_total Audit entries.\n"
            "# TYPE fedmi_audit_entries_total counter\n"
            "fedmi_audit_entries_total{kind=\"run\"} 10\n");
}

TEST(MetricRegistryTest, SampleRegistryPassesTheStrictChecker) {
  MetricRegistry registry;
  ASSERT_THAT(testing::FillSampleRegistry(registry), IsOk());
  const std::string text = registry.RenderText();
  EXPECT_THAT(CheckExposition(text), IsOk()) << text;
  EXPECT_THAT(text, HasSubstr("fedmi_received_bytes_total{site=\"general\"} "
                              "123456789012345680\n"));
  EXPECT_THAT(text, HasSubstr("fedmi_received_bytes_total{site=\"st-mary's \\\"north\\\"\\\\wing\"}"
                              " 1500000000\n"));
  EXPECT_THAT(text, HasSubstr("fedmi_run_validation_auc{run=\"run-8\"} NaN\n"));
  EXPECT_THAT(text, HasSubstr("# HELP fedmi_audit_entries_total Entries in the audit log.\\n"
                              "Includes \\\\ sealed heads.\n"));
  EXPECT_THAT(text, HasSubstr("fedmi_round_duration_seconds_bucket{le=\"300\"} 4\n"));
}

}  // namespace
}  // namespace fedmi::metrics
