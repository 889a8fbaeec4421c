#include "common/flags.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/version.h"

namespace latency {
namespace {

// The source tree's root as this file was compiled ("/src/" for
// "/src/common/flags.cc"), so help shows "server/main.cc", never the build
// machine's checkout path.
absl::string_view SourceRoot() {
  absl::string_view file = __FILE__;
  absl::string_view self = "common/flags.cc";
  return absl::EndsWith(file, self) ? file.substr(0, file.size() - self.size())
                                    : absl::string_view();
}

std::string NormalizeFlagFile(absl::string_view file) {
  absl::string_view root = SourceRoot();
  if (!root.empty() && absl::StartsWith(file, root)) {
    return std::string(file.substr(root.size()));
  }
  // ccache's base_dir compiles files below it by relative paths
  // (../../server/main.cc from build/server), whatever this file's was.
  while (absl::ConsumePrefix(&file, "../") ||
         absl::ConsumePrefix(&file, "./")) {
  }
  return std::string(absl::StripPrefix(file, "/"));
}

// Flags defined in a binary's main.cc or in the project's libraries (file
// names as NormalizeFlagFile leaves them).
bool IsProjectFlagFile(absl::string_view file) {
  return absl::StrContains(file, "main.cc") ||
         absl::StartsWith(file, "common/") ||
         absl::StartsWith(file, "server/") || absl::StartsWith(file, "cli/") ||
         absl::StartsWith(file, "agent/");
}

// If args[*i] is --name=V, -name=V, or --name V (then *i advances past V),
// returns V.
std::optional<std::string> TakeFlagValue(const std::vector<std::string>& args,
                                         size_t* i, const std::string& name) {
  for (const std::string& prefix : {"--" + name, "-" + name}) {
    if (args[*i] == prefix && *i + 1 < args.size()) return args[++*i];
    if (absl::StartsWith(args[*i], prefix + "=")) {
      return args[*i].substr(prefix.size() + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> ParseFlags(
    int argc, char** argv, const std::string& program, const std::string& usage,
    const std::vector<std::string>& repeatable) {
  static std::string* const version = new std::string();
  *version = program + " " + kVersion + "\n";
  absl::FlagsUsageConfig config;
  config.version_string = [] { return *version; };
  config.normalize_filename = NormalizeFlagFile;
  config.contains_help_flags = IsProjectFlagFile;
  config.contains_helpshort_flags = IsProjectFlagFile;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  const std::string usage_text = usage;
  // Merge each repeatable flag's occurrences into one comma-joined value.
  std::vector<std::string> args(argv, argv + argc);
  for (const std::string& name : repeatable) {
    std::vector<std::string> values;
    std::vector<std::string> kept;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--") {  // everything after is positional
        kept.insert(kept.end(), args.begin() + i, args.end());
        break;
      }
      if (std::optional<std::string> value = TakeFlagValue(args, &i, name)) {
        values.push_back(*value);
      } else {
        kept.push_back(args[i]);
      }
    }
    if (values.size() > 1) {
      kept.insert(kept.begin() + 1,
                  "--" + name + "=" + absl::StrJoin(values, ","));
      args = std::move(kept);
    }
  }
  std::vector<char*> merged;
  for (std::string& arg : args) merged.push_back(arg.data());
  // Abseil exits with 1 on a bad flag and after --help; our contract is 2
  // for usage errors and 0 for help. An atexit hook active only while
  // parsing turns Abseil's exit(1) into 2; usage flags are handled below.
  static std::atomic<bool> parsing{false};
  static const bool hooked = [] {
    return std::atexit([] {
             if (parsing) _exit(2);
           }) == 0;
  }();
  (void)hooked;
  parsing = true;
  std::vector<char*> positional = absl::flags_internal::ParseCommandLineImpl(
      static_cast<int>(merged.size()), merged.data(),
      absl::flags_internal::ArgvListAction::kRemoveParsedArgs,
      absl::flags_internal::UsageFlagsAction::kIgnoreUsage,
      absl::flags_internal::OnUndefinedFlag::kAbortIfUndefined);
  parsing = false;
  int handled = absl::flags_internal::HandleUsageFlags(std::cout, usage_text);
  if (handled >= 0) {
    std::cout.flush();
    std::exit(0);  // --help, --helpfull, --version and friends
  }
  return std::vector<std::string>(positional.begin() + 1, positional.end());
}

}  // namespace latency
