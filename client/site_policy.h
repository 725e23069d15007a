// SitePolicy: what a hospital allows to run on its patients' data. The site,
// not the coordinator, has the last word: every task's RunSpec is checked
// against the policy before any data is touched, and a violation refuses the
// task with a reason that the coordinator records and `fedmi run status`
// shows.
//
// The policy is a TOML file; every key is optional and an absent file means
// the defaults below:
//
//   allowed_models = [every built-in architecture]  # fedmi model list; "synthetic"
//                                         # must be listed explicitly
//   allowed_spec_sha256 = []              # optional pin on whole run specs (hex)
//   allowed_model_sha256 = []             # model files (fedmi run start --model-file)
//                                         # this site runs, by SHA-256 (hex); none by default
//   max_local_epochs = 10
//   max_image_size = 224                  # largest input side a run may ask the
//                                         # site to read its data at
//   require_secure_aggregation = false
//   require_differential_privacy = false
//   max_epsilon = 8.0                     # optional: refuse runs (and rounds) past it;
//                                         # set, it also refuses runs without DP
//   max_delta = 1e-5                      # the largest delta a DP run may state
//   allow_central_dp_noise = false        # --dp site with the coordinator adding the
//                                         # noise: this site's update leaves un-noised
//   coordinator_fingerprint = ""          # SHA-256 (hex) of the coordinator's cert
//   min_secagg_peers = 3                  # fewest neighbours a secure round may give us
//   min_secagg_threshold_fraction = 0.667 # threshold must exceed this share of them
//   secagg_training_metrics = "withhold"  # or "share": per-site training metrics
//                                         # beside a masked update
//
// An unknown key is an error, not a warning: a typo must never silently
// loosen the policy.
//
// SpecApprover adds a human in the loop (`fedmi-client --review`): the site's
// operator reads each new run spec and says yes or no once per spec hash.
//
// SitePolicy is a plain value: immutable use is thread-safe. TerminalApprover
// is thread-safe (one prompt at a time).
#ifndef FEDMI_CLIENT_SITE_POLICY_H_
#define FEDMI_CLIENT_SITE_POLICY_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/base/env.h"
#include "common/runspec/model_names.h"
#include "common/secagg/secagg_transcript.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Prefix of every refusal that comes from a site's own policy, so that the
// coordinator's records say who refused and why.
inline constexpr absl::string_view kSitePolicyPrefix = "site policy: ";

struct SitePolicy {
  // The architectures fedmi builds itself (common/runspec/model_names.h):
  // reviewed code with the same update path as any other. Code that a run
  // brings (a model file) needs its hash in allowed_model_sha256.
  std::vector<std::string> allowed_models = TrainableModelNames();
  // Lower-case hex; empty = no pin.
  std::vector<std::string> allowed_spec_sha256;
  // Lower-case hex SHA-256s of the model files (bring your own model) this
  // site will run; a run with any other file is refused, naming its hash.
  std::vector<std::string> allowed_model_sha256;
  int32_t max_local_epochs = 10;
  // A run's image_size: the site holds its whole data set in memory at it.
  int32_t max_image_size = 224;
  bool require_secure_aggregation = false;
  bool require_differential_privacy = false;
  // Unset: no bound. Set: runs whose planned epsilon (recomputed here from
  // the spec) passes it are refused, and so is each round that would take
  // this site's own accountant (PrivacyLedger) past it.
  std::optional<double> max_epsilon;
  double max_delta = 1e-5;
  // Site-level DP with central noise sends this site's clipped update
  // without noise (masked under secure aggregation, plain without it) and
  // trusts the coordinator to add it: refused unless allowed.
  bool allow_central_dp_noise = false;
  // Lower-case hex without separators; empty = any certificate of the project CA.
  std::string coordinator_fingerprint;
  // This site's floor on any secure round (docs/secure-aggregation.md),
  // checked against the coordinator's signed admission and the graph built.
  secagg::SecAggFloor secagg_floor;
  // With secure aggregation, training metrics (loss, accuracy on this
  // site's own data) would describe this site alone beside its masked
  // update; they are withheld unless the policy says "share".
  bool share_training_metrics_with_secagg = false;

  static SitePolicy Defaults() { return SitePolicy(); }

  // Reads a policy file. NotFound when it cannot be read; InvalidArgument,
  // naming the file, the key and the line, on a TOML syntax error, a value of
  // the wrong type or range, or an unknown key.
  static absl::StatusOr<SitePolicy> Load(const std::string& path);
  // As Load, from text; `source` names it in errors.
  static absl::StatusOr<SitePolicy> Parse(absl::string_view toml, const std::string& source);

  // OK when the site may run `spec`; otherwise PermissionDenied with a message
  // "site policy: <rule and value>".
  absl::Status Check(const v1::RunSpec& spec) const;
};

// Hex SHA-256 of spec.SerializeAsString(): the coordinator stores the same
// hash as the run's spec_sha256, because it hashes the filled-in spec that it
// then sends with every task.
std::string RunSpecSha256Hex(const v1::RunSpec& spec);

// A multi-line, human-readable account of a run spec for the site operator.
std::string DescribeRunSpec(const v1::RunSpec& spec, const std::string& spec_sha256,
                            const std::string& coordinator);

// Asks whoever answers for the site whether a run spec may run here.
// Implementations remember answers so that a spec is not asked about twice.
class SpecApprover {
 public:
  virtual ~SpecApprover() = default;
  // OK to run; PermissionDenied ("site policy: ...") to refuse.
  virtual absl::Status Approve(const v1::RunSpec& spec, const std::string& spec_sha256) = 0;
};

// Prompts on a terminal and remembers approvals in a file of hex hashes, one
// per line (text after the hash is a comment), so approvals survive restarts.
// The file may also be edited by hand to pre-approve a spec.
//
// A "no" is remembered only for this process's lifetime, so that a refused
// run is not asked about again every round; a restart asks again.
struct TerminalApproverOptions {
  std::string coordinator;  // shown in the prompt
  // False when stdin is not a terminal: unapproved specs are refused at once
  // with a reason saying how to approve them, instead of waiting forever.
  bool interactive = true;
  // Not owned; reads and writes the approvals file. Must outlive the approver.
  Env* env = Env::Default();
};

class TerminalApprover : public SpecApprover {
 public:
  // Reads `approvals_path` when a spec is not yet known approved; a missing
  // file means no approvals yet.
  TerminalApprover(std::istream& in, std::ostream& out, std::string approvals_path,
                   TerminalApproverOptions options = {});

  absl::Status Approve(const v1::RunSpec& spec, const std::string& spec_sha256) override;

 private:
  // The approvals file's text; empty when there is none yet.
  absl::StatusOr<std::string> ReadApprovalsFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadApprovals() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Remember(const v1::RunSpec& spec, const std::string& spec_sha256)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::istream& in_;
  std::ostream& out_;
  const std::string approvals_path_;
  const TerminalApproverOptions options_;

  absl::Mutex mu_;
  std::set<std::string> approved_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> rejected_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_POLICY_H_
