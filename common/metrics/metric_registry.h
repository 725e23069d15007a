// The metrics fedmi exposes to Prometheus, independent of any transport:
// the coordinator's and fedmi-client's `/metrics` handlers return
// MetricRegistry::RenderText() with content type kExpositionContentType.
//
// A registry holds metric families. A family has a name, help text, a type
// (counter, gauge or histogram) and label names fixed at registration; its
// samples are keyed by label values, given in the order of the label names.
//  - Counters only go up: they count events since the process started
//    (updates refused, bytes received). Prometheus's rate() copes with the
//    restart that resets them.
//  - Gauges go up and down (sites connected, the current round).
//  - Histograms count observations in buckets with fixed upper bounds given
//    at registration, plus the +Inf bucket that every histogram has, and
//    keep their sum and count (round durations).
//  - Collectors: a gauge or counter family may instead be filled by a
//    callback at every render, from state its owner keeps anyway (sites
//    connected, runs by state), so that nothing is counted twice and a
//    label set that vanished from that state vanishes from /metrics.
//
// Use:
//   MetricRegistry registry;
//   ASSIGN_OR_RETURN(CounterFamily * refused,
//                    registry.AddCounter("fedmi_updates_refused_total",
//                                        "Site updates refused, by reason.", {"reason"}));
//   RETURN_IF_ERROR(registry.AddGaugeCollector(
//       "fedmi_sites_connected", "Sites with an open session.", {},
//       [&sites](MetricSnapshot& snapshot) {
//         snapshot.Set({}, sites.ConnectedCount()).IgnoreError();
//       }));
//   ...
//   refused->Increment({"norm_bound"}).IgnoreError();  // on the hot path
//   http_response.body = registry.RenderText();
// An update fails only for a programming error (label values that do not
// fit the family) or a value the metric cannot take; code whose work must
// not depend on its metrics ignores the status, as above.
//
// Naming (metric_names.h has the enforced rules): names start with
// "fedmi_" ("fedmi_client_" for fedmi-client), quantities are in base units
// named as the last word before "_total" (fedmi_round_duration_seconds,
// fedmi_sent_bytes_total), counters and only counters end in "_total".
// Label values must have few distinct values (site names, states, refusal
// reasons), since each label set is a time series kept forever by
// Prometheus; never a round number or a free-form message.
//
// Thread-safety: every method of the registry and the families may be called
// from any thread. Registration and rendering take the registry's mutex;
// updating a sample takes only its family's mutex, so updates of different
// families do not contend. Collectors are called by RenderText with no
// registry or family mutex held, so they may take their owner's locks; they
// may run on several threads at once when renders overlap.
//
// Ownership: the registry owns its families; the pointers Add* return stay
// valid as long as the registry. Families cannot be removed. Whatever a
// collector captures must outlive the registry's last RenderText.
//
// Failure: registering a refused name, help text, label name or bucket
// layout is InvalidArgument naming the problem, a name already registered
// AlreadyExists; updating with the wrong number of label values, a label
// value that is not UTF-8, a negative or NaN counter increment or a
// non-finite histogram observation is InvalidArgument and changes nothing.
// Nothing here aborts on bad input.
#ifndef FEDMI_COMMON_METRICS_METRIC_REGISTRY_H_
#define FEDMI_COMMON_METRICS_METRIC_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metric_names.h"

namespace fedmi::metrics {

// The Content-Type of RenderText's output.
inline constexpr char kExpositionContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Label values, in the order of their family's label names.
using LabelValues = std::vector<std::string>;

class MetricRegistry;
class MetricSnapshot;

namespace internal {

class CollectorFamily;

// What every family shares: its declaration, the checks of label values and
// how a sample line is written.
class Family {
 public:
  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 protected:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names);
  // InvalidArgument unless `label_values` has one UTF-8 value per label name.
  absl::Status CheckLabelValues(const LabelValues& label_values) const;
  // The `# HELP` and `# TYPE` lines.
  void AppendHeader(std::string& out) const;
  // One line: name + `suffix`, labels (and `le`, when not empty), value.
  void AppendSample(std::string& out, absl::string_view suffix, const LabelValues& label_values,
                    absl::string_view le, absl::string_view value) const;
  // Header and one line per entry of `values`, in their (sorted) order.
  void AppendScalars(std::string& out, const std::map<LabelValues, double>& values) const;

 private:
  friend class fedmi::metrics::MetricRegistry;
  friend class fedmi::metrics::MetricSnapshot;
  // Appends the family's lines, or nothing while it has no sample.
  virtual void AppendText(std::string& out) const = 0;

  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// Counters and gauges: one value per label set.
class ScalarFamily : public Family {
 public:
  // The sample's value; NotFound when it was never set.
  absl::StatusOr<double> Value(const LabelValues& label_values = {}) const;

