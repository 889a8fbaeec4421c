#ifndef LATENCY_COMMON_FLAGS_H_
#define LATENCY_COMMON_FLAGS_H_

#include <string>
#include <vector>

namespace latency {

// Parses Abseil flags for one of the project's binaries: `--version` prints
// "<program> <version>", `--help` lists the project's own flags (not
// Abseil's internals; those stay under --helpfull), `usage` heads the help.
// Both exit 0; an unknown flag or a bad flag value exits 2 with a message.
// Returns the positional arguments after the program name.
//
// Abseil keeps only the last value of a flag given twice; each name in
// `repeatable` (a std::vector<std::string> flag) instead collects every
// occurrence, so `--target=a --target=b` means a,b.
std::vector<std::string> ParseFlags(
    int argc, char** argv, const std::string& program, const std::string& usage,
    const std::vector<std::string>& repeatable = {});

}  // namespace latency

#endif  // LATENCY_COMMON_FLAGS_H_
