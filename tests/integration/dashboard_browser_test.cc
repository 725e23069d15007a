// The coordinator's dashboard in a real browser: a coordinator with
// `--http` on loopback and three hospital sites training a CNN, read by
// headless Chromium while the run is going. Chromium renders the runs page,
// the run's page (rounds plotted) and the sites page; the test checks the
// DOM for the run's state, round count and site names, that the pages log
// no console message (a script error or a refused load would), and that no
// page names any origin but the listener's; it saves a screenshot of each
// page in <build>/dashboard-screenshots/.
//
// Exits 77 (ctest: skipped) when Chromium is not installed.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>
#include <thread>

#include "common/http/http_listener.h"
#include "tests/integration/process_fixture.h"

namespace fedmi {
namespace {

using ::testing::HasSubstr;

// Far more than the test waits for: the run is still going when the browser
// reads it, and is aborted at the end.
constexpr int kRounds = 150;
constexpr const char* kSites[] = {"st-marys", "royal-london", "county-general"};

std::string ChromiumBinary() {
  if (const char* configured = std::getenv("FEDMI_CHROMIUM")) return configured;
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

// A chest-X-ray-shaped task harder than process_fixture's: a faint blob on
// noise, so that AUC climbs over rounds instead of saturating at once.
std::string WriteFaintBlobNpz(const std::string& path, uint32_t seed) {
  std::mt19937 random(seed);
  std::map<std::string, NpyArray> arrays;
  for (auto [split, rows] : {std::pair<std::string, int>{"train", 240}, {"val", 80}}) {
    NpyArray images{"|u1", {rows, 28, 28}, std::vector<char>(rows * 28 * 28)};
    NpyArray labels{"|u1", {rows, 1}, std::vector<char>(rows)};
    for (int i = 0; i < rows; ++i) {
      const int label = (i + static_cast<int>(seed)) % 3 == 0 ? 0 : 1;
      labels.data[i] = static_cast<char>(label);
      for (int p = 0; p < 28 * 28; ++p) {
        int value = 60 + static_cast<int>(random() % 120);
        const int y = p / 28, x = p % 28;
        if (label == 1 && y >= 10 && y < 18 && x >= 10 && x < 18) value += 8;
        images.data[i * 28 * 28 + p] = static_cast<char>(std::min(value, 255));
      }
    }
    arrays[split + "_images"] = images;
    arrays[split + "_labels"] = labels;
  }
  EXPECT_TRUE(WriteNpz(path, arrays).ok());
  return path;
}

struct BrowserResult {
  std::string dom;
  std::string log;  // Chromium's stderr
  int exit_code = -1;
};

class DashboardBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = ChromiumBinary();
    const char* binary_dir = std::getenv("FEDMI_BINARY_DIR");
    shots_ = absl::StrCat(binary_dir != nullptr ? binary_dir : scratch_.path(),
                          "/dashboard-screenshots");
    ASSERT_EQ(RunCommand(absl::StrCat("mkdir -p ", shots_)).exit_code, 0);
  }

  // Runs Chromium on `url` with `mode` (--dump-dom or --screenshot=FILE) in
  // a fresh profile, with every background request it would make on its
  // own turned off.
  BrowserResult Browse(const std::string& url, const std::string& mode) {
    const std::string profile = scratch_.Join(absl::StrCat("profile-", ++profiles_));
    const std::string log = scratch_.Join(absl::StrCat("chromium-", profiles_, ".log"));
    const std::string command = absl::StrCat(
        "timeout 120 ", chromium_,
        " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
        " --disable-background-networking --disable-component-update --disable-sync"
        " --disable-default-apps --disable-extensions --no-proxy-server"
        " --enable-logging=stderr --v=0 --virtual-time-budget=8000 --window-size=1280,1600"
        " --user-data-dir=",
        profile, " ", mode, " '", url, "' 2>", log);
    CommandOutput output = RunCommand(command);
    BrowserResult result;
    result.dom = output.stdout_text;
    result.exit_code = output.exit_code;
    std::ifstream in(log);
    result.log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return result;
  }

