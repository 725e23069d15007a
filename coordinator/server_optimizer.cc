// Server optimizers: one streamed pass over the global model, the aggregate
// and the previous state per step (coordinator/server_optimizer.h).
//
// The state is float32, like the model it moves: every new weight is
// rounded to float32 anyway, and PyTorch and Flower keep their optimizer
// moments in the parameters' precision. Each element's update is computed in
// double and rounded once, so the only rounding between steps is the one the
// stored state file makes, and a resumed run reads exactly those floats.
#include "coordinator/server_optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/runspec/strategy_names.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

using aggregator_internal::kFloatBytes;
using aggregator_internal::LoadFloat;
using aggregator_internal::ReadExactly;

constexpr char kKindTensor[] = "server_optimizer";
constexpr char kStepTensor[] = "step";
constexpr size_t kChunkFloats = kMaxChunkBytes / kFloatBytes;

struct KindName {
  ServerOptimizerKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {ServerOptimizerKind::kFedAvg, kFedAvgServerOptimizer},
    {ServerOptimizerKind::kFedAvgM, kFedAvgMServerOptimizer},
    {ServerOptimizerKind::kFedAdam, kFedAdamServerOptimizer},
    {ServerOptimizerKind::kFedYogi, kFedYogiServerOptimizer},
    {ServerOptimizerKind::kFedAdagrad, kFedAdagradServerOptimizer},
};

// State floats per optimized parameter: u for fedavgm, (m, v) otherwise.
size_t StateFloats(ServerOptimizerKind kind) { return IsAdaptive(kind) ? 2 : 1; }

std::string StatePrefix(ServerOptimizerKind kind) {
  return IsAdaptive(kind) ? "moments/" : "momentum/";
}

TensorSpec StateSpecOf(ServerOptimizerKind kind, const TensorSpec& model_tensor) {
  TensorSpec spec{StatePrefix(kind) + model_tensor.name, DType::kFloat32, model_tensor.shape};
  if (IsAdaptive(kind)) spec.shape.push_back(2);
  return spec;
}

void StoreFloat(char* bytes, float value) { std::memcpy(bytes, &value, kFloatBytes); }

absl::Status CheckUnitInterval(const char* name, double value) {
  if (value >= 0 && value < 1) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("server optimizer ", name, " must be in [0, 1), got ", value));
}

// Copies (or, with a null `to`, skips) the next `bytes` body bytes of `from`.
absl::Status CopyBody(BundleFileReader& from, BundleFileWriter* to, uint64_t bytes,
                      std::vector<char>& buffer, absl::string_view what) {
  while (bytes > 0) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes, buffer.size()));
    RETURN_IF_ERROR(ReadExactly(from, buffer.data(), want, what));
    if (to != nullptr) RETURN_IF_ERROR(to->Write(buffer.data(), want));
    bytes -= want;
  }
  return absl::OkStatus();
}

// The update of one parameter, in double. Reads its old state (the
// StateFloats(kind) floats at `state`) and returns the new weight with the
// new state in `next`, unrounded.
class ParameterUpdate {
 public:
  explicit ParameterUpdate(const ServerOptimizerOptions& options) : o_(options) {}

  // The initial state: u = 0, or m = 0 and v = tau^2.
  void Initial(char* state) const {
    StoreFloat(state, 0.0f);
    if (IsAdaptive(o_.kind)) StoreFloat(state + kFloatBytes, static_cast<float>(o_.tau * o_.tau));
  }

  double Apply(double x, double aggregate, const char* state, double next[2]) const {
    const double delta = aggregate - x;
    if (o_.kind == ServerOptimizerKind::kFedAvgM) {
      const double u = o_.momentum * LoadFloat(state) + delta;
      next[0] = u;
      return x + o_.server_lr * u;
    }
    const double m = o_.beta1 * LoadFloat(state) + (1 - o_.beta1) * delta;
    const double v = LoadFloat(state + kFloatBytes);
    const double delta2 = delta * delta;
    switch (o_.kind) {
      case ServerOptimizerKind::kFedAdagrad:
        next[1] = v + delta2;
        break;
      case ServerOptimizerKind::kFedAdam:
        next[1] = o_.beta2 * v + (1 - o_.beta2) * delta2;
        break;
      default: {  // fedyogi; sign(0) = 0 leaves v as it is
        const double sign = v > delta2 ? 1.0 : (v < delta2 ? -1.0 : 0.0);
        next[1] = v - (1 - o_.beta2) * delta2 * sign;
        break;
      }
    }
    next[0] = m;
    return x + o_.server_lr * m / (std::sqrt(next[1]) + o_.tau);
  }

