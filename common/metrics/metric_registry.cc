#include "common/metrics/metric_registry.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/metrics/exposition_text.h"

namespace fedmi::metrics {
namespace internal {

// A gauge or counter family whose samples its collector reports afresh at
// every render; it keeps none itself.
class CollectorFamily final : public Family {
 public:
  CollectorFamily(std::string name, std::string help, MetricType type,
                  std::vector<std::string> label_names, Collector collect)
      : Family(std::move(name), std::move(help), type, std::move(label_names)),
        collect_(std::move(collect)) {}

 private:
  void AppendText(std::string& out) const override {
    MetricSnapshot snapshot(*this);
    collect_(snapshot);
    AppendScalars(out, snapshot.values_);
  }

  const Collector collect_;
};

Family::Family(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

absl::Status Family::CheckLabelValues(const LabelValues& label_values) const {
  if (label_values.size() != label_names_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " has ", label_names_.size(),
                                                   " label names but was given ",
                                                   label_values.size(), " label values"));
  }
  for (size_t i = 0; i < label_values.size(); ++i) {
    if (!IsValidUtf8(label_values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": the value of label ", label_names_[i], " is not UTF-8"));
    }
  }
  return absl::OkStatus();
}

void Family::AppendHeader(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", EscapeHelpText(help_), "\n# TYPE ", name_, " ",
                  MetricTypeName(type_), "\n");
}

void Family::AppendSample(std::string& out, absl::string_view suffix,
                          const LabelValues& label_values, absl::string_view le,
                          absl::string_view value) const {
  absl::StrAppend(&out, name_, suffix);
  if (!label_values.empty() || !le.empty()) {
    out += '{';
    for (size_t i = 0; i < label_values.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? "" : ",", label_names_[i], "=\"",
                      EscapeLabelValue(label_values[i]), "\"");
    }
    if (!le.empty()) absl::StrAppend(&out, label_values.empty() ? "" : ",", "le=\"", le, "\"");
    out += '}';
  }
  absl::StrAppend(&out, " ", value, "\n");
}

void Family::AppendScalars(std::string& out, const std::map<LabelValues, double>& values) const {
  if (values.empty()) return;
  AppendHeader(out);
  for (const auto& [label_values, value] : values) {
    AppendSample(out, "", label_values, "", FormatSampleValue(value));
  }
}

absl::StatusOr<double> ScalarFamily::Value(const LabelValues& label_values) const {
  absl::MutexLock lock(&mu_);
  const auto it = values_.find(label_values);
  if (it == values_.end()) {
    return absl::NotFoundError(absl::StrCat(name(), " has no sample with these label values"));
  }
  return it->second;
}

absl::Status ScalarFamily::Store(const LabelValues& label_values, double value, bool add) {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(label_values);
  if (it == values_.end()) {
    RETURN_IF_ERROR(CheckLabelValues(label_values));
    it = values_.emplace(label_values, 0.0).first;
  }
  it->second = add ? it->second + value : value;
  return absl::OkStatus();
}

void ScalarFamily::AppendText(std::string& out) const {
  absl::MutexLock lock(&mu_);
  AppendScalars(out, values_);
}

}  // namespace internal

absl::Status CounterFamily::Add(const LabelValues& label_values, double amount) {
  // Written so that NaN fails too.
  if (!(amount >= 0) || std::isinf(amount)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name(), " is a counter and only goes up: cannot add ", FormatSampleValue(amount)));
  }
  return Store(label_values, amount, /*add=*/true);
}

absl::Status GaugeFamily::Set(const LabelValues& label_values, double value) {
  return Store(label_values, value, /*add=*/false);
}

absl::Status GaugeFamily::Add(const LabelValues& label_values, double delta) {
  return Store(label_values, delta, /*add=*/true);
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names,
                                 std::vector<double> upper_bounds)
    : Family(std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names)),
      upper_bounds_(std::move(upper_bounds)) {}

absl::Status HistogramFamily::Observe(const LabelValues& label_values, double value) {
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), " observes finite values only, not ", FormatSampleValue(value)));
  }
  absl::MutexLock lock(&mu_);
  auto it = samples_.find(label_values);
  if (it == samples_.end()) {
    RETURN_IF_ERROR(CheckLabelValues(label_values));
    Buckets empty;
    empty.counts.assign(upper_bounds_.size() + 1, 0);
    it = samples_.emplace(label_values, std::move(empty)).first;
  }
  // The first bound >= value: buckets are "less than or equal" (le).
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  ++it->second.counts[bucket];
  it->second.sum += value;
  ++it->second.count;
  return absl::OkStatus();
}

absl::StatusOr<HistogramSample> HistogramFamily::Sample(const LabelValues& label_values) const {
  absl::MutexLock lock(&mu_);
  const auto it = samples_.find(label_values);
  if (it == samples_.end()) {
    return absl::NotFoundError(absl::StrCat(name(), " has no sample with these label values"));
  }
  HistogramSample sample;
  uint64_t running = 0;
  for (uint64_t count : it->second.counts) {
    running += count;
    sample.cumulative_counts.push_back(running);
  }
  sample.sum = it->second.sum;
  sample.count = it->second.count;
  return sample;
}

