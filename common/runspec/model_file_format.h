// What a fedmi model file promises about its input, and where its model
// card lives (docs/models.md, "Using a model file").
//
// Every fedmi network reads pixel values p in [0, 255] as
//   x = (p / kPixelScale - kInputMean) / kInputStd,
// i.e. [-1, 1]. These constants are the only place that says so: training
// and prediction (client/ml/torch_support.h, ToModelInput), the
// `preprocess` method of every .pt fedmi writes and the model
// card's "normalization" all take them from here.
//
// Constants only; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_MODEL_FILE_FORMAT_H_
#define FEDMI_COMMON_RUNSPEC_MODEL_FILE_FORMAT_H_

namespace fedmi {

inline constexpr double kPixelScale = 255.0;
inline constexpr double kInputMean = 0.5;
inline constexpr double kInputStd = 0.5;

// The model card, a JSON object (cli/model_card.h): a TorchScript archive
// holds it as this extra file (Python: torch.jit.load(path,
// _extra_files={name: ""})); a .safetensors file as this "__metadata__"
// entry, and a mobile archive as this entry of its metadata file (both a
// JSON string).
inline constexpr char kModelCardFile[] = "fedmi_model_card.json";
inline constexpr char kModelCardMetadataKey[] = "model_card";
// The card's "format" value, which tells a fedmi card from any other JSON.
inline constexpr char kModelCardFormat[] = "fedmi-model-card";
inline constexpr int kModelCardVersion = 1;

// Methods every .pt fedmi writes has beside forward (a mobile .ptl keeps
// forward only):
// preprocess(raw pixels) -> forward's input, and predict_proba(raw pixels)
// -> class probabilities (softmax over the classes; a segmentation model:
// each pixel's foreground probability).
inline constexpr char kPreprocessMethod[] = "preprocess";
inline constexpr char kPredictProbaMethod[] = "predict_proba";

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_MODEL_FILE_FORMAT_H_