 private:
  const ServerOptimizerOptions& o_;
};

// Whether `value` rounds to a finite float (casting one that does not is
// undefined behaviour).
bool FitsFloat(double value) {
  return std::isfinite(value) && std::fabs(value) <= std::numeric_limits<float>::max();
}

absl::Status NotFinite(absl::string_view what, const TensorSpec& spec, uint64_t element,
                       double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is ", value, " in tensor '", spec.name, "' at element ", element));
}

// One step's files and reusable chunk buffers. Walks the model's tensors in
// order; the state file holds one buffer per float32 tensor in that order.
class StepStream {
 public:
  StepStream(const ServerOptimizerOptions& options, BundleFileReader& global,
             BundleFileReader& aggregate, BundleFileReader* state, BundleFileWriter& model_out,
             BundleFileWriter& state_out)
      : options_(options),
        update_(options),
        state_stride_(StateFloats(options.kind) * kFloatBytes),
        global_(global),
        aggregate_(aggregate),
        state_(state),
        model_out_(model_out),
        state_out_(state_out),
        global_chunk_(kMaxChunkBytes),
        aggregate_chunk_(kMaxChunkBytes),
        state_chunk_(kChunkFloats * state_stride_) {}

  // A tensor the step does not move (not float32, or not stepped): its weights
  // come from the aggregate, and a float32 one keeps its state.
  absl::Status Keep(const TensorSpec& spec) {
    RETURN_IF_ERROR(CopyBody(global_, nullptr, spec.ByteSize(), global_chunk_, "global model"));
    RETURN_IF_ERROR(
        CopyBody(aggregate_, &model_out_, spec.ByteSize(), aggregate_chunk_, "aggregate"));
    if (spec.dtype != DType::kFloat32) return absl::OkStatus();
    return ForEachStateChunk(spec, [&](uint64_t, size_t count) {
      return state_out_.Write(state_chunk_.data(), count * state_stride_);
    });
  }

  absl::Status StepTensor(const TensorSpec& spec) {
    return ForEachStateChunk(spec, [&](uint64_t begin, size_t count) -> absl::Status {
      RETURN_IF_ERROR(
          ReadExactly(global_, global_chunk_.data(), count * kFloatBytes, "global model"));
      RETURN_IF_ERROR(
          ReadExactly(aggregate_, aggregate_chunk_.data(), count * kFloatBytes, "aggregate"));
      for (size_t i = 0; i < count; ++i) {
        const float x = LoadFloat(global_chunk_.data() + i * kFloatBytes);
        const float a = LoadFloat(aggregate_chunk_.data() + i * kFloatBytes);
        if (!std::isfinite(x)) return NotFinite("global weight", spec, begin + i, x);
        if (!std::isfinite(a)) return NotFinite("aggregate weight", spec, begin + i, a);
        char* state = state_chunk_.data() + i * state_stride_;
        double next[2] = {0, 0};
        const double updated = update_.Apply(x, a, state, next);
        if (!FitsFloat(updated)) {
          return NotFinite(absl::StrCat(ServerOptimizerName(options_.kind), "'s new weight"), spec,
                           begin + i, updated);
        }
        for (size_t k = 0; k < StateFloats(options_.kind); ++k) {
          if (!FitsFloat(next[k])) {
            return NotFinite(absl::StrCat(ServerOptimizerName(options_.kind), "'s new state"), spec,
                             begin + i, next[k]);
          }
          StoreFloat(state + k * kFloatBytes, static_cast<float>(next[k]));
        }
        // The global chunk is read; reuse it for the new weights.
        StoreFloat(global_chunk_.data() + i * kFloatBytes, static_cast<float>(updated));
      }
      RETURN_IF_ERROR(model_out_.Write(global_chunk_.data(), count * kFloatBytes));
      return state_out_.Write(state_chunk_.data(), count * state_stride_);
    });
  }

 private:
  // Loads the old state of `spec` (float32) chunk by chunk into
  // state_chunk_, or the initial state without an old one, and calls
  // `use(first element, element count)` for each chunk.
  template <typename Use>
  absl::Status ForEachStateChunk(const TensorSpec& spec, Use use) {
    const uint64_t elements = static_cast<uint64_t>(spec.NumElements());
    for (uint64_t begin = 0; begin < elements; begin += kChunkFloats) {
      const size_t count = static_cast<size_t>(std::min<uint64_t>(kChunkFloats, elements - begin));
      if (state_ != nullptr) {
        RETURN_IF_ERROR(ReadExactly(*state_, state_chunk_.data(), count * state_stride_,
                                    "server optimizer state"));
      } else {
        for (size_t i = 0; i < count; ++i) update_.Initial(state_chunk_.data() + i * state_stride_);
      }
      RETURN_IF_ERROR(use(begin, count));
    }
    return absl::OkStatus();
  }

