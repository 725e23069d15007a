// `fedmi run status --watch` of a secure run, with real processes over
// mutual TLS: a coordinator and four fedmi-client sites training the CNN on
// small synthetic images, secure aggregation on (the CLI's default from four
// sites). The watch must print every round with its metrics (a live secure
// round's state reads "training (secure aggregation: ...)", which once hid
// them), and one site's --http /metrics must count what it trained.

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "common/http/http_listener.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kSites = 4;
constexpr int kRounds = 2;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(WatchTest, ASecureRunsWatchShowsEveryRoundsMetricsAndTheSiteCountsItsTraining) {
  ScratchDir scratch;
  TestProject project(scratch.path());
  CoordinatorProcess coordinator(scratch.path(), &project);
  const int http_port = FreePort();
  ASSERT_GT(http_port, 0);
  for (int k = 1; k <= kSites; ++k) project.Add(absl::StrCat("site-", k), PartyRole::kSite);

  const std::string fedmi = absl::StrCat(Binary("fedmi"), " --coordinator ", coordinator.address(),
                                         project.FlagString("admin-1"));
  // Started before any site connects, so that the run waits for them and
  // the watch below sees it live, however fast the machine trains. No
  // --secure-aggregation flag: on by default for four sites.
  CommandOutput started = RunCommand(absl::StrCat(
      fedmi, " run start --model cnn --rounds ", kRounds, " --min-sites ", kSites,
      " --local-epochs 1 --batch-size 64 --lr 0.002 --seed 3 --round-timeout 300 --json"));
  ASSERT_EQ(started.exit_code, 0) << started.stdout_text;
  std::smatch id;
  const std::string json = LastLine(started.stdout_text);
  ASSERT_TRUE(std::regex_search(json, id, std::regex("\"run_id\":([0-9]+)"))) << json;
  const int64_t run = std::stoll(id[1]);

  // stdout is a file here: rounds line by line as they settle. The exit
  // code follows the watch's output. The background shell must not hold
  // RunCommand's pipe, which is read to its end.
  const std::string watch_file = scratch.Join("watch.txt");
  ASSERT_EQ(RunCommand(absl::StrCat("(", fedmi, " run status ", run, " --watch > ", watch_file,
                                    " 2>/dev/null; echo \"exit $?\" >> ", watch_file,
                                    ") </dev/null >/dev/null 2>&1 &"))
                .exit_code,
            0);

  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  for (int k = 1; k <= kSites; ++k) {
    const std::string name = absl::StrCat("site-", k);
    cli::SiteOptions options;
    options.name = name;
    options.log_path = scratch.Join(name + ".log");
    // 600 training and 120 validation images each.
    options.data = WriteSyntheticNpz(scratch.Join(name + ".npz"), 10 + k);
    options.threads = 1;
    if (k == 1) options.extra_flags = {"--http", absl::StrCat("127.0.0.1:", http_port)};
    sites.push_back(StartSite(project, coordinator.address(), options));
    ASSERT_NE(sites.back(), nullptr);
  }
  std::string text;
  for (int i = 0; i < 3000 && !absl::StrContains(text, "\nexit "); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = ReadAll(watch_file);
  }
  ASSERT_THAT(text, HasSubstr("\nexit 0\n"));
  EXPECT_THAT(text, HasSubstr("secure aggregation on"));
  for (int round = 1; round <= kRounds; ++round) {
    // ROUND STATE SITES EXAMPLES LOSS AUC ...: measured, with a real AUC.
    EXPECT_THAT(text, ContainsRegex(absl::StrCat("\n +", round,
                                                 " +evaluated +4 +480 +[0-9]\\.[0-9]{4} +"
                                                 "[01]\\.[0-9]{4} ")))
        << text;
  }
  // The live states were shown as progress, never as a round's row.
  EXPECT_THAT(text, HasSubstr(absl::StrCat("# run ", run, " running: waiting-for-sites")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("# run ", run, " running: training")));
  EXPECT_THAT(text, Not(ContainsRegex("\n +[0-9]+ +training")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("# run ", run, " done after 2 of 2 rounds")));
  EXPECT_THAT(text, ContainsRegex("\nAUC [^ ]+ [01]\\.[0-9]{4} \\.\\. [01]\\.[0-9]{4} over 2 "
                                  "rounds"));

  // The site's own /metrics: 600 images in each of two rounds, nothing refused.
  ASSERT_OK_AND_ASSIGN(http::Response metrics, http::Get("127.0.0.1", http_port, "/metrics"));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_client_rounds_joined_total 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_client_images_trained_total 1200\n"));
  EXPECT_THAT(metrics.body, HasSubstr("\nfedmi_client_last_round 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr(absl::StrCat("\nfedmi_client_last_run ", run, "\n")));
  EXPECT_THAT(metrics.body,
              HasSubstr("\nfedmi_client_rounds_refused_total{reason=\"policy\"} 0\n"));
  EXPECT_THAT(metrics.body, ContainsRegex("\nfedmi_client_training_images_per_second [0-9.e+]+\n"));
  if (RunCommand("command -v promtool >/dev/null").exit_code == 0) {
    const std::string file = scratch.Join("client-metrics.txt");
    std::ofstream(file) << metrics.body;
    CommandOutput check = RunCommand(absl::StrCat("promtool check metrics < ", file, " 2>&1"));
    EXPECT_EQ(check.exit_code, 0) << check.stdout_text;
  }
  // Its log (not a terminal): one line per local epoch, the warning for
  // plain HTTP.
  const std::string log = ReadAll(scratch.Join("site-1.log"));
  EXPECT_THAT(log, ContainsRegex(
                       absl::StrCat("run ", run, " round 1: epoch 1/1: 600 images in [0-9.]+ s")));
  EXPECT_THAT(log, ContainsRegex(absl::StrCat("run ", run, " round 2: epoch 1/1: 600 images")));
  EXPECT_THAT(log, HasSubstr("serving /metrics over plain HTTP"));
}

}  // namespace
}  // namespace fedmi