  // The DOM after scripts ran, with the checks every page must pass. A
  // live page has fetched itself again by then (the polling script's first
  // update, kRefreshSeconds in) and says so in its header.
  std::string LoadPage(const std::string& path, const std::string& shot, bool live) {
    const std::string url = absl::StrCat(origin_, path);
    BrowserResult page = Browse(url, "--dump-dom");
    EXPECT_EQ(page.exit_code, 0) << page.log;
    EXPECT_THAT(page.dom, HasSubstr("fedmi coordinator")) << url;
    if (live) {
      EXPECT_THAT(page.dom, HasSubstr("class=\"stamp\">live \xC2\xB7 updated "))
          << url << ": the page did not update itself";
    }
    // Console output from the page: script errors, refused loads (CSP).
    for (const char* marker : {"CONSOLE", "Uncaught", "Refused to"}) {
      EXPECT_THAT(page.log, ::testing::Not(HasSubstr(marker))) << url << "\n" << page.log;
    }
    ExpectOnlyOwnUrls(page.dom, url);
    // The page as served, before any script: the same rule.
    absl::StatusOr<http::Response> raw = http::Get("127.0.0.1", port_, path);
    EXPECT_THAT(raw, IsOk());
    if (raw.ok()) {
      EXPECT_EQ(raw->status, 200) << path;
      ExpectOnlyOwnUrls(raw->body, url);
      EXPECT_THAT(raw->headers["Content-Security-Policy"], HasSubstr("default-src 'none'"));
    }
    const std::string file = absl::StrCat(shots_, "/dashboard-", shot, ".png");
    std::remove(file.c_str());
    BrowserResult screenshot = Browse(url, absl::StrCat("--screenshot=", file));
    EXPECT_EQ(screenshot.exit_code, 0) << screenshot.log;
    EXPECT_EQ(access(file.c_str(), R_OK), 0) << "no screenshot " << file;
    return page.dom;
  }

  void ExpectOnlyOwnUrls(const std::string& html, const std::string& url) {
    const std::regex absolute("(https?:)?//[A-Za-z0-9.:\\[\\]-]+");
    for (auto it = std::sregex_iterator(html.begin(), html.end(), absolute);
         it != std::sregex_iterator(); ++it) {
      const std::string found = it->str();
      EXPECT_TRUE(found == origin_ || found == absl::StrCat("//127.0.0.1:", port_))
          << url << " names " << found;
    }
  }

