// Fault and attack injection for `fedmi sim --attack SITE:KIND`: what a
// simulated malicious or faulty site does, so that aggregation strategies
// can be compared against it on one machine.
//
// Simulation only. `fedmi sim` applies label-flip to the site's shard before
// the site starts; the model-poisoning kinds run inside fedmi-sim-site
// (client/sim_site_main.cc) through SiteWorkerOptions::tamper. The
// production fedmi-client links none of this and refuses the setting.
//
// Pure functions and a stateless tamper; thread-compatible.
#ifndef FEDMI_CLIENT_SIM_ATTACK_H_
#define FEDMI_CLIENT_SIM_ATTACK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/update_tamper.h"
#include "common/base/enum_names.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi {

// The model-poisoning kinds act on the change d = w - w_global of every
// float32 tensor the site sends (other dtypes pass unchanged).
enum class AttackKind {
  kSignFlip,   // sends w_global - d: the honest change reversed
  kScaled,     // sends w_global + kScaledAttackFactor * d
  kGaussian,   // sends w_global + d + N(0, kGaussianAttackStddev^2) per element
  kLabelFlip,  // trains honestly on training labels y -> (y + 1) mod C
};

inline constexpr EnumName<AttackKind> kAttackKindNames[] = {
    {AttackKind::kSignFlip, "sign-flip"},
    {AttackKind::kScaled, "scaled"},
    {AttackKind::kGaussian, "gaussian"},
    {AttackKind::kLabelFlip, "label-flip"},
};

inline constexpr double kScaledAttackFactor = 10.0;
// Absolute, per element: large next to trained CNN weights (mostly below
// 0.1 in magnitude), so one such site visibly breaks plain FedAvg.
inline constexpr double kGaussianAttackStddev = 1.0;

const char* AttackKindName(AttackKind kind);
std::optional<AttackKind> ParseAttackKind(absl::string_view name);
// "sign-flip", "scaled", "gaussian", "label-flip".
std::vector<std::string> AttackKindNames();
// One line for sim's header: "sends w_global - d (its change reversed)".
std::string DescribeAttack(AttackKind kind);
// Whether the site's update is rewritten (by fedmi-sim-site) rather than
// its data.
bool PoisonsModel(AttackKind kind);

// One `--attack SITE:KIND` of `fedmi sim`.
struct SiteAttack {
  std::string site;  // "site-3"
  AttackKind kind = AttackKind::kSignFlip;
};

// Parses sim's --attack values for a federation of `sites` sites named
// site-1 .. site-N. SITE is a site's name ("site-3") or its 1-based index
// ("3"). InvalidArgument, naming the value, for a missing ':', an unknown
// site or kind, or a site named twice. Sorted by site index.
absl::StatusOr<std::vector<SiteAttack>> ParseSiteAttacks(const std::vector<std::string>& values,
                                                         int sites);

// The tamper of a model-poisoning kind for fedmi-sim-site. The Gaussian
// noise is seeded from the run's seed, the round and `site`, so a
// simulation reproduces. InvalidArgument for label-flip, which changes
// data, not updates.
absl::StatusOr<std::unique_ptr<UpdateTamper>> MakeUpdateTamper(AttackKind kind,
                                                               const std::string& site);

// The Gaussian attack's noise seed for one site and round of a run.
uint64_t GaussianAttackSeed(uint64_t run_seed, int32_t round, const std::string& site);

// (label + 1) mod num_classes, which is 1 - label for a binary task.
// InvalidArgument unless num_classes >= 2 and 0 <= label < num_classes.
absl::StatusOr<int64_t> FlippedLabel(int64_t label, int64_t num_classes);

// Rewrites the train_labels of the MedMNIST-style shard at `path` (uint8)
// with FlippedLabel; val_labels stay true, so the federation's validation
// metrics still measure the real task. InvalidArgument for a shard with
// masks (segmentation has no labels to flip) or labels that are not uint8
// in [0, num_classes); the npz reader's and writer's errors otherwise.
absl::Status FlipShardTrainingLabels(const std::string& path, int64_t num_classes);

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SIM_ATTACK_H_
