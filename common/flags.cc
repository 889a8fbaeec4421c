#include "common/flags.h"

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "common/version.h"

namespace latency {
namespace {

// Flags defined in a binary's main.cc or in the project's libraries.
bool IsProjectFlagFile(absl::string_view file) {
  return absl::StrContains(file, "main.cc") ||
         absl::StrContains(file, "/common/") ||
         absl::StrContains(file, "/server/") ||
         absl::StrContains(file, "/cli/") || absl::StrContains(file, "/agent/");
}

}  // namespace

std::vector<std::string> ParseFlags(int argc, char** argv,
                                    const std::string& program,
                                    const std::string& usage) {
  static std::string* const version = new std::string();
  *version = program + " " + kVersion + "\n";
  absl::FlagsUsageConfig config;
  config.version_string = [] { return *version; };
  config.contains_help_flags = IsProjectFlagFile;
  config.contains_helpshort_flags = IsProjectFlagFile;
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  return std::vector<std::string>(positional.begin() + 1, positional.end());
}

}  // namespace latency
