// A trainable model of one registered architecture, backed by LibTorch.
//
// This header deliberately includes no LibTorch header, so that only the
// few translation units in client/ml/ pay LibTorch's compile cost. Weights
// cross this boundary as TensorBundles (the wire format), in a fixed order:
// parameters then buffers, as the architecture registers them.
//
// Architectures are built as TorchScript modules, so a model saved with
// SaveTorchScript() loads in C++ (torch::jit::load) and in Python
// (torch.jit.load) with no fedmi code.
//
// Not thread-safe: one LocalModel per thread. Every LibTorch exception is
// caught inside and returned as a Status naming the cause.
#ifndef FEDMI_CLIENT_ML_LOCAL_MODEL_H_
#define FEDMI_CLIENT_ML_LOCAL_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/data/dataset.h"
#include "common/tensor/tensor_bundle.h"

namespace fedmi::ml {

struct ModelConfig {
  std::string arch = "cnn";  // see ListArchitectures()
  int64_t num_classes = 2;
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  uint64_t seed = 0;  // initial weights are a pure function of config + seed
  // U-Net only (0 elsewhere): channels of the first block and number of
  // poolings; 0 means the architecture's default (32 and 4). Stored
  // resolved; models saved before these existed read back as 0.
  int64_t base_width = 0;
  int64_t depth = 0;
};

// How DP-SGD computes each example's gradient. All give the same numbers
// (to float rounding):
//   kLayerwise   one batched forward and backward pass; each layer's
//                per-example gradients from its inputs and output gradients.
//                The fastest; modules without the methods it needs (saved
//                before they existed) fall back to microbatching.
//   kVectorized  one backward pass through a copy of the parameters per
//                example (grouped convolutions).
//   kMicrobatch  one backward pass per example: any module whose examples do
//                not interact; the baseline the benchmark compares against.
enum class PerExampleMethod { kVectorized, kMicrobatch, kLayerwise };

// Sample-level differential privacy (DP-SGD, Abadi et al. 2016): each step
// takes every example with probability sample_rate (Poisson), clips each
// example's gradient to L2 norm clip_norm, adds Gaussian noise of standard
// deviation noise_multiplier * clip_norm to the sum and divides by the
// expected batch size. The architecture must be DP-compatible
// (IsDpCompatibleModel). Class balancing is off under DP: weights computed
// from the site's label counts would let one example change every other
// example's contribution.
struct DpSgdOptions {
  double clip_norm = 1;
  double noise_multiplier = 0;  // 0: clipping only, no privacy (tests)
  double sample_rate = 0;       // q in (0, 1]
  int64_t steps = 0;            // steps of this call, for all epochs together
  // The fastest on CPUs (docs/privacy.md, Performance).
  PerExampleMethod method = PerExampleMethod::kLayerwise;
  // 0 (always, outside tests): which examples a step takes and the noise
  // come from the kernel's CSPRNG (getrandom), so that nobody, whatever
  // they know of the run, can predict the sample or subtract the noise.
  // Non-zero: both come from a generator seeded with it, reproducible and
  // with no privacy at all, for tests.
  uint64_t secret_seed = 0;
};

// Random changes to each training image, drawn per example from
// TrainOptions::seed (same seed, same batches) and applied to the batch
// tensor: crop, rotation, flip and shift together as one affine resampling
// (bilinear, edges replicated), then brightness and contrast. A parameter at
// its "off" value draws nothing, so switching one transform on or off
// changes no other's draws. The default is the shift alone, as before these
// options existed: whole-pixel moves with no interpolation, so earlier runs
// reproduce bit for bit. Under DP-SGD each example is augmented before its
// gradient is taken, which does not change the privacy accounting.
struct AugmentationOptions {
  // Moves each image by up to this many pixels per axis; 0..32, 0: off.
  // Whole pixels when it is the only geometric transform, else continuous.
  int max_shift = 2;
  // Random resized crop: keeps a region of a random share of the area in
  // [crop_min_scale, 1] and of width/height ratio log-uniform in
  // [1 / crop_max_aspect, crop_max_aspect], and stretches it back to the
  // model's input size. crop_min_scale in [0.08, 1], crop_max_aspect in
  // [1, 2]; both at 1: off. A side that would exceed the image is cut to
  // it (the region is then smaller than drawn).
  double crop_min_scale = 1;
  double crop_max_aspect = 1;
  // Rotates by an angle uniform in +-max_rotation_degrees; 0..180, 0: off.
  double max_rotation_degrees = 0;
  // Mirrors left-right with probability 1/2. Off for chest X-rays, where
  // the heart's side is anatomy, not noise.
  bool horizontal_flip = false;
  // Multiply intensity (in [0, 1] pixel units) by a factor uniform in
  // [1 - brightness, 1 + brightness], then scale its spread around the
  // image's mean by one uniform in [1 - contrast, 1 + contrast]; results
  // are clamped to the pixel range. Each in [0, 1), 0: off.
  double brightness = 0;
  double contrast = 0;
  // Cutout (DeVries and Taylor 2017): sets a square of side cutout times
  // the image's shorter side, centred anywhere in the image (cut by its
  // edges), to mid-grey, after brightness and contrast. In [0, 1), 0: off.
  // Images only: a segmentation mask keeps its pixels.
  double cutout = 0;
};

// InvalidArgument naming the first option outside its range.
absl::Status CheckAugmentationOptions(const AugmentationOptions& options);

struct TrainOptions {
  int epochs = 1;
  int batch_size = 64;
  double lr = 1e-3;
  std::string optimizer = "adam";  // "adam" | "sgd" (momentum sgd_momentum)
  // SCAFFOLD needs plain SGD: its control variates divide the distance SGD
  // moved by the steps it took, which momentum would inflate.
  double sgd_momentum = 0.9;
  uint64_t seed = 0;  // shuffling, dropout, augmentation
  // Class-weighted cross-entropy: class c weighs n / (k * n_c) by this data
  // set's own label counts, so a site's majority class does not swamp the
  // loss. On PneumoniaMNIST, whose test split has more normal cases than
  // train, it raised test accuracy from about 0.85 to 0.89 at equal AUC.
  bool balance_classes = true;
  AugmentationOptions augmentation;
  // >= 0. Adam becomes AdamW (Loshchilov and Hutter 2019: each step also
  // shrinks every parameter by lr * weight_decay, outside the adaptive
  // scaling); SGD adds weight_decay * parameter to the gradient (L2). Under
  // DP-SGD the optimizer applies it to the noised gradient's step: it reads
  // only the parameters, so privacy is unchanged. Applies to all parameters.
  double weight_decay = 0;
  // Called after each batch: epoch (0-based), examples seen this epoch, total
  // examples per epoch, running mean loss. Under DP: 0, steps done, steps in
  // all. May be empty.
  std::function<void(int, int64_t, int64_t, double)> progress;
  // Set: train with DP-SGD; `epochs` is then ignored for dp->steps.
  std::optional<DpSgdOptions> dp;
  // Parameters whose wire names start with one of these are not trained:
  // no gradient, no optimizer step, no weight decay (transfer learning).
  std::vector<std::string> frozen_prefixes;
  // FedProx (Li et al. 2020): > 0 adds proximal_mu * (w - w0) to each trained
  // parameter's gradient, the gradient of mu / 2 * ||w - w0||^2, where w0 are
  // the weights when Train starts (the round's global model). The loss it
  // reports stays the data loss.
  double proximal_mu = 0;
  // Empty, or one weight >= 0 per training image, multiplying its term of
  // the class-weighted mean loss (the mean's divisor ignores them, so 0
  // gives an image no loss term, though it still fills its batch and its
  // BatchNorm statistics, and 0.2 counts it a fifth): less for images whose
  // label is suspect or that carry a pseudo-label. Not with DP-SGD or
  // segmentation.
  std::vector<float> example_weights;
  // > 0 (with example_weights): the summary's loss and accuracy cover only
  // the first reported_rows images, the labelled ones, when pseudo-labelled
  // images follow them. The weights' effect on training is unchanged.
  int64_t reported_rows = 0;
  // FixMatch-style consistency (Sohn et al. 2020): > 0, the rows from this
  // one on (pseudo-labelled images after the labelled ones) are augmented
  // with strong_augmentation instead of `augmentation`, so the model learns
  // to give a heavily altered image the class its teacher gave the image.
  // 0: every row takes `augmentation`. Not with DP-SGD or segmentation.
  int64_t strongly_augmented_from = 0;
  AugmentationOptions strong_augmentation;
  // SCAFFOLD: added to the gradient of the parameter of the same wire name
  // at every step (c - c_i, client/scaffold.h). Names must be trained
  // parameters, with their shapes; empty: no offset.
  TensorBundle gradient_offset;
};

struct TrainSummary {
  int64_t examples = 0;  // examples per epoch
  double loss = 0;       // mean (class-weighted) loss of the last epoch
  double accuracy = 0;   // training accuracy of the last epoch
  // DP-SGD only: steps taken and the share of example gradients that were
  // longer than clip_norm (a clip far below 1 or at 1 suggests another C).
  int64_t dp_steps = 0;
  double clipped_fraction = 0;
  int64_t steps = 0;  // optimizer steps taken (batches over all epochs)
};

// What LocalModel::Score computes for each image (active learning, label
// audits, pseudo-labels). The embedding is the input of the model's last
// linear layer (the cnn: fc2's 128 features); BALD's Monte-Carlo dropout
// drops those features at `mc_dropout` (the cnn's own rate there) and
// applies the last layer again, so BatchNorm statistics are never touched.
struct ScoreOptions {
  int mc_passes = 0;         // 0: no Monte-Carlo samples
  double mc_dropout = 0.25;  // in [0, 1)
  bool embeddings = false;
  uint64_t seed = 0;  // the dropout masks
  int batch_size = 256;
};

struct ImageScores {
  int64_t rows = 0;
  int64_t num_classes = 0;
  std::vector<float> probabilities;  // rows x num_classes, eval mode (softmax)
  int mc_passes = 0;
  std::vector<float> mc_probabilities;  // mc_passes x rows x num_classes
  int64_t embedding_dim = 0;
  std::vector<float> embeddings;  // rows x embedding_dim
};

// How LocalModel::SaveForMobile stores the model (client/ml/mobile_model.h).
enum class MobileQuantization {
  kNone,         // float32, predicts as the TorchScript model does
  kDynamicInt8,  // linear layers int8 (weights stored as int8, dynamic activations)
};

// Classification fills prob_positive and predicted; segmentation fills
// masks (and leaves those two empty).
struct Predictions {
  std::vector<float> prob_positive;  // P(class 1) per example (binary tasks)
  std::vector<int64_t> predicted;    // argmax class per example
  // Segmentation: height x width bytes per example, in the data's order,
  // 1 where the foreground probability is above 1/2 (logit > 0).
  std::vector<uint8_t> masks;
  // Classification: mean cross-entropy against the labels. Segmentation:
  // mean per-pixel BCE plus 1 - soft Dice pooled over the data set
  // (client/ml/segmentation.h).
  double loss = 0;
};

// TrainableModelNames() (common/runspec/model_names.h).
std::vector<std::string> ListArchitectures();

// The float parameters and buffers of any TorchScript file (a fedmi model,
// a scripted torchvision network), by dotted name, parameters first:
// initial weights for transfer learning. Runs no code of the file.
absl::StatusOr<TensorBundle> ReadTorchScriptWeights(const std::string& path);

// Sets LibTorch's intra-op thread count; threads <= 0 means all cores.
void SetThreads(int threads);
// "cuda" when torch::cuda::is_available(), else "cpu".
std::string DefaultDevice();

class LocalModel {
 public:
  // InvalidArgument for an unknown architecture, listing the known ones.
  static absl::StatusOr<std::unique_ptr<LocalModel>> Create(const ModelConfig& config);
  // Loads a file written by SaveTorchScript().
  static absl::StatusOr<std::unique_ptr<LocalModel>> LoadTorchScript(const std::string& path);
  // A user's TorchScript module (bring your own model, RunSpec
  // model_file_sha256), from the file's bytes: its forward must map a batch
  // of config.channels x height x width images to logits [N,
  // config.num_classes] (segmentation: mask logits [N, 1, height, width]).
  // That is tried on a batch of two blank images before anything else;
  // InvalidArgument saying what the forward gave or why it failed, and what
  // the run needs. Weights are its float parameters and buffers, recursively,
  // by their dotted names; other buffers stay as the file has them.
  static absl::StatusOr<std::unique_ptr<LocalModel>> LoadUserModule(const std::string& file_bytes,
                                                                    const ModelConfig& config,
                                                                    bool segmentation);
  ~LocalModel();

