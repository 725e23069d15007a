// DICOM end to end, with the real binaries over loopback: the same
// PneumoniaMNIST shards, once as npz files and once as hospital-style DICOM
// folders (MONOCHROME1 at one site, 12-bit with rescale slope and intercept
// at another, JPEG-LS and RLE at the third, labels in labels.csv), train to
// the same test AUC with the same seed. Then everything the coordinator
// stored or logged is searched for the patients' identifiers.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/local_federation.h"
#include "cli/model_files.h"
#include "common/base/status.h"
#include "common/data/data_split.h"
#include "common/data/dicom_export.h"
#include "common/data/image_data.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 5;

v1::RunSpec Spec() {
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(3);
  spec.set_min_sites(3);
  spec.set_batch_size(64);
  spec.set_seed(kSeed);
  return spec;
}

// Trains Spec() on `data` (site name -> data path) in a federation under
// `dir`; returns the final model's test AUC.
absl::StatusOr<double> TrainAndTest(const std::string& dir,
                                    const std::map<std::string, std::string>& data,
                                    const std::string& test_data) {
  RETURN_IF_ERROR(Env::Default()->CreateDirs(dir + "/logs"));
  ASSIGN_OR_RETURN(auto federation, cli::LocalFederation::Start(dir, /*insecure=*/false));
  for (const auto& [name, path] : data) {
    cli::SiteOptions site;
    site.name = name;
    site.data = path;
    site.threads = 1;
    RETURN_IF_ERROR(federation->AddSite(site));
  }
  RETURN_IF_ERROR(federation->WaitForSites(absl::Seconds(120)));
  ASSIGN_OR_RETURN(int64_t run_id, federation->admin().StartRun(Spec()));
  ASSIGN_OR_RETURN(v1::RunStatus status, cli::WatchRunToEnd(federation->admin(), run_id));
  if (status.state() != "done") {
    return absl::InternalError(absl::StrCat("run ended ", status.state(), ": ", status.error()));
  }
  const std::string model = dir + "/final.pt";
  RETURN_IF_ERROR(cli::ExportModelToFile(federation->admin(), run_id, -1, model, nullptr));
  ASSIGN_OR_RETURN(cli::ModelEvaluation test, cli::EvaluateModelOnSplit(model, test_data, "test"));
  return test.metrics.auc;
}

// `root` itself when it is a file, else every regular file under it, read
// whole.
std::map<std::string, std::string> FilesAt(const std::string& root) {
  std::vector<fs::path> paths;
  if (fs::is_regular_file(root)) {
    paths.push_back(root);
  } else {
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) paths.push_back(entry.path());
    }
  }
  std::map<std::string, std::string> files;
  for (const fs::path& path : paths) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    files[path.string()] = bytes.str();
  }
  return files;
}

TEST(DicomTest, ADicomFederationMatchesItsNpzTwinAndNoIdentifierReachesTheCoordinator) {
  ScratchDir scratch;
  const std::string source = DataPath(scratch.path());
  DataSplitOptions split;
  split.input = source;
  split.sites = 3;
  split.partition.kind = PartitionKind::kIid;
  split.partition.seed = kSeed;
  split.out_dir = scratch.path() + "/shards";
  ASSERT_OK_AND_ASSIGN(std::vector<SiteShardReport> shards, SplitDataset(split));

  const std::vector<DicomEncoding> encodings[] = {{DicomEncoding::kMonochrome1},
                                                  {DicomEncoding::kRescaled12Bit},
                                                  {DicomEncoding::kJpegLs, DicomEncoding::kRle}};
  std::map<std::string, std::string> npz_sites, dicom_sites;
  std::map<std::string, int64_t> written;
  for (size_t k = 0; k < shards.size(); ++k) {
    const SiteShardReport& shard = shards[k];
    npz_sites[shard.site] = shard.path;
    ASSERT_OK_AND_ASSIGN(SiteDataset data, LoadSiteDataset(shard.path));
    DicomExportOptions options;
    options.encodings = encodings[k];
    options.class_names = {"normal", "pneumonia"};
    options.patient_prefix = absl::StrCat("S", k + 1);
    const std::string folder = scratch.path() + "/dicom/" + shard.site;
    ASSERT_OK_AND_ASSIGN(
        DicomExportReport report,
        ExportAsDicomFolder({{"train", data.train}, {"val", data.val}}, folder, options));
    for (const auto& [encoding, count] : report.per_encoding) written[encoding] += count;
    dicom_sites[shard.site] = folder;
  }
  EXPECT_GT(written["monochrome1"], 0);
  EXPECT_GT(written["rescaled-12bit"], 0);
  EXPECT_GT(written["jpeg-ls"], 0);

  ASSERT_OK_AND_ASSIGN(double npz_auc,
                       TrainAndTest(scratch.path() + "/npz-run", npz_sites, source));
  ASSERT_OK_AND_ASSIGN(double dicom_auc,
                       TrainAndTest(scratch.path() + "/dicom-run", dicom_sites, source));
  std::cout << "test AUC: npz " << npz_auc << ", DICOM " << dicom_auc << std::endl;
  EXPECT_NEAR(dicom_auc, npz_auc, 0.005);

  // The coordinator's database, model files, spool and log: none holds a
  // patient's name, ID, accession number, birth date, the institution or
  // a DICOM UID (DCMTK's root 1.2.276.0.7230010.3 generated them all).
  const std::vector<std::string> identifiers = {
      "Synthetic^",          "S1-000",     "S2-000", "S3-000", "ACC-S", "Fedmi Synthetic Hospital",
      "1.2.276.0.7230010.3", "labels.csv", ".dcm"};
  // The search is real: the sites' exports hold every one of them.
  std::string exported;
  for (const auto& [path, bytes] : FilesAt(scratch.path() + "/dicom")) exported += path + bytes;
  for (const std::string& identifier : identifiers) {
    EXPECT_NE(exported.find(identifier), std::string::npos) << identifier;
  }
  std::map<std::string, std::string> stored = FilesAt(scratch.path() + "/dicom-run/coordinator");
  stored.merge(FilesAt(scratch.path() + "/dicom-run/logs/coordinator.log"));
  ASSERT_GT(stored.size(), 2u) << "the database and at least one model";
  for (const auto& [path, bytes] : stored) {
    for (const std::string& identifier : identifiers) {
      EXPECT_EQ(bytes.find(identifier), std::string::npos)
          << path << " holds '" << identifier << "'";
    }
  }
}

}  // namespace
}  // namespace fedmi
