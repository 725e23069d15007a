// Which unlabelled images a site's radiologist should label next (active
// learning), from the current global model's view of each image. Arithmetic
// only: the model's outputs come in (client/ml/local_model.h, Score), the
// chosen rows go out.
//
//   entropy  H(p), the model's uncertainty over the classes.
//   margin   1 - (p_top1 - p_top2): small gaps between the two likeliest
//            classes first.
//   bald     Monte-Carlo dropout (Gal et al. 2017): H(mean_t p_t) -
//            mean_t H(p_t), the information the label would give about the
//            weights; high where the dropout samples disagree, not where
//            every sample is unsure.
//   coreset  k-center greedy on embeddings (Sener and Savarese 2018): each
//            pick is the image farthest from every labelled image and every
//            earlier pick, so the batch covers the pool rather than
//            repeating near-duplicates. Its score is that distance.
//   random   a seeded shuffle: the baseline the others must beat.
//
// Scores are ranked high to low; ties break by row. Thread-compatible.
#ifndef FEDMI_COMMON_EVALUATION_ACQUISITION_H_
#define FEDMI_COMMON_EVALUATION_ACQUISITION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedmi {

enum class AcquisitionMethod { kEntropy, kMargin, kBald, kCoreset, kRandom };

const char* AcquisitionMethodName(AcquisitionMethod method);
// InvalidArgument for an unknown name, listing the known ones.
absl::StatusOr<AcquisitionMethod> ParseAcquisitionMethod(const std::string& name);
// "entropy|margin|bald|coreset|random".
std::string AcquisitionMethodNames();
bool NeedsMonteCarlo(AcquisitionMethod method);
bool NeedsEmbeddings(AcquisitionMethod method);

// What the model said about the pool (rows x classes, row-major), and for
// coreset the embeddings of the pool and of the labelled images.
struct PoolView {
  int64_t rows = 0;
  int64_t num_classes = 0;
  std::vector<float> probabilities;     // rows x num_classes
  int mc_passes = 0;                    // bald: > 1
  std::vector<float> mc_probabilities;  // mc_passes x rows x num_classes
  int64_t embedding_dim = 0;
  std::vector<float> embeddings;           // rows x embedding_dim
  std::vector<float> labelled_embeddings;  // any number x embedding_dim
};

// How many images to choose: a count ("40") or a share of the site's
// training images, labelled and not ("5%").
struct AcquisitionBudget {
  double value = 0;
  bool percent = false;
  int64_t Images(int64_t training_images) const;
};

// InvalidArgument quoting `text` when it is neither a whole count above 0
// nor a share in (0, 100] with "%".
absl::StatusOr<AcquisitionBudget> ParseAcquisitionBudget(const std::string& text);

struct AcquiredImage {
  int64_t row = 0;
  double score = 0;  // the method's score; random: 0
};

// The `budget` rows to label (all rows when budget >= rows), best first.
// `skip` rows (same size as rows, or empty) are never chosen: equal copies
// of an image already chosen. InvalidArgument when what the method needs is
// missing or inconsistent (sizes, too few Monte-Carlo passes).
absl::StatusOr<std::vector<AcquiredImage>> Acquire(AcquisitionMethod method, const PoolView& pool,
                                                   int64_t budget, uint64_t seed,
                                                   const std::vector<bool>& skip = {});

// The per-row scores behind Acquire for entropy, margin and bald.
double Entropy(const float* p, int64_t num_classes);
double Margin(const float* p, int64_t num_classes);
std::vector<double> BaldScores(const PoolView& pool);

}  // namespace fedmi

#endif  // FEDMI_COMMON_EVALUATION_ACQUISITION_H_
