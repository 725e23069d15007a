// SiteWorker: what a hospital site does with each task, transport-free.
//
//   init  -> build the run's initial model from its spec and seed
//   train -> load the global model, train locally, return the new weights
//   eval  -> load a global model, report clinical metrics on local val data
//
// Images never leave this class: only weights and aggregate metrics do.
// Every task passes the site's policy (and, with --review, its operator)
// before any data is touched.
// The "synthetic" model (benchmarks) needs no data and no LibTorch: a site
// returns the global model plus a small deterministic delta.
//
// Not thread-safe: the daemon runs tasks one at a time on one thread. Only
// train_examples, val_examples and DeclareTrainExamples may be called from
// another thread (the connection's hello) while a task runs.
#ifndef FEDMI_CLIENT_SITE_WORKER_H_
#define FEDMI_CLIENT_SITE_WORKER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/active_learning.h"
#include "client/ml/local_model.h"
#include "client/privacy_ledger.h"
#include "client/scaffold.h"
#include "client/site_policy.h"
#include "client/site_scarce_labels.h"
#include "client/training_progress.h"
#include "client/update_tamper.h"
#include "common/data/dataset.h"
#include "common/privacy/gaussian_noise.h"
#include "common/tensor/tensor_bundle.h"
#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// The input a run asks for (RunSpec image_size, channels, first_frame_only):
// every image of the site's data resized to image_size x image_size with
// `channels` channels, and, for a segmentation run, each with its mask.
struct DataGeometry {
  int64_t image_size = 28;
  int64_t channels = 1;
  bool first_frame_only = false;
  bool with_masks = false;  // SiteDataOptions::with_masks

  bool operator==(const DataGeometry& other) const {
    return image_size == other.image_size && channels == other.channels &&
           first_frame_only == other.first_frame_only && with_masks == other.with_masks;
  }
};

DataGeometry GeometryOf(const v1::RunSpec& spec);

// The tensors of `model` that round `round` of `spec` trains and sends (all
// of them unless RunSpec.transfer freezes some), in the model's order.
absl::StatusOr<TensorBundle> TrainedPart(const v1::RunSpec& spec, int32_t round,
                                         const TensorBundle& model);

// Loads the site's data again at another geometry.
using SiteDataLoader = std::function<absl::StatusOr<SiteDataset>(const DataGeometry&)>;

struct SiteWorkerOptions {
  std::string site;
  // LibTorch intra-op threads; 0 = this site's share of the CPUs it may use
  // (common/base/cpu_share.h), measured again before each training.
  int threads = 0;
  // Unset: SitePolicy::Defaults(), plus "synthetic" when the site has no data.
  // A data-less site has no patients to protect, and `fedmi bench round`
  // starts exactly such sites; a site with data must list "synthetic" itself.
  std::optional<SitePolicy> policy;
  // Not owned; must outlive the worker. Null: no operator review.
  SpecApprover* approver = nullptr;
  // How DP-SGD computes per-example gradients (sample-level DP runs).
  ml::PerExampleMethod per_example_method = ml::DpSgdOptions().method;
  // Where this site's own privacy accountant keeps what each run has spent
  // (PrivacyLedger); empty: in memory only. Files go through `env`.
  std::string privacy_dir = "";
  // Where this site keeps what it must remember between rounds of a run
  // (SCAFFOLD's control variates, in scaffold/<site>/); empty: "state".
  std::string state_dir = "";
  Env* env = Env::Default();
  // This site's noise share for site-level DP with distributed noise. Not
  // owned; null: the kernel's CSPRNG. Tests give a seeded one.
  privacy::NoiseSource* dp_noise = nullptr;
  // Reads the site's data at the geometry a run asks for when the data in
  // hand has another one. Empty: runs at other geometries are refused.
  SiteDataLoader reload_data;
  // The geometry of the data given to the constructor (its images' size and
  // channels; first_frame_only as it was loaded).
  bool data_first_frame_only = false;
  // Why the site's data could not be used (too many unreadable files, ...);
  // every task that needs data is then refused with it.
  absl::Status data_problem;
  // Simulation only (`fedmi sim --attack`): rewrites every update before it
  // is sent. Not owned; null in the production daemon, which has no way to
  // set it.
  UpdateTamper* tamper = nullptr;
  // Hears every batch of local training and each train task's outcome (the
  // progress bar, /metrics). Not owned; null: nobody listens.
  TrainingObserver* training_observer = nullptr;
  // Pseudo-labels and down-weighted suspect labels (client/site_scarce_labels.h).
  LocalLabelOptions local_labels;
  // Active learning inside a run (client/active_learning.h).
  ActiveLearningOptions active_learning;
  // A fingerprint of the site's data on disk (DataSourceVersion). When it
  // differs from the one the data in hand was read at, the next task that
  // needs data reads it again with reload_data (labels imported during a
  // run). Empty: the data in hand is never read again for being changed.
  std::function<std::string()> data_version;
};

