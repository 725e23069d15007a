// Secure aggregation on the coordinator: a uint32 running sum of masked
// words, unmasked and decoded only in Finish, one chunk at a time.
#include "coordinator/secagg_aggregator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status.h"
#include "common/crypto/sha256.h"
#include "common/secagg/secagg_bundle.h"
#include "coordinator/aggregator_internal.h"

namespace fedmi {
namespace {

constexpr size_t kWordBytes = sizeof(uint32_t);
constexpr size_t kWordsPerChunk = kMaxChunkBytes / kWordBytes;
static_assert(kMaxChunkBytes % kWordBytes == 0, "chunks must hold whole words");
static_assert(sizeof(float) == kWordBytes, "one masked word per float32 parameter");

// Overwrites secrets before their memory is released. The volatile pointer
// keeps the compiler from dropping stores to memory that is about to die.
void Wipe(std::string& secret) {
  volatile char* bytes = secret.data();
  for (size_t i = 0; i < secret.size(); ++i) bytes[i] = 0;
  secret.clear();
}

// The secrets of one Finish, each asked for once and kept until it ends:
// RemoveMasks runs once per chunk, and the caller's functions may do an
// X25519 agreement or a Shamir reconstruction per call.
class CachedSecrets {
 public:
  explicit CachedSecrets(const secagg::UnmaskingSecrets& source) : source_(source) {}
  ~CachedSecrets() {
    for (auto& [site, seed] : self_seeds_) Wipe(seed);
    for (auto& [pair, seed] : pairwise_seeds_) Wipe(seed);
  }
  CachedSecrets(const CachedSecrets&) = delete;
  CachedSecrets& operator=(const CachedSecrets&) = delete;

  // Asks `source` for every secret the unmasking of `input` needs, by running
  // it on zero words; this also validates the graph and the index lists.
  absl::Status Fetch(const UnmaskingInput& input) {
    secagg::UnmaskingSecrets recording;
    recording.self_seed = [this](int survivor) -> absl::StatusOr<std::string> {
      if (!source_.self_seed) {
        return absl::InvalidArgumentError("unmasking needs self-mask seeds, but none were given");
      }
      ASSIGN_OR_RETURN(std::string seed, source_.self_seed(survivor));
      self_seeds_[survivor] = seed;
      return seed;
    };
    recording.pairwise_seed = [this](int dropped, int survivor) -> absl::StatusOr<std::string> {
      if (!source_.pairwise_seed) {
        return absl::InvalidArgumentError(
            "unmasking needs the pairwise seeds of dropped sites, but none were given");
      }
      ASSIGN_OR_RETURN(std::string seed, source_.pairwise_seed(dropped, survivor));
      pairwise_seeds_[{dropped, survivor}] = seed;
      return seed;
    };
    uint32_t unused = 0;
    return secagg::RemoveMasks(input.graph, input.survivors, input.dropped, recording, &unused, 0);
  }

  secagg::UnmaskingSecrets Lookup() const {
    secagg::UnmaskingSecrets lookup;
    lookup.self_seed = [this](int survivor) -> absl::StatusOr<std::string> {
      return self_seeds_.at(survivor);
    };
    lookup.pairwise_seed = [this](int dropped, int survivor) -> absl::StatusOr<std::string> {
      return pairwise_seeds_.at({dropped, survivor});
    };
    return lookup;
  }

