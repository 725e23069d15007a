// fedmi-client: the site daemon. It runs inside a hospital, trains on the
// site's private images and sends back only model weights. Flags override
// the TOML config (--config or $FEDMI_CONFIG).
#include <signal.h>

#include <atomic>
#include <iostream>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/cli_config.h"

#include "client/site_daemon.h"
#include "client/site_worker.h"
#include "common/image_data.h"
#include "common/log.h"

namespace {

fedmi::SiteDaemon* g_daemon = nullptr;
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int Run(int argc, char** argv) {
  CLI::App app{"fedmi-client: a hospital site's daemon. Dials out to the coordinator, "
               "trains on local images, returns only weights.",
               "fedmi-client"};
  fedmi::AddConfigOption(app);
  std::string coordinator = "127.0.0.1:7000";
  std::string site;
  std::string data;
  int threads = 0;
  bool insecure = false;
  double heartbeat_s = 10;
  double give_up_s = 0;
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT")->capture_default_str();
  app.add_option("--site", site, "this site's name (letters, digits, . _ -)")->required();
  app.add_option("--data", data,
                 "local data: a MedMNIST .npz (train_*/val_*) or an image folder with one "
                 "sub-folder per class; omit only for synthetic benchmarks");
  app.add_option("--threads", threads, "LibTorch threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--heartbeat", heartbeat_s, "seconds between heartbeats")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--give-up-after", give_up_s,
                 "exit when the coordinator stays unreachable this many seconds (0 = never)")
      ->capture_default_str();
  app.add_flag("--insecure", insecure,
               "plaintext transport, for local experiments on a trusted network only");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  fedmi::SetLogTag(site.c_str());
  if (insecure) {
    FEDMI_LOG(WARNING) << "running with --insecure: plaintext transport, no authentication. "
                          "Use only for local experiments.";
  }

  std::optional<fedmi::SiteDataset> dataset;
  if (!data.empty()) {
    auto loaded = fedmi::LoadSiteDataset(data);
    if (!loaded.ok()) {
      std::cerr << "error: " << loaded.status().message() << "\n";
      return 1;
    }
    dataset = *std::move(loaded);
    FEDMI_LOG(INFO) << "loaded " << dataset->train.size() << " training and "
                    << dataset->val.size() << " validation images from " << data;
  }
  fedmi::SiteWorkerOptions worker_options;
  worker_options.site = site;
  worker_options.threads = threads;
  fedmi::SiteWorker worker(worker_options, std::move(dataset));

  fedmi::SiteDaemonOptions options;
  options.coordinator = coordinator;
  options.site = site;
  options.transport.insecure = insecure;
  options.heartbeat = absl::Seconds(heartbeat_s);
  options.give_up_after = absl::Seconds(give_up_s);
  fedmi::SiteDaemon daemon(options, &worker);
  g_daemon = &daemon;
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    daemon.Stop();
  });
  absl::Status status = daemon.Run();
  g_stop = true;
  watcher.join();
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
