#include "client/sim_attack.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status.h"
#include "common/data/npz.h"
#include "common/privacy/gaussian_noise.h"

namespace fedmi {
namespace {

constexpr char kSitePrefix[] = "site-";

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a: unlike std::hash, the same on every platform, so a simulation's
// noise does not depend on the standard library it was built with.
uint64_t StableHash(const std::string& text) {
  uint64_t hash = 0xCBF29CE484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001B3ULL;
  }
  return hash;
}

// 1-based index of `site` ("site-3" or "3") among `sites`; 0 if none.
int SiteIndex(absl::string_view site, int sites) {
  if (absl::StartsWith(site, kSitePrefix)) site.remove_prefix(sizeof(kSitePrefix) - 1);
  int index = 0;
  // SimpleAtoi accepts "+3" and " 3"; a site's name has neither.
  if (site.empty() || !std::all_of(site.begin(), site.end(), ::isdigit) ||
      !absl::SimpleAtoi(site, &index) || index < 1 || index > sites) {
    return 0;
  }
  return index;
}

class ModelPoisoningTamper : public UpdateTamper {
 public:
  ModelPoisoningTamper(AttackKind kind, std::string site) : kind_(kind), site_(std::move(site)) {}

  absl::Status Tamper(const TamperContext& context, const TensorBundle& global,
                      TensorBundle* weights) override {
    RETURN_IF_ERROR(CheckSpecsMatch(weights->specs, global.specs, "tampered update"));
    if (weights->body.size() != global.body.size()) {
      return absl::InvalidArgumentError("update and global model differ in size");
    }
    std::unique_ptr<privacy::NoiseSource> noise;
    if (kind_ == AttackKind::kGaussian) {
      noise = privacy::MakeSeededNoiseSource(
          GaussianAttackSeed(context.run_seed, context.round, site_));
    }
    for (size_t t = 0; t < weights->specs.size(); ++t) {
      if (weights->specs[t].dtype != DType::kFloat32) continue;
      const uint64_t offset = weights->OffsetOf(t);
      char* out = weights->body.data() + offset;
      const char* base = global.body.data() + offset;
      for (int64_t i = 0; i < weights->specs[t].NumElements(); ++i) {
        float w, g;
        std::memcpy(&w, out + i * sizeof(float), sizeof(float));
        std::memcpy(&g, base + i * sizeof(float), sizeof(float));
        const double change = static_cast<double>(w) - g;
        double sent = w;
        switch (kind_) {
          case AttackKind::kSignFlip:
            sent = g - change;
            break;
          case AttackKind::kScaled:
            sent = g + kScaledAttackFactor * change;
            break;
          case AttackKind::kGaussian:
            sent = w + kGaussianAttackStddev * noise->Normal();
            break;
          case AttackKind::kLabelFlip:
            break;
        }
        const float value = static_cast<float>(sent);
        std::memcpy(out + i * sizeof(float), &value, sizeof(float));
      }
    }
    return absl::OkStatus();
  }

 private:
  AttackKind kind_;
  std::string site_;
};

}  // namespace

const char* AttackKindName(AttackKind kind) { return NameOf(kAttackKindNames, kind); }

std::optional<AttackKind> ParseAttackKind(absl::string_view name) {
  return ParseName(kAttackKindNames, name);
}

std::vector<std::string> AttackKindNames() {
  std::vector<std::string> names;
  for (const auto& entry : kAttackKindNames) names.push_back(entry.name);
  return names;
}

std::string DescribeAttack(AttackKind kind) {
  switch (kind) {
    case AttackKind::kSignFlip:
      return "sends w_global - d (its change reversed)";
    case AttackKind::kScaled:
      return absl::StrCat("sends w_global + ", kScaledAttackFactor, " d (its change scaled)");
    case AttackKind::kGaussian:
      return absl::StrCat("sends its weights plus Gaussian noise of standard deviation ",
                          kGaussianAttackStddev, " per element");
    case AttackKind::kLabelFlip:
      return "trains on flipped training labels, (y + 1) mod C";
  }
  return "unknown";
}

bool PoisonsModel(AttackKind kind) { return kind != AttackKind::kLabelFlip; }

absl::StatusOr<std::vector<SiteAttack>> ParseSiteAttacks(const std::vector<std::string>& values,
                                                         int sites) {
  std::map<int, SiteAttack> by_index;
  for (const std::string& value : values) {
    const size_t colon = value.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--attack ", value, ": expected SITE:KIND, e.g. site-1:sign-flip"));
    }
    const std::string site = value.substr(0, colon);
    const std::string kind_name = value.substr(colon + 1);
    const int index = SiteIndex(site, sites);
    if (index == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--attack ", value, ": no site '", site,
                                                     "'; the sites are site-1 .. site-", sites,
                                                     " (or their numbers 1 .. ", sites, ")"));
    }
    std::optional<AttackKind> kind = ParseAttackKind(kind_name);
    if (!kind) {
      return absl::InvalidArgumentError(
          absl::StrCat("--attack ", value, ": unknown kind '", kind_name,
                       "' (known: ", absl::StrJoin(AttackKindNames(), ", "), ")"));
    }
    SiteAttack attack{absl::StrCat(kSitePrefix, index), *kind};
    if (!by_index.emplace(index, attack).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--attack: site ", attack.site, " is given more than one attack"));
    }
  }
  std::vector<SiteAttack> attacks;
  for (auto& [index, attack] : by_index) attacks.push_back(std::move(attack));
  return attacks;
}

absl::StatusOr<std::unique_ptr<UpdateTamper>> MakeUpdateTamper(AttackKind kind,
                                                               const std::string& site) {
  if (!PoisonsModel(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat(AttackKindName(kind),
                     " changes the site's data, not its updates; `fedmi sim` applies it "
                     "to the site's shard"));
  }
  return std::unique_ptr<UpdateTamper>(new ModelPoisoningTamper(kind, site));
}

uint64_t GaussianAttackSeed(uint64_t run_seed, int32_t round, const std::string& site) {
  return SplitMix64(SplitMix64(SplitMix64(run_seed) ^ static_cast<uint32_t>(round)) ^
                    StableHash(site));
}

absl::StatusOr<int64_t> FlippedLabel(int64_t label, int64_t num_classes) {
  if (num_classes < 2 || label < 0 || label >= num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("label ", label, " is not a class of a ", num_classes, "-class task"));
  }
  return (label + 1) % num_classes;
}

absl::Status FlipShardTrainingLabels(const std::string& path, int64_t num_classes) {
  ASSIGN_OR_RETURN(auto arrays, ReadNpz(path));
  if (arrays.count("train_masks") > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is segmentation data (it has masks): label-flip has no labels to flip"));
  }
  auto labels = arrays.find("train_labels");
  if (labels == arrays.end() || labels->second.dtype != "|u1") {
    return absl::InvalidArgumentError(absl::StrCat(path, " has no uint8 train_labels to flip"));
  }
  for (char& byte : labels->second.data) {
    ASSIGN_OR_RETURN(const int64_t flipped,
                     FlippedLabel(static_cast<unsigned char>(byte), num_classes));
    byte = static_cast<char>(flipped);
  }
  return WriteNpz(path, arrays);
}

}  // namespace fedmi