  static int Count(const std::string& text, const std::string& needle) {
    int count = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

  ScratchDir scratch_;
  TestProject project_{scratch_.path()};
  std::string chromium_;
  std::string shots_;
  std::string origin_;
  int port_ = 0;
  int profiles_ = 0;
};

TEST_F(DashboardBrowserTest, ShowsARunningFederationToABrowser) {
  port_ = FreePort();
  ASSERT_GT(port_, 0);
  origin_ = absl::StrCat("http://127.0.0.1:", port_);
  const std::string config = scratch_.Join("coordinator.toml");
  std::ofstream(config) << "http = \"127.0.0.1:" << port_ << "\"\n";
  CoordinatorProcess coordinator(scratch_.path(), &project_, "127.0.0.1:0", "coordinator.log",
                                 {"FEDMI_CONFIG=" + config});

  std::vector<std::unique_ptr<cli::ChildProcess>> sites;
  uint32_t seed = 1;
  for (const char* name : kSites) {
    project_.Add(name, PartyRole::kSite);
    cli::SiteOptions options;
    options.name = name;
    options.log_path = scratch_.Join(absl::StrCat(name, ".log"));
    options.data = WriteFaintBlobNpz(scratch_.Join(absl::StrCat(name, ".npz")), seed++);
    options.threads = 1;
    sites.push_back(StartSite(project_, coordinator.address(), options));
    ASSERT_NE(sites.back(), nullptr);
  }
  ASSERT_THAT(coordinator.admin().WaitForSites(3, absl::Seconds(60)), IsOk());
  v1::RunSpec spec;
  spec.set_model("cnn");
  spec.set_rounds(kRounds);
  spec.set_min_sites(3);
  spec.set_batch_size(32);
  spec.set_local_epochs(1);
  spec.set_lr(0.001);
  spec.set_seed(11);
  spec.set_round_timeout_s(300);
  ASSERT_OK_AND_ASSIGN(int64_t run, coordinator.admin().StartRun(spec));

  // Three evaluated rounds, so the charts have lines, while the run goes on.
  v1::RunStatus status;
  for (int i = 0; i < 600; ++i) {
    ASSERT_OK_AND_ASSIGN(status, coordinator.admin().GetRun(run));
    if (status.completed_rounds() >= 3 || status.state() != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(status.state(), "running") << status.error();
  ASSERT_GE(status.completed_rounds(), 3);

  const std::string runs = LoadPage("/runs", "runs", true);
  EXPECT_THAT(runs, HasSubstr(absl::StrCat("data-run=\"", run, "\" data-state=\"running\"")));
  EXPECT_THAT(runs, HasSubstr(absl::StrCat(" of ", kRounds)));
  std::smatch completed;
  ASSERT_TRUE(std::regex_search(runs, completed, std::regex("data-completed-rounds=\"(\\d+)\"")));
  EXPECT_GE(std::stoi(completed[1]), 3);
  EXPECT_THAT(runs, HasSubstr("<span class=\"auc\">"));
  EXPECT_THAT(runs, HasSubstr("class=\"sparkline\""));

  const std::string page = LoadPage(absl::StrCat("/runs/", run), "run", true);
  EXPECT_THAT(page, HasSubstr("data-state=\"running\""));
  std::smatch pooled;
  ASSERT_TRUE(
      std::regex_search(page, pooled, std::regex("data-series=\"pooled\" data-points=\"(\\d+)\"")));
  EXPECT_GE(std::stoi(pooled[1]), 2) << "at least two rounds plotted";
  EXPECT_EQ(Count(page, "data-series=\"pooled\""), 4) << "loss, AUC, sensitivity, specificity";
  for (const char* name : kSites) {
    EXPECT_THAT(page, HasSubstr(absl::StrCat("<tr data-site=\"", name, "\">")));
    EXPECT_EQ(Count(page, absl::StrCat("data-series=\"", name, "\"")), 4) << name;
  }

  const std::string sites_page = LoadPage("/sites", "sites", true);
  EXPECT_THAT(sites_page, HasSubstr("id=\"connected-count\">3 of 3</div>"));
  for (const char* name : kSites) {
    EXPECT_THAT(sites_page,
                HasSubstr(absl::StrCat("<tr data-site=\"", name, "\" data-connected=\"1\">")));
  }
  EXPECT_THAT(sites_page, HasSubstr("(in 3"));  // certificates of a year: "in 36x days"

  const std::string audit = LoadPage(absl::StrCat("/audit?run=", run), "audit", false);
  EXPECT_THAT(audit, HasSubstr("data-intact=\"1\""));
  EXPECT_THAT(audit, HasSubstr("run.started"));

  // Quick rounds may have finished the run meanwhile; otherwise end it.
  ASSERT_OK_AND_ASSIGN(status, coordinator.admin().GetRun(run));
  if (status.state() == "running") {
    absl::Status aborted = coordinator.admin().AbortRun(run, "dashboard test done");
    EXPECT_TRUE(aborted.ok() || absl::IsFailedPrecondition(aborted)) << aborted;
  }
}

}  // namespace
}  // namespace fedmi

int main(int argc, char** argv) {
  if (fedmi::ChromiumBinary().empty()) {
    std::cout << "SKIP: chromium is not installed (apt-get install chromium); the dashboard's "
                 "browser test needs it\n";
    return 77;
  }
  ::testing::InitGoogleMock(&argc, argv);
  return RUN_ALL_TESTS();
}
