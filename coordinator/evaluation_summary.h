// The run-level summary of one round's evaluation reports: what the round
// manager stores as the round's metrics and records in the audit log.
// Pure functions; thread-safe.
#ifndef FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_
#define FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_

#include <nlohmann/json.hpp>
#include <vector>

#include "common/evaluation/operating_threshold.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Example-weighted mean of the sites' metrics. Each field is averaged over
// the sites that report a finite value for it (NaN when none does), so one
// site whose validation data has a single class (AUC undefined) does not
// poison the aggregate. `examples` is the sum over all sites.
v1::Metrics WeightedMean(const std::vector<v1::Metrics>& parts);

// The round's aggregate: WeightedMean of the sites' metrics, plus the
// operating threshold `rule` picks on the sum of their validation score
// histograms, with the sensitivity and specificity it gives there. No
// threshold when none can be chosen: no site sent a histogram, or a class
// is missing from all of them. A histogram that does not parse, has other
// than kDefaultScoreBins bins, or does not count the site's examples exactly
// once is left out of the sum (a site cannot spoil the others');
// `*ignored` (if given) counts them. The aggregate holds no
// histogram.
v1::Metrics PooledEvaluation(const std::vector<v1::Metrics>& parts, const ThresholdRule& rule,
                             int* ignored = nullptr);

// The metrics as a JSON object; a value that is not finite becomes null.
// An operating threshold adds operating_threshold, operating_sensitivity and
// operating_specificity; segmentation metrics (an overlap) add dice, iou
// and mean_image_dice.
nlohmann::json MetricsJson(const v1::Metrics& metrics);

}  // namespace fedmi

#endif  // FEDMI_COORDINATOR_EVALUATION_SUMMARY_H_
