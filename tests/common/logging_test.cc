#include "common/logging.h"

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"

namespace latency {
namespace {

using ::latency::testing::RunCommand;

std::string Format(spdlog::formatter& formatter, const std::string& message) {
  spdlog::memory_buf_t buffer;
  formatter.format(spdlog::details::log_msg("hostile", spdlog::level::info,
                                            spdlog::string_view_t(message)),
                   buffer);
  return std::string(buffer.data(), buffer.size());
}

// Messages a hostile agent or a mistyped config could put in an error text:
// record forgeries, then seeded random mixes of quotes, backslashes, control
// bytes, multi-byte UTF-8 and bytes that are not UTF-8.
std::vector<std::string> HostileMessages() {
  std::vector<std::string> messages = {
      "",
      R"(","level":"critical","msg":"forged)",
      "x\"}\n{\"time\":\"t\",\"level\":\"error\",\"logger\":\"agent\","
      "\"msg\":\"forged",
      "back\\slash \\\" \\u0000 \\n",
      std::string("nul\0byte", 8),
      "\r\n\t\b\f\x1b[31mred\x1b[0m\x7f",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8",
      "stray \xff \xc3 \xed\xa0\x80 end",
  };
  const std::vector<std::string> alphabet = {"\"",
                                             "\\",
                                             "\n",
                                             "\r",
                                             "\t",
                                             std::string(1, '\0'),
                                             "\x01",
                                             "\x1f",
                                             "\x7f",
                                             "{",
                                             "}",
                                             ",",
                                             ":",
                                             "a",
                                             "Z",
                                             " ",
                                             "/",
                                             "\xc3\xa9",
                                             "\xe2\x82\xac",
                                             "\xf0\x9f\x98\x80",
                                             "\xff",
                                             "\xc3",
                                             "\x80",
                                             "%",
                                             "u"};
  std::mt19937 random(13);
  for (int i = 0; i < 2000; ++i) {
    std::string message;
    int length = static_cast<int>(random() % 40);
    for (int j = 0; j < length; ++j) {
      message += alphabet[random() % alphabet.size()];
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

// Checks every line with Python's json module: one object per message, the
// four fields and no others (nothing forged), and for well-formed UTF-8 the
// message exactly as logged.
constexpr char kCheckScript[] = R"(
import json, sys
lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
assert lines[-1] == '', 'output must end with a newline'
lines = lines[:-1]
expected = open(sys.argv[2]).read().split('\n')[:-1]
assert len(lines) == len(expected), (len(lines), len(expected))
for line, want in zip(lines, expected):
    record = json.loads(line)
    assert sorted(record) == ['level', 'logger', 'msg', 'time'], line
    assert record['level'] == 'info' and record['logger'] == 'hostile', line
    valid, hexed = want.split(' ') if ' ' in want else (want, '')
    if valid == '1':
        assert record['msg'] == bytes.fromhex(hexed).decode('utf-8'), line
    else:
        assert isinstance(record['msg'], str), line
print('checked', len(lines))
)";

TEST(LoggingTest, EveryJsonLineParsesAndCarriesTheMessageExactly) {
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter =
      MakeLogFormatter("json");
  ASSERT_TRUE(formatter.ok()) << formatter.status();
  const std::string dir = ::testing::TempDir();
  const std::string log_path = dir + "/logging_test_json.log";
  const std::string expected_path = dir + "/logging_test_expected.txt";
  const std::string script_path = dir + "/logging_test_check.py";
  {
    std::ofstream log(log_path, std::ios::binary);
    std::ofstream expected(expected_path);
    std::ofstream script(script_path);
    script << kCheckScript;
    for (const std::string& message : HostileMessages()) {
      log << Format(**formatter, message);
      expected << (IsValidUtf8(message) ? "1 " : "0 ")
               << absl::BytesToHexString(message) << "\n";
    }
  }
  testing::CommandResult result =
      RunCommand({"python3", script_path, log_path, expected_path});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("checked 2008"), std::string::npos)
      << result.output;
}

TEST(LoggingTest, TextLinesHoldNoControlCharacters) {
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter =
      MakeLogFormatter("text");
  ASSERT_TRUE(formatter.ok()) << formatter.status();
  for (const std::string& message : HostileMessages()) {
    std::string line = Format(**formatter, message);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    line.pop_back();
    for (char c : line) {
      unsigned char byte = static_cast<unsigned char>(c);
      ASSERT_TRUE(byte >= 0x20 && byte != 0x7f)
          << "raw byte " << static_cast<int>(byte) << " in "
          << absl::CHexEscape(line);
    }
  }
}

TEST(LoggingTest, TextKeepsPrintableMessagesAsTheyAre) {
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter =
      MakeLogFormatter("text");
  ASSERT_TRUE(formatter.ok());
  std::string line = Format(**formatter, "agent \"a-1\" caf\xc3\xa9 C:\\x");
  EXPECT_TRUE(absl::EndsWith(line,
                             "info [hostile] agent \"a-1\" caf\xc3\xa9 "
                             "C:\\x\n"))
      << line;
  line = Format(**formatter, "two\nlines\tand\x1b");
  EXPECT_TRUE(absl::EndsWith(line, "[hostile] two\\nlines\\tand\\x1b\n"))
      << line;
}

TEST(LoggingTest, UnknownFormatNamesTheFlag) {
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter =
      MakeLogFormatter("xml");
  ASSERT_FALSE(formatter.ok());
  EXPECT_NE(formatter.status().message().find("--log_format"),
            std::string::npos);
}

}  // namespace
}  // namespace latency