// Fetches an artifact a run's spec names (initial weights, a model file)
// from the coordinator by SHA-256 (hex). The worker checks the hash of what
// comes back itself.
using ArtifactSource =
    std::function<absl::StatusOr<TensorBundle>(int64_t run_id, const std::string& sha256_hex)>;

struct LocalUpdate {
  // The tensors the round trains (RunSpec.transfer): all unless some are
  // frozen, which are not sent. For strategy norm_bounded their change to
  // the global model is scaled down to L2 norm RunSpec.robust.norm_bound.
  TensorBundle weights;
  int64_t examples = 0;
  v1::Metrics train_metrics;
  // This site's epsilon for the run after this training, by its own ledger.
  double dp_epsilon_spent = 0;
  // Site-level DP: the change was within the round's clip before clipping.
  bool dp_within_clip = false;
};

class SiteWorker {
 public:
  // `data` may be empty for a site that only serves synthetic benchmarks.
  SiteWorker(SiteWorkerOptions options, std::optional<SiteDataset> data);
  ~SiteWorker();

  int64_t train_examples() const;
  int64_t val_examples() const;
  // train_examples() for the site's hello, remembered: the coordinator
  // refuses an update counting more examples than the hello declared (an
  // inflated count would outvote the other sites), so an update reports at
  // most this many. Images labelled during a run then train at once and
  // weigh from the next connection on.
  int64_t DeclareTrainExamples();

  // Refuses, before any data is touched, a spec this site may not or cannot
  // run: PermissionDenied for the site's policy or operator ("site policy:
  // ..."), InvalidArgument / FailedPrecondition for what the site cannot do.
  absl::Status CheckTask(const v1::RunSpec& spec) const;

  const SitePolicy& policy() const { return policy_; }
  TrainingObserver* training_observer() const { return options_.training_observer; }

  // Where artifacts come from (the session's link); unset: runs that name
  // one are refused.
  void set_artifact_source(ArtifactSource source) { artifact_source_ = std::move(source); }

  // The run's initial model: the architecture's seeded initialisation (or
  // the run's model file's weights), with the spec's initial weights put in
  // by name and shape when it names some.
  absl::StatusOr<TensorBundle> BuildInitialModel(const v1::RunSpec& spec, int64_t run_id = 0);
  // `dp_clip_norm`: the task's clip for site-level DP with adaptive clipping
  // (TrainTask.dp_clip_norm); 0 otherwise.
  absl::StatusOr<LocalUpdate> Train(int64_t run_id, int32_t round, const v1::RunSpec& spec,
                                    const TensorBundle& global, double dp_clip_norm = 0);
  // Classification: AUC, accuracy, ... and the score histogram.
  // Segmentation: examples, loss, pooled dice and iou, mean_image_dice and
  // the overlap counts (pixel sums over the validation split, the only
  // form in which masks leave the site), no histogram.
  absl::StatusOr<v1::Metrics> Evaluate(int64_t run_id, const v1::RunSpec& spec,
                                       const TensorBundle& global);
  // Drops cached state of a finished or cancelled run.
  void ForgetRun(int64_t run_id);