  const ModelConfig& config() const;

  // Weights in wire order, float32.
  absl::StatusOr<TensorBundle> ExportWeights() const;
  // Replaces every weight; InvalidArgument naming the first tensor whose
  // name, dtype or shape differs from this architecture's. Tensors after the
  // weights whose names start with kScaffoldControlPrefix (a SCAFFOLD run's
  // control variates, common/runspec/strategy_names.h) are not weights and
  // are skipped.
  absl::Status ImportWeights(const TensorBundle& weights);
  // Wire names of the trainable parameters (not buffers), in wire order.
  std::vector<std::string> ParameterNames() const;

  // True for a segmentation model: a built-in one whose ModelInfo says
  // ModelTask::kSegmentation, or a user's module loaded with
  // segmentation = true (remembered in the module as the string attribute
  // fedmi_task = "segmentation", so a saved one reloads as such).
  bool is_segmentation() const;

  // Classification: class-weighted cross-entropy against the labels.
  // Segmentation: soft Dice + BCE against data.masks (client/ml/
  // segmentation.h), InvalidArgument when `data` has no masks; no class
  // balancing, augmentation moves the masks with the images
  // (AugmentWithMask), and DP-SGD is refused (InvalidArgument).
  absl::StatusOr<TrainSummary> Train(const ImageSet& data, const TrainOptions& options);
  // Segmentation: `data` may have masks (then the loss is computed
  // against them) or not (new images; the loss is then NaN).
  absl::StatusOr<Predictions> Predict(const ImageSet& data, int batch_size = 256);