 private:
  const secagg::UnmaskingSecrets& source_;
  std::map<int, std::string> self_seeds_;
  std::map<std::pair<int, int>, std::string> pairwise_seeds_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggAggregator>> SecAggAggregator::Create(
    const secagg::QuantizationOptions& options) {
  ASSIGN_OR_RETURN(secagg::FixedPointCodec codec, secagg::FixedPointCodec::Create(options));
  return std::unique_ptr<SecAggAggregator>(new SecAggAggregator(options, codec));
}

absl::Status SecAggAggregator::Begin(int32_t round, const std::vector<TensorSpec>& model_specs,
                                     std::string global_model_path) {
  state_ = State::kIdle;
  std::vector<uint32_t>().swap(sum_);
  accepted_sites_.clear();
  accepted_set_.clear();
  total_weight_ = 0;
  site_dp_.reset();
  round_ = round;

  ASSIGN_OR_RETURN(masked_specs_, MaskedUpdateSpecs(model_specs));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global,
                     BundleFileReader::Open(global_model_path));
    RETURN_IF_ERROR(CheckSpecsMatch(global->specs(), model_specs,
                                    absl::StrCat("global model ", global_model_path)));
  }
  specs_ = model_specs;
  global_model_path_ = std::move(global_model_path);
  const uint64_t parameters = TotalBytes(specs_) / kWordBytes;
  try {
    sum_.assign(parameters, 0);
    sum_.shrink_to_fit();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("secagg round ", round, ": cannot allocate the accumulator for ", parameters,
                     " parameters (", parameters * kWordBytes, " bytes)"));
  } catch (const std::length_error&) {
    return absl::ResourceExhaustedError(absl::StrCat("secagg round ", round, ": a model of ",
                                                     parameters, " parameters is too large"));
  }
  state_ = State::kCollecting;
  return absl::OkStatus();
}

absl::Status SecAggAggregator::Accept(const std::string& site, double weight,
                                      BundleFileReader& masked_update) {
  RETURN_IF_ERROR(CheckCollecting("Accept"));
  if (accepted_set_.count(site) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("secagg round ", round_, ": the update of site '",
                                                 site, "' was already accepted"));
  }
  if (!(weight > 0 && weight <= 1)) {  // also false for NaN
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg round ", round_, ": weight of site '", site, "' is ", weight,
        ", expected a number in (0, 1] (its examples / the run's max examples per site)"));
  }
  if (static_cast<int64_t>(accepted_sites_.size()) >= options_.max_sites) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secagg round ", round_, ": cannot accept site '", site, "': the codec is ",
        "configured for at most ", options_.max_sites, " sites, beyond which the sum could wrap"));
  }
  RETURN_IF_ERROR(CheckSpecsMatch(masked_update.specs(), masked_specs_,
                                  absl::StrCat("masked update of site '", site, "'")));
  // From here on a failure leaves a partial sum behind.
  absl::Status status = AddWords(site, masked_update);
  if (!status.ok()) {
    state_ = State::kBroken;
    return status;
  }
  accepted_sites_.push_back(site);
  accepted_set_.insert(site);
  total_weight_ += weight;
  return absl::OkStatus();
}

absl::Status SecAggAggregator::AddWords(const std::string& site, BundleFileReader& update) {
  const std::string what = absl::StrCat("masked update of site '", site, "'");
  if (update.body_bytes() != sum_.size() * kWordBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has ", update.body_bytes(), " body bytes, expected ", sum_.size() * kWordBytes));
  }
  std::vector<uint32_t> words(std::min(kWordsPerChunk, sum_.size()));
  for (size_t begin = 0; begin < sum_.size(); begin += kWordsPerChunk) {
    const size_t count = std::min(kWordsPerChunk, sum_.size() - begin);
    // Bundle bodies are little-endian; so are the hosts fedmi supports.
    RETURN_IF_ERROR(aggregator_internal::ReadExactly(update, reinterpret_cast<char*>(words.data()),
                                                     count * kWordBytes, what));
    uint32_t* sum = sum_.data() + begin;
    for (size_t i = 0; i < count; ++i) sum[i] += words[i];  // wraps mod 2^32
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SecAggAggregator::Finish(const ModelStore& store,
                                                     const UnmaskingInput& unmasking) {
  RETURN_IF_ERROR(CheckCollecting("Finish"));
  if (accepted_sites_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg round ", round_, ": no update was accepted"));
  }
  if (unmasking.survivors.size() != accepted_sites_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg round ", round_, ": unmasking lists ", unmasking.survivors.size(),
        " survivors, but the sum holds the updates of ", accepted_sites_.size(), " sites"));
  }
  CachedSecrets secrets(unmasking.secrets);
  RETURN_IF_ERROR(secrets.Fetch(unmasking));
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileWriter> writer, store.NewWriter(specs_));
  RETURN_IF_ERROR(WriteModel(secrets.Lookup(), unmasking, *writer));
  std::string digest;
  RETURN_IF_ERROR(writer->Commit(&digest).status());
  state_ = State::kIdle;
  std::vector<uint32_t>().swap(sum_);
  return HexEncode(digest);
}

