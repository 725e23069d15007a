// `fedmi version`: what this fedmi was built from.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command_support.h"
#include "cli/fedmi_app.h"
#include "common/base/build_info.h"

namespace fedmi::cli {

void AddVersionCommand(CLI::App& app, GlobalOptions& global, CommandResult& result) {
  CLI::App* version = app.add_subcommand(
      "version", "the git commit, build type and whether training (LibTorch) is built in");
  AddJsonFlag(version, global);
  version->callback([&global, &result] {
    RunCommand(result, [&global] {
      if (!global.json) {
        std::cout << VersionText("fedmi") << std::endl;
        return kExitOk;
      }
      const BuildInfo info = GetBuildInfo();
      PrintJsonLine({{"program", "fedmi"},
                     {"version", info.version},
                     {"commit", info.commit},
                     {"build_type", info.build_type},
                     {"training", info.training},
                     {"libtorch", info.training ? nlohmann::json(info.libtorch) : nullptr}});
      return kExitOk;
    });
  });
}

}  // namespace fedmi::cli