  // Class probabilities and, as asked, Monte-Carlo dropout samples and
  // embeddings of every image; labels are not read (unlabelled images are
  // welcome). InvalidArgument for a segmentation model, options out of
  // range, or (embeddings, mc_passes) a model whose forward has no last
  // linear layer outside control flow. Implemented in image_scores.cc.
  absl::StatusOr<ImageScores> Score(const ImageSet& data, const ScoreOptions& options);

  // Number of trainable parameter elements (buffers not counted).
  int64_t ParameterCount() const;

  // TorchScript archive holding architecture, weights and ModelConfig
  // (as module attributes), written to a temp file and renamed. Each entry
  // of `metadata` becomes a string attribute "fedmi_<key>" (in Python:
  // torch.jit.load(path).fedmi_dp_epsilon), except the model card
  // (kModelCardMetadataKey, common/runspec/model_file_format.h), which
  // becomes the extra file kModelCardFile. The module gains preprocess and
  // predict_proba (DefineInferenceMethods in architectures.h) if it lacks
  // them.
  absl::Status SaveTorchScript(const std::string& path,
                               const std::map<std::string, std::string>& metadata = {}) const;

  // A ".ptl" for PyTorch's lite interpreter, for phones and edge devices:
  // the model frozen for inference, with `metadata` and the config in the
  // archive's extra file (see client/ml/mobile_model.h, which reads it
  // back), written to a temp file and renamed. NotFound when the directory
  // does not exist; FailedPrecondition for kDynamicInt8 when this LibTorch
  // has no quantized engine.
  absl::Status SaveForMobile(const std::string& path,
                             const std::map<std::string, std::string>& metadata = {},
                             MobileQuantization quantization = MobileQuantization::kNone) const;

  // The module's string attributes "fedmi_<key>", as key -> value: what
  // SaveTorchScript was given for a loaded file (e.g. dp_epsilon,
  // operating_threshold), plus "arch", and the model card of a loaded file
  // that has one. The same keys a .safetensors file carries in its
  // "__metadata__".
  absl::StatusOr<std::map<std::string, std::string>> Metadata() const;

 private:
  struct Impl;
  explicit LocalModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_LOCAL_MODEL_H_
