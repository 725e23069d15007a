#include "common/runspec/model_task.h"

#include "common/runspec/model_names.h"
#include "common/runspec/transfer.h"

namespace fedmi {

bool IsSegmentationRun(const v1::RunSpec& spec) {
  if (spec.model() == kCustomModel) return spec.task() == v1::MODEL_TASK_SEGMENTATION;
  const ModelInfo* info = FindModelInfo(spec.model());
  return info != nullptr && info->task == ModelTask::kSegmentation;
}

}  // namespace fedmi
