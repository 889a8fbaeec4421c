#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace latency {
namespace {

TEST(Utf8Test, WellFormedTextIsKept) {
  for (std::string text : {std::string(""), std::string("agent-1"),
                           std::string("caf\xc3\xa9"),          // U+00E9
                           std::string("\xe2\x82\xac"),         // U+20AC
                           std::string("\xf0\x9f\x98\x80"),     // U+1F600
                           std::string("\xf4\x8f\xbf\xbf")}) {  // U+10FFFF
    EXPECT_TRUE(IsValidUtf8(text)) << text;
    EXPECT_EQ(ToValidUtf8(text), text);
  }
}

TEST(Utf8Test, EachStrayByteBecomesOneReplacementCharacter) {
  const std::string kReplacement = "\xef\xbf\xbd";
  struct Case {
    std::string in, out;
  };
  for (const Case& c : {
           Case{"\xff", kReplacement}, Case{"a\x80z", "a" + kReplacement + "z"},
           Case{"\xc0\xaf", kReplacement + kReplacement},  // overlong '/'
           Case{"\xed\xa0\x80", kReplacement + kReplacement + kReplacement},
           Case{"\xf4\x90\x80\x80",  // above U+10FFFF
                kReplacement + kReplacement + kReplacement + kReplacement},
           Case{"caf\xc3", "caf" + kReplacement},  // cut mid-character
       }) {
    EXPECT_FALSE(IsValidUtf8(c.in));
    EXPECT_EQ(ToValidUtf8(c.in), c.out);
    EXPECT_TRUE(IsValidUtf8(ToValidUtf8(c.in)));
  }
}

}  // namespace
}  // namespace latency