  const ServerOptimizerOptions& options_;
  ParameterUpdate update_;
  const size_t state_stride_;  // state bytes per parameter
  BundleFileReader& global_;
  BundleFileReader& aggregate_;
  BundleFileReader* state_;  // null before the first step
  BundleFileWriter& model_out_;
  BundleFileWriter& state_out_;
  std::vector<char> global_chunk_;     // global weights in, new weights out
  std::vector<char> aggregate_chunk_;  // aggregate weights
  std::vector<char> state_chunk_;      // state in, new state out
};

std::vector<TensorSpec> HeaderSpecs(ServerOptimizerKind kind) {
  const int64_t name_bytes = static_cast<int64_t>(std::strlen(ServerOptimizerName(kind)));
  return {TensorSpec{kKindTensor, DType::kUInt8, {name_bytes}},
          TensorSpec{kStepTensor, DType::kInt64, {1}}};
}

// Reads the header tensors of a state file: its kind (checked against
// `kind`) and step count. Leaves `state` at its first per-tensor buffer.
absl::StatusOr<int64_t> ReadStateHeader(ServerOptimizerKind kind, BundleFileReader& state) {
  const std::vector<TensorSpec>& specs = state.specs();
  if (specs.size() < 2 || specs[0].name != kKindTensor || specs[0].dtype != DType::kUInt8 ||
      specs[0].shape.size() != 1 || specs[0].shape[0] > 64 || !(specs[1] == HeaderSpecs(kind)[1])) {
    return absl::FailedPreconditionError(
        "the file given as server optimizer state is not one (it lacks the "
        "'server_optimizer' and 'step' tensors)");
  }
  std::string name(static_cast<size_t>(specs[0].shape[0]), '\0');
  RETURN_IF_ERROR(ReadExactly(state, name.data(), name.size(), "server optimizer state"));
  if (name != ServerOptimizerName(kind)) {
    return absl::FailedPreconditionError(absl::StrCat("the server optimizer state is of '", name,
                                                      "', this run's server optimizer is '",
                                                      ServerOptimizerName(kind), "'"));
  }
  char step_bytes[sizeof(int64_t)];
  RETURN_IF_ERROR(ReadExactly(state, step_bytes, sizeof(step_bytes), "server optimizer state"));
  int64_t steps;
  std::memcpy(&steps, step_bytes, sizeof(steps));  // little-endian, as every body
  if (steps < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("the server optimizer state counts ", steps, " steps"));
  }
  return steps;
}

}  // namespace

bool IsAdaptive(ServerOptimizerKind kind) {
  return kind == ServerOptimizerKind::kFedAdam || kind == ServerOptimizerKind::kFedYogi ||
         kind == ServerOptimizerKind::kFedAdagrad;
}