absl::Status SecAggAggregator::WriteModel(const secagg::UnmaskingSecrets& secrets,
                                          const UnmaskingInput& unmasking,
                                          BundleFileWriter& writer) {
  ASSIGN_OR_RETURN(std::unique_ptr<BundleFileReader> global,
                   BundleFileReader::Open(global_model_path_));
  const std::string global_what = absl::StrCat("global model ", global_model_path_);
  RETURN_IF_ERROR(CheckSpecsMatch(global->specs(), specs_, global_what));

  const int survivors = static_cast<int>(accepted_sites_.size());
  const size_t buffer_words = std::min(kWordsPerChunk, sum_.size());
  std::vector<uint32_t> words(buffer_words);
  std::vector<double> mean_delta(buffer_words);
  std::vector<float> values(buffer_words);  // the global model's, then the new ones
  size_t tensor = 0;
  uint64_t tensor_begin = 0;  // flat index of specs_[tensor]'s first element
  for (size_t begin = 0; begin < sum_.size(); begin += kWordsPerChunk) {
    const size_t count = std::min(kWordsPerChunk, sum_.size() - begin);
    std::copy_n(sum_.data() + begin, count, words.data());
    RETURN_IF_ERROR(secagg::RemoveMasks(unmasking.graph, unmasking.survivors, unmasking.dropped,
                                        secrets, words.data(), count, begin));
    // Decode tensor by tensor, so that an error can name the tensor.
    for (size_t position = begin; position < begin + count;) {
      while (position >= tensor_begin + static_cast<uint64_t>(specs_[tensor].NumElements())) {
        tensor_begin += static_cast<uint64_t>(specs_[tensor].NumElements());
        ++tensor;
      }
      const uint64_t tensor_end =
          tensor_begin + static_cast<uint64_t>(specs_[tensor].NumElements());
      const size_t end = static_cast<size_t>(std::min<uint64_t>(tensor_end, begin + count));
      absl::Status decoded = codec_.Decode(words.data() + (position - begin), end - position,
                                           survivors, mean_delta.data() + (position - begin));
      if (!decoded.ok()) {
        return absl::Status(
            decoded.code(),
            absl::StrCat("secagg round ", round_, ": cannot decode tensor '", specs_[tensor].name,
                         "' (element numbers below count ", "from its element ",
                         position - tensor_begin, "): ", decoded.message()));
      }
      position = end;
    }
    RETURN_IF_ERROR(aggregator_internal::ReadExactly(
        *global, reinterpret_cast<char*>(values.data()), count * kWordBytes, global_what));
    if (site_dp_) {
      site_dp_->Apply(mean_delta.data(), count);
    } else {
      for (size_t i = 0; i < count; ++i) mean_delta[i] /= total_weight_;
    }
    for (size_t i = 0; i < count; ++i) {
      values[i] = static_cast<float>(static_cast<double>(values[i]) + mean_delta[i]);
    }
    RETURN_IF_ERROR(writer.Write(reinterpret_cast<const char*>(values.data()), count * kWordBytes));
  }
  return absl::OkStatus();
}

absl::Status SecAggAggregator::CheckCollecting(absl::string_view operation) const {
  switch (state_) {
    case State::kCollecting:
      return absl::OkStatus();
    case State::kIdle:
      return absl::FailedPreconditionError(
          absl::StrCat("secagg ", operation, " called without a round begun"));
    case State::kBroken:
      return absl::FailedPreconditionError(
          absl::StrCat("secagg ", operation, " in round ", round_,
                       ": the aggregate is unusable after a failed Accept; begin the round again"));
  }
  return absl::InternalError("unreachable");
}

}  // namespace fedmi
