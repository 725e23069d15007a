// `fedmi sim --compare FILE`: runs each strategy of a strategies file
// (cli/sim_compare_file.h) as a `fedmi sim` run, on the same data split and
// seeds, tests every round's global model on the test split, and reports
// the strategies side by side (cli/sim_compare_report.h): a table on
// stdout, compare.json and compare.png (test AUC per round).
//
// Each run is a whole `fedmi sim` (its own coordinator and site processes),
// so that a strategy's flags mean exactly what they mean to `fedmi sim`.
// The split is the same for every strategy because sim derives it from the
// command line's data, sites, partition, alpha and seed alone.
//
// Not thread-safe: it redirects std::cout into each run's log while the
// run lasts.
#ifndef FEDMI_CLI_SIM_COMPARE_H_
#define FEDMI_CLI_SIM_COMPARE_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/admin_client.h"
#include "fedmi/v1/admin.pb.h"

namespace fedmi::cli {

struct CompareOptions {
  std::string file;   // --compare
  std::string seeds;  // --seeds 0,1,2
  int seed_count = 0;
  double target_auc = 0.95;
  std::string out_dir;  // --out; empty: the comparison's work directory
};

// Adds --compare, --seeds, --seed-count, --target-auc and --out to `sim`.
void AddCompareOptions(CLI::App* sim, CompareOptions* options);

// Usage error text when a comparison flag is given without --compare; ""
// otherwise.
std::string CompareFlagsWithoutFile(const CLI::App& sim, const CompareOptions& options);

// What `fedmi sim` tells the comparison about one of its runs, on its own
// thread, in this order.
class SimObserver {
 public:
  virtual ~SimObserver() = default;
  // A round has been evaluated by the sites.
  virtual void OnRound(const v1::RoundStatus& round) = 0;
  // The run is done and its federation still runs, so its round models can
  // be exported through `admin`. `data` is the dataset sim split. An error
  // fails the sim.
  virtual absl::Status OnRunDone(AdminClient& admin, const v1::RunStatus& run,
                                 const std::string& work_dir, const std::string& data) = 0;
  // Sim's summary, as `fedmi sim --json` prints it.
  virtual void OnSummary(const nlohmann::json& summary) = 0;
};

// What the comparison needs of `fedmi sim`, whose options cli/sim_commands.cc
// owns: the command line's choices and a way to run sim with an entry's
// flags on top.
struct SimDriver {
  uint64_t seed = 0;  // --seed
  int rounds = 0;
  std::string work_dir;
  std::string json_out;
  bool json = false;
  // InvalidArgument (sim's parser's or SimSpec's message) when sim refuses
  // `args` on top of the command line.
  std::function<absl::Status(const std::vector<std::string>& args)> check_flags;
  // Runs `fedmi sim` with the command line's flags, `args` on top, --seed
  // `seed` and --work-dir `work_dir`, without --json and --json-out, and
  // returns its exit code.
  std::function<int(const std::vector<std::string>& args, uint64_t seed,
                    const std::string& work_dir, SimObserver& observer)>
      run;
};

// The comparison; returns the exit code: 2 for a bad strategies file,
// seeds or entry flags, before any run; 1 when a run failed (the others
// still run, and the report lists it); 0 otherwise, also when a strategy
// ruined its model (a result the report shows).
int RunSimCompare(const CompareOptions& options, const SimDriver& driver);

}  // namespace fedmi::cli

#endif  // FEDMI_CLI_SIM_COMPARE_H_