const char* ServerOptimizerName(ServerOptimizerKind kind) {
  for (const KindName& entry : kKinds) {
    if (entry.kind == kind) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<ServerOptimizerKind> ParseServerOptimizerKind(absl::string_view name) {
  std::string known;
  for (const KindName& entry : kKinds) {
    if (name == entry.name) return entry.kind;
    absl::StrAppend(&known, known.empty() ? "" : ", ", entry.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown server optimizer '", name, "'; known: ", known));
}

ServerOptimizerOptions DefaultServerOptimizerOptions(ServerOptimizerKind kind) {
  ServerOptimizerOptions options;
  options.kind = kind;
  if (kind == ServerOptimizerKind::kFedAdam || kind == ServerOptimizerKind::kFedAdagrad) {
    options.server_lr = 0.1;
  } else if (kind == ServerOptimizerKind::kFedYogi) {
    options.server_lr = 0.01;
  }
  return options;
}

absl::Status ValidateServerOptimizerOptions(const ServerOptimizerOptions& options) {
  const char* name = ServerOptimizerName(options.kind);
  if (options.kind == ServerOptimizerKind::kFedAvg) {
    if (options.server_lr == 1.0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "server optimizer fedavg replaces the model with the aggregate and takes no server_lr "
        "(got ",
        options.server_lr, "); use fedavgm with momentum 0 for a server learning rate"));
  }
  if (!(options.server_lr > 0) || !std::isfinite(options.server_lr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server optimizer ", name, ": server_lr must be finite and > 0, got ", options.server_lr));
  }
  if (options.kind == ServerOptimizerKind::kFedAvgM) {
    return CheckUnitInterval("momentum", options.momentum);
  }
  RETURN_IF_ERROR(CheckUnitInterval("beta1", options.beta1));
  if (options.kind != ServerOptimizerKind::kFedAdagrad) {
    RETURN_IF_ERROR(CheckUnitInterval("beta2", options.beta2));
  }
  if (!(options.tau > 0) || !std::isfinite(options.tau)) {
    return absl::InvalidArgumentError(
        absl::StrCat("server optimizer ", name, ": tau must be finite and > 0, got ", options.tau));
  }
  // The state starts at v = tau^2 in float32; casting a larger double to
  // float is undefined.
  if (!FitsFloat(options.tau * options.tau)) {
    return absl::InvalidArgumentError(absl::StrCat("server optimizer ", name,
                                                   ": tau^2 must fit a float32 (v starts at it), "
                                                   "got tau ",
                                                   options.tau));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerOptimizer> ServerOptimizer::Create(const ServerOptimizerOptions& options) {
  RETURN_IF_ERROR(ValidateServerOptimizerOptions(options));
  return ServerOptimizer(options);
}

absl::StatusOr<ServerStep> ServerOptimizer::Step(const ModelStore& store,
                                                 const std::string& global_sha256,
                                                 const std::string& aggregate_sha256,
                                                 const std::string& state_sha256,
                                                 const std::set<std::string>& not_stepped) const {
  if (replaces_model()) return ServerStep{aggregate_sha256, ""};
  ASSIGN_OR_RETURN(std::string global_path, store.PathFor(global_sha256));
  ASSIGN_OR_RETURN(std::string aggregate_path, store.PathFor(aggregate_sha256));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global, BundleFileReader::Open(global_path));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> aggregate,
                   BundleFileReader::Open(aggregate_path));
  RETURN_IF_ERROR(CheckSpecsMatch(aggregate->specs(), global->specs(), "aggregate"));

  // The state holds one buffer per float32 tensor, in the model's order,
  // whether or not the tensor is stepped this round.
  std::vector<TensorSpec> state_specs = HeaderSpecs(options_.kind);
  for (const TensorSpec& spec : aggregate->specs()) {
    if (spec.dtype == DType::kFloat32) state_specs.push_back(StateSpecOf(options_.kind, spec));
  }
  std::unique_ptr<BundleFileReader> state;
  int64_t steps = 0;
  if (!state_sha256.empty()) {
    ASSIGN_OR_RETURN(std::string state_path, store.PathFor(state_sha256));
    ASSIGN_OR_RETURN(state, BundleFileReader::Open(state_path));
    ASSIGN_OR_RETURN(steps, ReadStateHeader(options_.kind, *state));
    if (absl::Status fits = CheckSpecsMatch(state->specs(), state_specs, "server optimizer state");
        !fits.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(fits.message(), " (the state does not fit this model)"));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> model_out,
                   store.NewWriter(aggregate->specs()));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> state_out, store.NewWriter(state_specs));
  const char* name = ServerOptimizerName(options_.kind);
  RETURN_IF_ERROR(state_out->Write(name, std::strlen(name)));
  const int64_t new_steps = steps + 1;
  char step_bytes[sizeof(int64_t)];
  std::memcpy(step_bytes, &new_steps, sizeof(new_steps));
  RETURN_IF_ERROR(state_out->Write(step_bytes, sizeof(step_bytes)));

  StepStream stream(options_, *global, *aggregate, state.get(), *model_out, *state_out);
  for (const TensorSpec& spec : aggregate->specs()) {
    if (spec.dtype == DType::kFloat32 && not_stepped.count(spec.name) == 0) {
      RETURN_IF_ERROR(stream.StepTensor(spec));
    } else {
      RETURN_IF_ERROR(stream.Keep(spec));
    }
  }

  std::string model_digest;
  std::string state_digest;
  RETURN_IF_ERROR(model_out->Commit(&model_digest).status());
  RETURN_IF_ERROR(state_out->Commit(&state_digest).status());
  return ServerStep{HexEncode(model_digest), HexEncode(state_digest)};
}

absl::StatusOr<int64_t> ServerOptimizer::StepsTaken(const ModelStore& store,
                                                    const std::string& state_sha256) const {
  if (state_sha256.empty()) return 0;
  ASSIGN_OR_RETURN(std::string path, store.PathFor(state_sha256));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> state, BundleFileReader::Open(path));
  return ReadStateHeader(options_.kind, *state);
}

}  // namespace fedmi
