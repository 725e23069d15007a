#include "client/site_observability.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>

#include "common/base/status.h"

namespace fedmi {

namespace {

// The width of the terminal on stderr; 0 when unknown.
int StderrColumns() {
  struct winsize size {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

}  // namespace

SiteObservability::SiteObservability()
    : printer_(&std::cerr, isatty(STDERR_FILENO) == 1, nullptr, 0.1, StderrColumns()),
      observers_({}) {}

absl::StatusOr<std::unique_ptr<SiteObservability>> SiteObservability::Start(
    const ClientHttpOptions& http) {
  std::unique_ptr<SiteObservability> site(new SiteObservability());
  ASSIGN_OR_RETURN(site->metrics_, ClientMetrics::Register(&site->registry_));
  site->observers_ = TrainingObservers({&site->printer_, site->metrics_.get()});
  if (!http.address.empty()) {
    ASSIGN_OR_RETURN(site->listener_, StartClientHttp(http, &site->registry_));
  }
  return site;
}

}  // namespace fedmi