void HistogramFamily::AppendText(std::string& out) const {
  absl::MutexLock lock(&mu_);
  if (samples_.empty()) return;
  AppendHeader(out);
  for (const auto& [label_values, buckets] : samples_) {
    uint64_t running = 0;
    for (size_t i = 0; i < buckets.counts.size(); ++i) {
      running += buckets.counts[i];
      const std::string le =
          i < upper_bounds_.size() ? FormatSampleValue(upper_bounds_[i]) : "+Inf";
      AppendSample(out, "_bucket", label_values, le, absl::StrCat(running));
    }
    AppendSample(out, "_sum", label_values, "", FormatSampleValue(buckets.sum));
    AppendSample(out, "_count", label_values, "", absl::StrCat(buckets.count));
  }
}

absl::Status MetricSnapshot::Set(const LabelValues& label_values, double value) {
  RETURN_IF_ERROR(family_.CheckLabelValues(label_values));
  if (family_.type() == MetricType::kCounter && (!(value >= 0) || std::isinf(value))) {
    return absl::InvalidArgumentError(
        absl::StrCat(family_.name(), " is a counter and cannot be ", FormatSampleValue(value)));
  }
  values_[label_values] = value;
  return absl::OkStatus();
}

absl::StatusOr<CounterFamily*> MetricRegistry::AddCounter(std::string name, std::string help,
                                                          std::vector<std::string> label_names) {
  std::unique_ptr<CounterFamily> family(new CounterFamily(
      std::move(name), std::move(help), MetricType::kCounter, std::move(label_names)));
  CounterFamily* raw = family.get();
  RETURN_IF_ERROR(Register(std::move(family)));
  if (raw->label_names().empty()) RETURN_IF_ERROR(raw->Add({}, 0));
  return raw;
}

absl::StatusOr<GaugeFamily*> MetricRegistry::AddGauge(std::string name, std::string help,
                                                      std::vector<std::string> label_names) {
  std::unique_ptr<GaugeFamily> family(new GaugeFamily(std::move(name), std::move(help),
                                                      MetricType::kGauge, std::move(label_names)));
  GaugeFamily* raw = family.get();
  RETURN_IF_ERROR(Register(std::move(family)));
  if (raw->label_names().empty()) RETURN_IF_ERROR(raw->Set({}, 0));
  return raw;
}

absl::StatusOr<HistogramFamily*> MetricRegistry::AddHistogram(
    std::string name, std::string help, std::vector<double> upper_bounds,
    std::vector<std::string> label_names) {
  if (!upper_bounds.empty() && upper_bounds.back() == std::numeric_limits<double>::infinity()) {
    upper_bounds.pop_back();
  }
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram ", name, ": bucket bound ", FormatSampleValue(upper_bounds[i]),
                       " is not finite (only +Inf, last, which every histogram has)"));
    }
    if (i > 0 && !(upper_bounds[i - 1] < upper_bounds[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram ", name, ": bucket bounds must strictly increase, but ",
          FormatSampleValue(upper_bounds[i]), " follows ", FormatSampleValue(upper_bounds[i - 1])));
    }
  }
  std::unique_ptr<HistogramFamily> family(new HistogramFamily(
      std::move(name), std::move(help), std::move(label_names), std::move(upper_bounds)));
  HistogramFamily* raw = family.get();
  RETURN_IF_ERROR(Register(std::move(family)));
  if (raw->label_names().empty()) {
    absl::MutexLock lock(&raw->mu_);
    raw->samples_[{}].counts.assign(raw->upper_bounds_.size() + 1, 0);
  }
  return raw;
}

void MetricRegistry::AddRefresh(std::function<void()> refresh) {
  absl::MutexLock lock(&mu_);
  refreshes_.push_back(std::move(refresh));
}

absl::Status MetricRegistry::AddGaugeCollector(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               Collector collect) {
  return Register(std::make_unique<internal::CollectorFamily>(
      std::move(name), std::move(help), MetricType::kGauge, std::move(label_names),
      std::move(collect)));
}

absl::Status MetricRegistry::AddCounterCollector(std::string name, std::string help,
                                                 std::vector<std::string> label_names,
                                                 Collector collect) {
  return Register(std::make_unique<internal::CollectorFamily>(
      std::move(name), std::move(help), MetricType::kCounter, std::move(label_names),
      std::move(collect)));
}

std::string MetricRegistry::RenderText() const {
  // Families are never removed, so the pointers outlive the lock; rendering
  // without it lets collectors take their owners' locks in any order.
  std::vector<const internal::Family*> families;
  std::vector<std::function<void()>> refreshes;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
    refreshes = refreshes_;
  }
  for (const std::function<void()>& refresh : refreshes) refresh();
  std::string out;
  for (const internal::Family* family : families) family->AppendText(out);
  return out;
}

absl::Status MetricRegistry::CheckDeclaration(const internal::Family& family) const {
  RETURN_IF_ERROR(ValidateMetricName(family.name(), family.type()));
  if (family.help_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(family.name(), " has no help text"));
  }
  if (!IsValidUtf8(family.help_)) {
    return absl::InvalidArgumentError(absl::StrCat(family.name(), ": help text is not UTF-8"));
  }
  std::set<absl::string_view> seen;
  for (const std::string& label : family.label_names()) {
    RETURN_IF_ERROR(ValidateLabelName(label));
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(family.name(), " names label ", label, " twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status MetricRegistry::Register(std::unique_ptr<internal::Family> family) {
  RETURN_IF_ERROR(CheckDeclaration(*family));
  absl::MutexLock lock(&mu_);
  std::string name = family->name();
  if (families_.count(name) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("metric ", name, " is already registered"));
  }
  families_.emplace(std::move(name), std::move(family));
  return absl::OkStatus();
}

}  // namespace fedmi::metrics
