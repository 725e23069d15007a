#include "cli/shell_completion.h"

#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "cli/command_support.h"

namespace fedmi::cli {
namespace {

struct CommandWords {
  std::string path;  // "fedmi run status"
  std::vector<std::string> commands;
  std::vector<std::string> flags;
  std::vector<std::string> value_flags;  // flags that take a value
};

void AddOptionNames(const CLI::Option* option, CommandWords& words) {
  std::vector<std::string> names;
  for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  for (const std::string& name : option->get_snames()) names.push_back("-" + name);
  for (const std::string& name : names) {
    words.flags.push_back(name);
    // A flag (--insecure, --json) keeps type size 1 in CLI11 2.x; what
    // says it takes no value is that it expects 0 of them.
    if (option->get_items_expected_max() > 0) words.value_flags.push_back(name);
  }
}

void Collect(const CLI::App* command, const std::string& path, std::vector<CommandWords>& out) {
  CommandWords words;
  words.path = path;
  // A subcommand accepts its parents' flags too when it falls through to them.
  for (const CLI::App* app = command; app != nullptr; app = app->get_parent()) {
    for (const CLI::Option* option : app->get_options()) {
      if (option->get_positional()) continue;
      AddOptionNames(option, words);
    }
    if (!app->get_fallthrough()) break;
  }
  const std::vector<const CLI::App*> subcommands = command->get_subcommands(
      [](const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_disabled(); });
  for (const CLI::App* sub : subcommands) words.commands.push_back(sub->get_name());
  out.push_back(words);
  for (const CLI::App* sub : subcommands) {
    Collect(sub, absl::StrCat(path, " ", sub->get_name()), out);
  }
}

// One `case` over the command paths, echoing the words of each.
std::string CaseFunction(const std::string& name, const std::vector<CommandWords>& all,
                         std::vector<std::string> CommandWords::*field) {
  std::string text = absl::StrCat(name, "() {\n  case \"$1\" in\n");
  for (const CommandWords& words : all) {
    if ((words.*field).empty()) continue;
    absl::StrAppend(&text, "    \"", words.path, "\") echo \"", absl::StrJoin(words.*field, " "),
                    "\" ;;\n");
  }
  absl::StrAppend(&text, "  esac\n}\n");
  return text;
}

}  // namespace

std::string BashCompletionScript(const CLI::App& app) {
  const std::string program = app.get_name();
  const std::string id = absl::StrReplaceAll(program, {{"-", "_"}, {".", "_"}});
  std::vector<CommandWords> all;
  Collect(&app, program, all);
  std::string script =
      absl::StrCat("# bash completion for ", program, ", generated from its command tree by `",
                   program, " completion bash`.\n# Load it with: source <(", program,
                   " completion bash)\n# or copy it to ~/.local/share/bash-completion/completions/",
                   program, "\n\n");
  absl::StrAppend(&script,
                  CaseFunction(absl::StrCat("_", id, "_commands"), all, &CommandWords::commands));
  absl::StrAppend(&script,
                  CaseFunction(absl::StrCat("_", id, "_flags"), all, &CommandWords::flags));
  absl::StrAppend(&script, CaseFunction(absl::StrCat("_", id, "_value_flags"), all,
                                        &CommandWords::value_flags));
  // The words before the cursor select the command: flags (and the value
  // after one that takes a value) are skipped, names of subcommands descend.
  constexpr char kCompleteFunction[] = R"sh(_ID_() {
  local cur="${COMP_WORDS[COMP_CWORD]}" path="PROGRAM" word i=1
  while (( i < COMP_CWORD )); do
    word="${COMP_WORDS[i]}"
    if [[ $word == -* ]]; then
      if [[ $word != *=* && " $(_ID__value_flags "$path") " == *" $word "* ]]; then
        (( i++ ))
      fi
    elif [[ " $(_ID__commands "$path") " == *" $word "* ]]; then
      path="$path $word"
    fi
    (( i++ ))
  done
  local prev="${COMP_WORDS[COMP_CWORD-1]}"
  if (( COMP_CWORD > 1 )) && [[ $prev == -* && " $(_ID__value_flags "$path") " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_ID__flags "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_ID__commands "$path")" -- "$cur"))
    if (( ${#COMPREPLY[@]} == 0 )); then
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
  fi
  return 0
}
complete -o filenames -F _ID_ PROGRAM
)sh";
  absl::StrAppend(&script, absl::StrReplaceAll(kCompleteFunction, {{"_ID_", absl::StrCat("_", id)},
                                                                   {"PROGRAM", program}}));
  return script;
}

void AddCompletionCommand(CLI::App& app, CommandResult& result) {
  CLI::App* completion = app.add_subcommand(
      "completion", "print a shell completion script for fedmi: `source <(fedmi completion bash)`");
  CLI::App* bash = completion->add_subcommand(
      "bash", "the bash completion script (for ~/.local/share/bash-completion/completions/fedmi)");
  completion->require_subcommand(1);
  bash->callback([&app, &result] {
    RunCommand(result, [&app] {
      std::cout << BashCompletionScript(app) << std::flush;
      return kExitOk;
    });
  });
}

}  // namespace fedmi::cli
