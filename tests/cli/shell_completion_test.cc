// `fedmi completion bash`: the script generated from the real command tree
// names every command, is valid bash, and completes as a user types.
#include "cli/shell_completion.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cli/fedmi_app.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedmi::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ShellCompletionTest : public ::testing::Test {
 protected:
  ShellCompletionTest() {
    AddFedmiCommands(app_, global_, result_, nullptr);
    script_ = BashCompletionScript(app_);
    path_ = ::testing::TempDir() + "fedmi_completion_" + std::to_string(getpid()) + ".bash";
    std::ofstream(path_) << script_;
  }
  ~ShellCompletionTest() override { std::remove(path_.c_str()); }

  // What bash offers for the command line `words` with the cursor on the
  // last word, one candidate a line.
  std::string Complete(const std::vector<std::string>& words) {
    std::string array;
    for (const std::string& word : words) array += " '" + word + "'";
    const std::string command =
        "bash -c 'source \"$0\"; COMP_WORDS=(\"${@}\"); "
        "COMP_CWORD=$(( $# - 1 )); _fedmi; "
        "printf \"%s\\n\" \"${COMPREPLY[@]}\"' '" +
        path_ + "'" + array;
    std::string output;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return "popen failed";
    std::array<char, 4096> buffer;
    while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
    pclose(pipe);
    return output;
  }

  CLI::App app_{"fedmi under test", "fedmi"};
  GlobalOptions global_;
  CommandResult result_;
  std::string script_;
  std::string path_;
};

void ExpectEveryCommandNamed(const CLI::App* app, const std::string& path,
                             const std::string& script) {
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    const std::string sub_path = path + " " + sub->get_name();
    // Its parent offers it, and it has its own entry with its flags.
    EXPECT_THAT(script, HasSubstr(" " + sub->get_name())) << sub_path;
    EXPECT_THAT(script, HasSubstr("\"" + sub_path + "\")")) << sub_path;
    ExpectEveryCommandNamed(sub, sub_path, script);
  }
}

TEST_F(ShellCompletionTest, NamesEveryCommandOfTheTree) {
  ExpectEveryCommandNamed(&app_, "fedmi", script_);
  // Spot checks against names typed by hand, in case the walk misses a level.
  for (const char* path : {"\"fedmi run status\")", "\"fedmi provision add-site\")",
                           "\"fedmi data inspect\")", "\"fedmi completion bash\")",
                           "\"fedmi version\")", "\"fedmi sim\")", "\"fedmi bench round\")"}) {
    EXPECT_THAT(script_, HasSubstr(path));
  }
  EXPECT_THAT(script_, HasSubstr("complete -o filenames -F _fedmi fedmi"));
}

TEST_F(ShellCompletionTest, IsValidBash) {
  if (std::system("command -v bash >/dev/null 2>&1") != 0) GTEST_SKIP() << "no bash";
  EXPECT_EQ(std::system(("bash -n '" + path_ + "'").c_str()), 0) << script_;
}

TEST_F(ShellCompletionTest, CompletesCommandsFlagsAndFiles) {
  if (std::system("command -v bash >/dev/null 2>&1") != 0) GTEST_SKIP() << "no bash";
  EXPECT_EQ(Complete({"fedmi", "ru"}), "run\n");
  EXPECT_EQ(Complete({"fedmi", "run", "sta"}), "start\nstatus\n");
  // Global flags (and their values) before the command are skipped.
  EXPECT_EQ(Complete({"fedmi", "--coordinator", "h:1", "site", "l"}), "list\n");
  // A flag that takes no value is skipped alone: the next word is a command,
  // and after it come commands or flags, not file names.
  EXPECT_EQ(Complete({"fedmi", "--insecure", "site", "l"}), "list\n");
  EXPECT_EQ(Complete({"fedmi", "run", "status", "--json", "--wat"}), "--watch\n");
  EXPECT_EQ(Complete({"fedmi", "--insecure", "si"}), "site\nsim\n");
  EXPECT_THAT(script_, Not(HasSubstr("_fedmi_value_flags() {\n  case \"$1\" in\n    \"fedmi\") "
                                     "echo \"--help")));
  // Global flags are offered after a subcommand too, where they are accepted.
  EXPECT_EQ(Complete({"fedmi", "site", "list", "--coord"}), "--coordinator\n");
  EXPECT_EQ(Complete({"fedmi", "run", "status", "--wat"}), "--watch\n");
  // After a flag that takes a value: file names.
  const std::string dir = ::testing::TempDir() + "fedmi_completion_dir_" + std::to_string(getpid());
  ASSERT_EQ(std::system(("mkdir -p '" + dir + "' && touch '" + dir + "/kit-ca.pem'").c_str()), 0);
  EXPECT_EQ(Complete({"fedmi", "site", "list", "--ca", dir + "/kit-"}), dir + "/kit-ca.pem\n");
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace fedmi::cli
