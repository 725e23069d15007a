// What a run's model does, from its spec alone: sites choose their data
// (masks or not) and `fedmi run status` its columns by it.
//
// Pure functions; thread-safe.
#ifndef FEDMI_COMMON_RUNSPEC_MODEL_TASK_H_
#define FEDMI_COMMON_RUNSPEC_MODEL_TASK_H_

#include "fedmi/v1/federation.pb.h"

namespace fedmi {

// Whether `spec` trains a segmentation model: a built-in one whose
// ModelInfo says ModelTask::kSegmentation (unet), or a model file
// (kCustomModel) with task MODEL_TASK_SEGMENTATION.
bool IsSegmentationRun(const v1::RunSpec& spec);

}  // namespace fedmi

#endif  // FEDMI_COMMON_RUNSPEC_MODEL_TASK_H_
