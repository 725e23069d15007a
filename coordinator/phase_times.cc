#include "coordinator/phase_times.h"

namespace fedmi {

const char* UpdatePhaseName(UpdatePhase phase) {
  switch (phase) {
    case UpdatePhase::kReceive:
      return "receive";
    case UpdatePhase::kHash:
      return "hash";
    case UpdatePhase::kCheck:
      return "check";
    case UpdatePhase::kSpool:
      return "spool";
    case UpdatePhase::kFold:
      return "fold";
    case UpdatePhase::kCommit:
      return "commit";
    case UpdatePhase::kModelSend:
      return "model_send";
  }
  return "unknown";
}

}  // namespace fedmi
