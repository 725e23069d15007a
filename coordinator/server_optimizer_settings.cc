#include "coordinator/server_optimizer_settings.h"

#include "absl/strings/str_cat.h"
#include "common/base/status.h"

namespace fedmi {
namespace {

// One optional setting: which kinds read it, where it lives in the message
// and in the options.
struct Setting {
  const char* name;
  const char* readers;
  bool (*reads)(ServerOptimizerKind);
  bool (v1::ServerOptimizerSettings::*has)() const;
  double (v1::ServerOptimizerSettings::*get)() const;
  void (v1::ServerOptimizerSettings::*set)(double);
  double ServerOptimizerOptions::*option;
};

const Setting kSettings[] = {
    {"server_lr", "fedavgm, fedadam, fedyogi and fedadagrad",
     [](ServerOptimizerKind kind) { return kind != ServerOptimizerKind::kFedAvg; },
     &v1::ServerOptimizerSettings::has_server_lr, &v1::ServerOptimizerSettings::server_lr,
     &v1::ServerOptimizerSettings::set_server_lr, &ServerOptimizerOptions::server_lr},
    {"momentum", "fedavgm",
     [](ServerOptimizerKind kind) { return kind == ServerOptimizerKind::kFedAvgM; },
     &v1::ServerOptimizerSettings::has_momentum, &v1::ServerOptimizerSettings::momentum,
     &v1::ServerOptimizerSettings::set_momentum, &ServerOptimizerOptions::momentum},
    {"beta1", "fedadam, fedyogi and fedadagrad", IsAdaptive,
     &v1::ServerOptimizerSettings::has_beta1, &v1::ServerOptimizerSettings::beta1,
     &v1::ServerOptimizerSettings::set_beta1, &ServerOptimizerOptions::beta1},
    {"beta2", "fedadam and fedyogi",
     [](ServerOptimizerKind kind) {
       return kind == ServerOptimizerKind::kFedAdam || kind == ServerOptimizerKind::kFedYogi;
     },
     &v1::ServerOptimizerSettings::has_beta2, &v1::ServerOptimizerSettings::beta2,
     &v1::ServerOptimizerSettings::set_beta2, &ServerOptimizerOptions::beta2},
    {"tau", "fedadam, fedyogi and fedadagrad", IsAdaptive, &v1::ServerOptimizerSettings::has_tau,
     &v1::ServerOptimizerSettings::tau, &v1::ServerOptimizerSettings::set_tau,
     &ServerOptimizerOptions::tau},
};

absl::StatusOr<ServerOptimizerKind> KindOf(const v1::RunSpec& spec) {
  if (spec.server_optimizer().kind().empty()) return ServerOptimizerKind::kFedAvg;
  return ParseServerOptimizerKind(spec.server_optimizer().kind());
}

}  // namespace

absl::Status CompleteServerOptimizerSettings(v1::RunSpec* spec) {
  if (!spec->has_server_optimizer()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const ServerOptimizerKind kind, KindOf(*spec));
  v1::ServerOptimizerSettings& settings = *spec->mutable_server_optimizer();
  settings.set_kind(ServerOptimizerName(kind));
  const ServerOptimizerOptions defaults = DefaultServerOptimizerOptions(kind);
  for (const Setting& setting : kSettings) {
    const bool given = (settings.*setting.has)();
    if (setting.reads(kind)) {
      if (!given) (settings.*setting.set)(defaults.*setting.option);
    } else if (given) {
      return absl::InvalidArgumentError(absl::StrCat("server optimizer ", setting.name,
                                                     " applies to ", setting.readers, ", not to ",
                                                     ServerOptimizerName(kind)));
    }
  }
  // Plain replacement: runs keep a spec without the field.
  if (kind == ServerOptimizerKind::kFedAvg) spec->clear_server_optimizer();
  ASSIGN_OR_RETURN(const ServerOptimizerOptions options, ServerOptimizerOptionsOf(*spec));
  return ValidateServerOptimizerOptions(options);
}

absl::StatusOr<ServerOptimizerOptions> ServerOptimizerOptionsOf(const v1::RunSpec& spec) {
  ASSIGN_OR_RETURN(const ServerOptimizerKind kind, KindOf(spec));
  ServerOptimizerOptions options = DefaultServerOptimizerOptions(kind);
  const v1::ServerOptimizerSettings& settings = spec.server_optimizer();
  for (const Setting& setting : kSettings) {
    if ((settings.*setting.has)()) options.*setting.option = (settings.*setting.get)();
  }
  return options;
}

}  // namespace fedmi
