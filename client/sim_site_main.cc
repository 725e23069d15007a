// fedmi-sim-site: the site daemon of client/site_main.h plus one
// simulation-only flag, --attack KIND, which makes it tamper with every
// update it sends (client/sim_attack.h). `fedmi sim --attack SITE:KIND`
// starts it in place of fedmi-client for the attacking sites; it exists to
// test aggregation strategies against faulty and malicious sites, never for
// a deployment.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/sim_attack.h"
#include "client/site_main.h"
#include "common/base/log.h"
#include "common/base/status.h"

int main(int argc, char** argv) {
  std::string attack_name;
  std::unique_ptr<fedmi::UpdateTamper> tamper;
  fedmi::SiteMainHooks hooks;
  hooks.program = "fedmi-sim-site";
  hooks.description =
      "fedmi-sim-site: a SIMULATED site for `fedmi sim --attack`: fedmi-client's daemon that "
      "tampers with every update it sends. Never for a deployment.";
  hooks.add_options = [&attack_name](CLI::App& app) {
    std::vector<std::string> model_kinds;
    for (const auto& entry : fedmi::kAttackKindNames) {
      if (fedmi::PoisonsModel(entry.value)) model_kinds.push_back(entry.name);
    }
    app.add_option(fedmi::kAttackFlag, attack_name,
                   absl::StrCat("how this site tampers with its updates: ",
                                absl::StrJoin(model_kinds, " | "),
                                " (label-flip is applied by `fedmi sim` to the site's data)"))
        ->required()
        ->check(CLI::IsMember(model_kinds));
  };
  hooks.configure_worker = [&](fedmi::SiteWorkerOptions* worker_options) -> absl::Status {
    const fedmi::AttackKind kind = *fedmi::ParseAttackKind(attack_name);
    ASSIGN_OR_RETURN(tamper, fedmi::MakeUpdateTamper(kind, worker_options->site));
    worker_options->tamper = tamper.get();
    FEDMI_LOG(WARNING) << "SIMULATED ATTACK: this site " << fedmi::DescribeAttack(kind)
                       << " in every round (--attack " << attack_name << ")";
    return absl::OkStatus();
  };
  return fedmi::RunSiteMain(argc, argv, hooks);
}