 private:
  // With `threads` 0: sets LibTorch's threads to this site's CPU share now,
  // logging when it changes (another site started or stopped).
  void UseCpuShare();
  // ml::TrainOptions::progress for options_.training_observer.
  std::function<void(int, int64_t, int64_t, double)> ProgressReporter(
      int64_t run_id, int32_t round, const v1::RunSpec& spec) const;
  // Whether this site can run `spec` at all (architecture, data, classes).
  absl::Status CheckCapability(const v1::RunSpec& spec) const;
  absl::StatusOr<ml::LocalModel*> ModelFor(int64_t run_id, const v1::RunSpec& spec);
  // A fresh model of the spec: its architecture, or its model file.
  absl::StatusOr<std::unique_ptr<ml::LocalModel>> CreateModel(int64_t run_id,
                                                              const v1::RunSpec& spec);
  // The artifact `sha256_hex` of run `run_id`, fetched and checked against
  // its hash (DataLoss when the coordinator sent other bytes).
  absl::StatusOr<TensorBundle> FetchArtifact(int64_t run_id, const std::string& sha256_hex);
  // The site's data at the spec's geometry, reloaded when the data in hand
  // has another one. FailedPrecondition without data, or when it cannot be
  // reloaded.
  absl::StatusOr<const SiteDataset*> DataFor(const v1::RunSpec& spec);
  // The example count an update sends for `labelled` training images: at
  // most what the hello declared.
  int64_t ReportedExamples(int64_t labelled) const;
  // InvalidArgument when `data` has more classes than the run trains.
  static absl::Status CheckClasses(const SiteDataset& data, const v1::RunSpec& spec);
  // Site-level DP: the round's clip S, the task's under adaptive clipping
  // (InvalidArgument unless positive and finite), else the spec's.
  static absl::StatusOr<double> SiteDpClip(const v1::RunSpec& spec, double task_clip);
  // The update as it is sent: only the tensors the round trains, clipped to
  // the run's norm bound (norm_bounded), through PrivatizeSiteUpdate, then
  // the simulation's tamper if there is one.
  absl::StatusOr<LocalUpdate> FinishUpdate(int64_t run_id, int32_t round, const v1::RunSpec& spec,
                                           double dp_clip_norm, const TensorBundle& global,
                                           LocalUpdate update);
  // The run's initial weights (RunSpec.transfer) put into the architecture's
  // `initial` ones.
  absl::StatusOr<TensorBundle> WithInitialWeights(int64_t run_id, const v1::RunSpec& spec,
                                                  TensorBundle initial);
  // SCAFFOLD (client/scaffold.h): a round's server and client control
  // variates, from the global bundle and this site's store.
  struct ScaffoldRound {
    std::string spec_sha256;  // which run's variates the store holds
    double units = 1;         // the bundle's control variates are c * units
    ScaffoldGlobal global;    // server_control unscaled
    TensorBundle client_control;
    TensorBundle offset;  // c - c_i
  };
  absl::StatusOr<ScaffoldRound> BeginScaffoldRound(int64_t run_id, int32_t round,
                                                   const v1::RunSpec& spec,
                                                   const TensorBundle& global);
  // Saves c_i+ and returns the trained weights followed by it.
  absl::StatusOr<TensorBundle> FinishScaffoldRound(int64_t run_id, int32_t round,
                                                   const ScaffoldRound& scaffold, double lr,
                                                   int64_t steps, const TensorBundle& trained);
  // Site-level DP: clips the trained change to S and adds this site's
  // noise share when the noise is distributed.
  absl::Status PrivatizeSiteUpdate(int64_t run_id, int32_t round, const v1::RunSpec& spec,
                                   double task_clip, const TensorBundle& global,
                                   LocalUpdate* update);

  SiteWorkerOptions options_;
  int threads_in_use_ = 0;  // what UseCpuShare last set; 0 before
  ArtifactSource artifact_source_;
  SitePolicy policy_;
  std::optional<SiteDataset> data_;
  DataGeometry data_geometry_;
  std::string data_version_;        // options_.data_version() when data_ was read
  std::string unreadable_version_;  // the last changed version that could not be read
  // data_'s sizes, for the hello on the connection's thread.
  std::atomic<int64_t> train_count_;
  std::atomic<int64_t> val_count_;
  std::atomic<int64_t> declared_train_examples_{0};  // 0: no hello yet
  ActiveLearningLoop active_learning_;
  std::map<int64_t, std::unique_ptr<ml::LocalModel>> models_;
  PrivacyLedger privacy_ledger_;
  ScaffoldControlStore scaffold_controls_;
  std::unique_ptr<privacy::NoiseSource> own_dp_noise_;  // when options_.dp_noise is null
};

}  // namespace fedmi

#endif  // FEDMI_CLIENT_SITE_WORKER_H_
