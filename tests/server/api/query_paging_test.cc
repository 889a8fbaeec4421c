// Bounded answers for large fleets: ListTargets pages (AIP-158), GetLatency
// (and so /metrics) lists at most max_targets, problems first.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/query.h"
#include "server/store/result_store.h"
#include "tests/testing/fake_clock.h"

namespace latency {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr int kTargets = 2500;

std::vector<TargetSpec> ManyTargets() {
  std::vector<TargetSpec> targets;
  for (int i = 0; i < kTargets; ++i) {
    targets.push_back(TargetSpec{.name = absl::StrCat("t", i),
                                 .host = "127.0.0.1",
                                 .grpc_enabled = false});
  }
  return targets;
}

class QueryPagingTest : public ::testing::Test {
 protected:
  QueryPagingTest()
      : store_(std::make_shared<ResultStore>(clock_, ManyTargets(),
                                             StatusThresholds{})),
        query_([this] {
          return StoreView{store_,
                           [](int) { return std::string("127.0.0.1"); }};
        }) {}

  // Three ICMP timeouts in a row: the target reads down.
  void MakeDown(int target) {
    for (int i = 0; i < 3; ++i) {
      Sample sample;
      sample.target_index = target;
      sample.kind = ProbeKind::kIcmp;
      sample.completed_ns = clock_.MonotonicNanos();
      sample.sent_ns = sample.scheduled_ns = sample.completed_ns - 1'000'000;
      sample.result = SampleResult::kTimeout;
      store_->Record(sample);
    }
  }

  testing::FakeClock clock_;
  std::shared_ptr<ResultStore> store_;
  QueryHandler query_;
};

TEST_F(QueryPagingTest, ListTargetsPagesThroughEveryTargetOnce) {
  std::vector<std::string> names;
  std::vector<int> page_sizes;
  v1::ListTargetsRequest request;
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListTargetsResponse> response =
        query_.ListTargets(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->total_size(), static_cast<uint32_t>(kTargets));
    page_sizes.push_back(response->targets_size());
    for (const v1::TargetSummary& target : response->targets()) {
      names.push_back(target.name());
    }
    if (response->next_page_token().empty()) break;
    request.set_page_token(response->next_page_token());
  }
  EXPECT_THAT(page_sizes, ElementsAre(1000, 1000, 500));
  ASSERT_EQ(names.size(), static_cast<size_t>(kTargets));
  for (int i = 0; i < kTargets; ++i) EXPECT_EQ(names[i], absl::StrCat("t", i));
}

TEST_F(QueryPagingTest, PageSizeIsHonouredAndCapped) {
  v1::ListTargetsRequest request;
  request.set_page_size(7);
  absl::StatusOr<v1::ListTargetsResponse> first = query_.ListTargets(request);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->targets_size(), 7);
  request.set_page_token(first->next_page_token());
  absl::StatusOr<v1::ListTargetsResponse> second = query_.ListTargets(request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->targets(0).name(), "t7");

  request.Clear();
  request.set_page_size(1'000'000);
  EXPECT_EQ(query_.ListTargets(request)->targets_size(), 1000);
}

TEST_F(QueryPagingTest, BadPageSizeOrTokenIsInvalidArgument) {
  v1::ListTargetsRequest request;
  request.set_page_size(-1);
  EXPECT_EQ(query_.ListTargets(request).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* token : {"garbage", "bz0xMjM0", "", "\xff"}) {
    request.Clear();
    if (*token == '\0') continue;
    request.set_page_token(token);
    absl::StatusOr<v1::ListTargetsResponse> response =
        query_.ListTargets(request);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument)
        << token;
  }
}

TEST_F(QueryPagingTest, GetLatencyListsAtMostMaxTargetsProblemsFirst) {
  MakeDown(2000);
  MakeDown(3);
  absl::StatusOr<v1::GetLatencyResponse> response =
      query_.GetLatency(v1::GetLatencyRequest());
  ASSERT_TRUE(response.ok());
  // The seed's fields still describe the first target and the worst status.
  EXPECT_EQ(response->target(), "t0");
  EXPECT_EQ(response->status(), "down");
  EXPECT_EQ(response->target_count(), static_cast<uint32_t>(kTargets));
  EXPECT_THAT(response->targets_by_status(),
              UnorderedElementsAre(Pair("down", 2), Pair("unknown", 2498)));
  ASSERT_EQ(response->targets_size(), 100);
  // Down before unknown, each in configuration order.
  EXPECT_EQ(response->targets(0).name(), "t3");
  EXPECT_EQ(response->targets(1).name(), "t2000");
  EXPECT_EQ(response->targets(2).name(), "t0");
  EXPECT_EQ(response->targets(5).name(), "t4");
  EXPECT_EQ(response->targets(99).name(), "t98");

  v1::GetLatencyRequest request;
  request.set_max_targets(5);
  EXPECT_EQ(query_.GetLatency(request)->targets_size(), 5);
  request.set_max_targets(100'000);
  EXPECT_EQ(query_.GetLatency(request)->targets_size(), 1000);
}

TEST(QueryFewTargetsTest, SmallFleetsListEveryTargetInOrder) {
  testing::FakeClock clock;
  auto store = std::make_shared<ResultStore>(
      clock,
      std::vector<TargetSpec>{{.name = "a", .host = "127.0.0.1"},
                              {.name = "b", .host = "127.0.0.1"}},
      StatusThresholds{});
  QueryHandler query([&] {
    return StoreView{store, [](int) { return std::string(); }};
  });
  absl::StatusOr<v1::GetLatencyResponse> latency =
      query.GetLatency(v1::GetLatencyRequest());
  ASSERT_TRUE(latency.ok());
  ASSERT_EQ(latency->targets_size(), 2);
  EXPECT_EQ(latency->targets(1).name(), "b");
  absl::StatusOr<v1::ListTargetsResponse> list =
      query.ListTargets(v1::ListTargetsRequest());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->targets_size(), 2);
  EXPECT_EQ(list->next_page_token(), "");
  EXPECT_EQ(list->total_size(), 2u);
}

}  // namespace
}  // namespace latency
