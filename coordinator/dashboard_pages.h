// The dashboard's pages as HTML documents, pure functions of the status
// values the admin API returns (admin.proto), so that they are tested
// without sockets and agree with `fedmi run status` and `fedmi site list`:
//
//  - runs (/ and /runs): each run's state, progress (round k of N) and
//    latest pooled validation AUC with its trend;
//  - one run (/runs/ID, dashboard_run_page.cc): its spec, its privacy
//    settings and, per round, loss, AUC, sensitivity and specificity
//    (Dice and IoU for segmentation), pooled and per site;
//  - sites (/sites): connection, last seen, certificate expiry,
//    revocation;
//  - audit log (/audit, dashboard_audit.h).
//
// Pure functions; thread-safe.
#ifndef FEDMI_COORDINATOR_DASHBOARD_PAGES_H_
#define FEDMI_COORDINATOR_DASHBOARD_PAGES_H_

#include <optional>
#include <string>
#include <vector>

#include "fedmi/v1/admin.pb.h"

namespace fedmi::dashboard {

// The pooled validation metrics of the run's last evaluated round (one
// with examples), if any.
std::optional<v1::Metrics> LatestEvaluation(const v1::RunStatus& run);
// Pooled validation AUC per evaluated round, in round order.
std::vector<double> AucPerRound(const v1::RunStatus& run);

// `runs` with their rounds (Federation::GetRun of each), as of `now`.
std::string RunsPage(const std::vector<v1::RunStatus>& runs, double now);
std::string RunPage(const v1::RunStatus& run, double now);
std::string SitesPage(const std::vector<v1::SiteInfo>& sites, double now);
// A page that says `message` (an unknown run, a bad id).
std::string NotFoundPage(const std::string& message, double now);

}  // namespace fedmi::dashboard

#endif  // FEDMI_COORDINATOR_DASHBOARD_PAGES_H_
