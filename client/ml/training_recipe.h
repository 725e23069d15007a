// Internal to fedmi_ml: what local training does to each batch besides the
// gradient step, namely augmentation (AugmentationOptions) and the optimizer
// with its weight decay. Shared by LocalModel's training loop and DP-SGD.
// Includes LibTorch; only fedmi_ml's own translation units and its tests
// include it.
//
// The random parameters and the transforms they drive are separate
// functions, so that tests can check each transform with chosen parameters.
#ifndef FEDMI_CLIENT_ML_TRAINING_RECIPE_H_
#define FEDMI_CLIENT_ML_TRAINING_RECIPE_H_

#include <torch/optim.h>
#include <torch/script.h>

#include <memory>
#include <vector>

#include "client/ml/local_model.h"

namespace fedmi::ml {

// One affine resampling per example, each field a float32 tensor of shape
// [n]. The output image is the input's region of size scale_x * W by
// scale_y * H centred offset_x, offset_y pixels right of and below the
// image's centre, mirrored left-right where `mirror` is 1, then rotated
// counter-clockwise (as displayed) by angle_degrees, stretched to W x H.
struct ExampleGeometry {
  torch::Tensor scale_x, scale_y;
  torch::Tensor offset_x, offset_y;
  torch::Tensor angle_degrees;
  torch::Tensor mirror;  // 0 or 1

  // The identity for `n` examples: every output equals its input.
  static ExampleGeometry Identity(int64_t n);
};

// Resamples each image of a float N,C,H,W batch as `geometry` says:
// bilinear, with points outside the image taking the nearest edge pixel.
torch::Tensor WarpBatch(const torch::Tensor& batch, const ExampleGeometry& geometry);

// Brightness, then contrast, per example of a batch scaled to [-1, 1] (as
// ToModelInput makes it): in [0, 1] units v -> v * brightness, then
// v -> mean + (v - mean) * contrast around the image's mean over all its
// channels, clamped to [0, 1]. Each factor is a float32 tensor of shape [n].
torch::Tensor JitterIntensity(const torch::Tensor& batch, const torch::Tensor& brightness,
                              const torch::Tensor& contrast);

// Moves every image of a N,C,H,W batch by an independent whole-pixel offset
// of up to `max_shift` per axis, filling the border by edge replication.
// max_shift must be below both H and W.
torch::Tensor RandomShift(const torch::Tensor& batch, int64_t max_shift, at::Generator& generator);

// Draws each example's geometry for the transforms `options` switches on
// (the identity for the others), from `generator`.
ExampleGeometry DrawGeometry(const AugmentationOptions& options, int64_t n, int64_t height,
                             int64_t width, at::Generator& generator);

// Augments a float N,C,H,W batch scaled to [-1, 1] with parameters drawn
// from `generator`: the same generator state gives the same batch. With
// every transform off it returns `batch` itself. `options` must have passed
// CheckAugmentationOptions, and max_shift must be below H and W.
torch::Tensor Augment(const torch::Tensor& batch, const AugmentationOptions& options,
                      at::Generator& generator);

// Augment for segmentation: `mask` (float N,1,H,W of 0/1, the batch's
// masks) undergoes the same geometric transform as each image, resampled
// bilinearly and thresholded at 1/2, so it stays 0/1 and follows the
// anatomy (close to nearest-neighbour resampling; a whole-pixel shift moves
// it exactly). Brightness and contrast leave it alone. The images and every
// draw are those Augment would give for the same generator state.
torch::Tensor AugmentWithMask(const torch::Tensor& batch, const AugmentationOptions& options,
                              at::Generator& generator, torch::Tensor* mask);

// Sets a square of side side_fraction times the shorter side, centred at
// a point drawn uniformly in each image, to 0 (mid-grey at [-1, 1] scale)
// in every channel of a float N,C,H,W batch.
torch::Tensor CutOut(const torch::Tensor& batch, double side_fraction, at::Generator& generator);

// Augments the batch whose rows of the training set are `rows` (int64 [N]):
// rows from options.strongly_augmented_from on with
// options.strong_augmentation, the others with options.augmentation. With
// strongly_augmented_from at 0, Augment with options.augmentation.
torch::Tensor AugmentRows(const torch::Tensor& batch, const torch::Tensor& rows,
                          const TrainOptions& options, at::Generator& generator);

// Adam (AdamW when options.weight_decay > 0), or SGD with momentum 0.9 and
// L2 weight decay; null for another name (callers check it).
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::vector<torch::Tensor>& params,
                                                       const TrainOptions& options);

}  // namespace fedmi::ml

#endif  // FEDMI_CLIENT_ML_TRAINING_RECIPE_H_
