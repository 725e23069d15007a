// SiteWorker's data: read again when a run asks for another geometry, or
// when the site's operator changed it on disk during a run (labels
// imported with `fedmi al import`).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/site_worker.h"
#include "common/base/log.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

std::string GeometryText(const DataGeometry& geometry) {
  return absl::StrCat(geometry.image_size, "x", geometry.image_size, "x", geometry.channels,
                      geometry.first_frame_only ? " (first frames)" : "",
                      geometry.with_masks ? " with masks" : "");
}

}  // namespace

int64_t SiteWorker::DeclareTrainExamples() {
  const int64_t examples = train_examples();
  declared_train_examples_ = examples;
  return examples;
}

int64_t SiteWorker::ReportedExamples(int64_t labelled) const {
  const int64_t declared = declared_train_examples_;
  if (declared <= 0 || labelled <= declared) return labelled;
  FEDMI_LOG(WARNING) << "this site trains on " << labelled << " labelled images but declared "
                     << declared << " when it connected; its updates say " << declared
                     << " examples (their FedAvg weight) until it connects again";
  return declared;
}

absl::StatusOr<const SiteDataset*> SiteWorker::DataFor(const v1::RunSpec& spec) {
  if (!data_ && !options_.reload_data) {
    return absl::FailedPreconditionError(
        absl::StrCat("site '", options_.site, "' has no data configured (--data)"));
  }
  const DataGeometry wanted = GeometryOf(spec);
  const bool same_geometry = data_ && wanted == data_geometry_;
  // Read before the data is, so that a change made while it is read is
  // seen at the next task.
  const std::string version = options_.data_version ? options_.data_version() : "";
  // A change already found unreadable is not read again until it changes
  // once more: every task would otherwise read the whole source again.
  const bool changed = version != data_version_ && version != unreadable_version_;
  if (same_geometry && !changed) return &*data_;
  if (!options_.reload_data) {
    if (same_geometry) return &*data_;
    return absl::FailedPreconditionError(
        absl::StrCat("the run wants images of ", GeometryText(wanted), " and this site holds ",
                     GeometryText(data_geometry_), " with no way to read its data again"));
  }
  if (same_geometry) {
    FEDMI_LOG(INFO) << "the site's data changed on disk (labels imported?); reading it again";
  } else {
    FEDMI_LOG(INFO) << "reading the site's data again at " << GeometryText(wanted)
                    << " (the run's input; held: " << GeometryText(data_geometry_) << ")";
  }
  absl::StatusOr<SiteDataset> reloaded = options_.reload_data(wanted);
  if (same_geometry) {
    // Class indices come from the class names (sorted folder names, DICOM
    // labels): a run cannot go on with index 1 meaning another class.
    if (reloaded.ok() && reloaded->report.class_names != data_->report.class_names) {
      reloaded = absl::FailedPreconditionError(
          absl::StrCat("its class names changed (", absl::StrJoin(data_->report.class_names, ", "),
                       " -> ", absl::StrJoin(reloaded->report.class_names, ", "), ")"));
    }
    if (reloaded.ok()) {
      absl::Status classes = CheckClasses(*reloaded, spec);
      if (!classes.ok()) reloaded = classes;
    }
    if (!reloaded.ok()) {
      // Half-edited data must not stop the run: train on what was read
      // before, and read again once the data changes again.
      FEDMI_LOG(ERROR) << "cannot use the site's changed data, training on the data read before "
                          "until it changes again: "
                       << reloaded.status().message();
      unreadable_version_ = version;
      return &*data_;
    }
  } else if (!reloaded.ok()) {
    // The coordinator hears that it failed, not which files: their names
    // may name patients.
    FEDMI_LOG(ERROR) << "cannot read the site's data at " << GeometryText(wanted) << ": "
                     << reloaded.status().message();
    return absl::Status(
        reloaded.status().code(),
        absl::StrCat("cannot read the site's data at ", GeometryText(wanted),
                     wanted.with_masks ? " (a segmentation run needs a mask for every image; "
                                         "the reason is in the site's log)"
                                       : " (the reason is in the site's log)"));
  } else {
    RETURN_IF_ERROR(CheckClasses(*reloaded, spec));
  }
  data_ = *std::move(reloaded);
  data_geometry_ = wanted;
  data_version_ = version;
  train_count_ = data_->train.size();
  val_count_ = data_->val.size();
  return &*data_;
}

}  // namespace fedmi