 protected:
  using Family::Family;
  // Sets the sample of `label_values` to `value`, or adds `value` to it.
  absl::Status Store(const LabelValues& label_values, double value, bool add);

 private:
  void AppendText(std::string& out) const override;

  mutable absl::Mutex mu_;
  std::map<LabelValues, double> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

class CounterFamily final : public internal::ScalarFamily {
 public:
  // Adds `amount` (finite, >= 0) to the sample of `label_values`; a sample
  // starts at 0, so Add(labels, 0) shows a label set before its first event.
  absl::Status Add(const LabelValues& label_values, double amount);
  absl::Status Increment(const LabelValues& label_values = {}) { return Add(label_values, 1); }

 private:
  friend class MetricRegistry;
  using ScalarFamily::ScalarFamily;
};

class GaugeFamily final : public internal::ScalarFamily {
 public:
  // Any value, NaN and infinities included (the format carries them).
  absl::Status Set(const LabelValues& label_values, double value);
  absl::Status Add(const LabelValues& label_values, double delta);

 private:
  friend class MetricRegistry;
  using ScalarFamily::ScalarFamily;
};

// One label set's observations.
struct HistogramSample {
  // cumulative_counts[i]: observations <= upper_bounds()[i]; the last entry
  // is the +Inf bucket, equal to `count`.
  std::vector<uint64_t> cumulative_counts;
  double sum = 0;
  uint64_t count = 0;
};

class HistogramFamily final : public internal::Family {
 public:
  // Counts a finite `value` in the first bucket whose bound is >= value.
  absl::Status Observe(const LabelValues& label_values, double value);
  // NotFound when nothing was observed with `label_values`.
  absl::StatusOr<HistogramSample> Sample(const LabelValues& label_values = {}) const;
  // The finite bounds, increasing; the +Inf bucket follows them.
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  friend class MetricRegistry;
  // Counts per bucket (not cumulative), the +Inf bucket last.
  struct Buckets {
    std::vector<uint64_t> counts;
    double sum = 0;
    uint64_t count = 0;
  };
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> upper_bounds);
  void AppendText(std::string& out) const override;

  const std::vector<double> upper_bounds_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, Buckets> samples_ ABSL_GUARDED_BY(mu_);
};

// The samples a collector reports for one render of its family; a fresh,
// empty one for each render.
class MetricSnapshot {
 public:
  // Sets the sample of `label_values` (a second Set of the same labels
  // replaces the first). InvalidArgument, and nothing kept, when the label
  // values do not fit the family or when a counter's value is negative or
  // NaN.
  absl::Status Set(const LabelValues& label_values, double value);

 private:
  friend class internal::CollectorFamily;
  explicit MetricSnapshot(const internal::Family& family) : family_(family) {}

  const internal::Family& family_;
  std::map<LabelValues, double> values_;
};

using Collector = std::function<void(MetricSnapshot&)>;

class MetricRegistry {
 public:
  MetricRegistry() = default;
  MetricRegistry(const MetricRegistry&) = delete;
  MetricRegistry& operator=(const MetricRegistry&) = delete;

  // A family without label names has its one sample from the start, at 0,
  // as Prometheus's client libraries do.
  absl::StatusOr<CounterFamily*> AddCounter(std::string name, std::string help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string name, std::string help,
                                        std::vector<std::string> label_names = {});
  // `upper_bounds`: finite and strictly increasing; a trailing +Inf is
  // accepted and dropped, since every histogram has that bucket.
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string name, std::string help,
                                                std::vector<double> upper_bounds,
                                                std::vector<std::string> label_names = {});

  // Families whose samples `collect` sets at every RenderText.
  absl::Status AddGaugeCollector(std::string name, std::string help,
                                 std::vector<std::string> label_names, Collector collect);
  // `collect` must report values that never decrease while the process
  // runs (entries in the audit log, say).
  absl::Status AddCounterCollector(std::string name, std::string help,
                                   std::vector<std::string> label_names, Collector collect);

  // `refresh` runs at the start of every RenderText, before any family is
  // rendered, with no registry or family mutex held: it brings families
  // that are fed from a log (histograms of round durations read from the
  // audit log, say) up to date, so that one render shows one state. The
  // same rules as for collectors apply to what it captures.
  void AddRefresh(std::function<void()> refresh);

  // Every family with at least one sample, in the text exposition format
  // 0.0.4: families sorted by name, samples by label values (byte-wise),
  // histogram buckets by bound, each family's `# HELP` and `# TYPE` first.
  // Empty when no family has a sample.
  std::string RenderText() const;

 private:
  absl::Status CheckDeclaration(const internal::Family& family) const;
  // Takes `family` unless its declaration is refused or its name is taken.
  absl::Status Register(std::unique_ptr<internal::Family> family);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<internal::Family>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> refreshes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedmi::metrics

#endif  // FEDMI_COMMON_METRICS_METRIC_REGISTRY_H_
