#include "scheduler/runs.h"

#include <stdlib.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

std::string NewStoreDir() {
  std::string dir = absl::StrCat(::testing::TempDir(), "/runs-XXXXXX");
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir + "/store";
}

v1::RunSpec Spec() {
  v1::RunSpec spec;
  spec.set_name("test");
  spec.add_stages()->set_name("short");
  return spec;
}

// A change that counts in the run (a read-modify-write) and adds one event.
absl::StatusOr<v1::Run> AddStep(Runs& runs, const std::string& run_id,
                                RunStore::Durability durability = RunStore::Durability::kSynced) {
  return runs.Update(
      run_id,
      [](v1::Run& run, std::vector<v1::RunEvent>& events) {
        run.set_step(run.step() + 1);
        events.emplace_back().mutable_metrics()->set_step(run.step());
        return absl::OkStatus();
      },
      durability);
}

// Every event after `after`, read as a watcher reads them, in batches.
std::vector<v1::RunEvent> ReadAll(const Runs& runs, const std::string& run_id, int64_t after) {
  std::vector<v1::RunEvent> all;
  while (true) {
    bool ended = false;
    auto events = runs.WaitForEvents(run_id, after, absl::ZeroDuration(), &ended);
    EXPECT_OK(events);
    if (!events.ok() || events->empty()) return all;
    after = events->back().sequence();
    all.insert(all.end(), events->begin(), events->end());
  }
}

void ExpectSequencesFrom(const std::vector<v1::RunEvent>& events, int64_t first) {
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].sequence(), first + static_cast<int64_t>(i)) << "event " << i;
  }
}

// A pending run's wait reason is shown but not stored, and never replaces a later state's.
TEST(RunsTest, APendingMessageIsShownNotStoredAndOnlyWhilePending) {
  const std::string dir = NewStoreDir();
  std::string run_id;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
    bool created = false;
    ASSERT_OK_AND_ASSIGN(const v1::Run run, runs->Create(Spec(), "", &created));
    run_id = run.run_id();
    ASSERT_OK(runs->SetPendingMessage(run_id, "waiting: datamixer down"));
    ASSERT_OK_AND_ASSIGN(const v1::Run shown, runs->Get(run_id));
    EXPECT_EQ(shown.message(), "waiting: datamixer down");
    EXPECT_EQ(runs->SetPendingMessage("no-such-run", "x").code(), absl::StatusCode::kNotFound);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
  ASSERT_OK_AND_ASSIGN(const v1::Run reopened, runs->Get(run_id));
  EXPECT_EQ(reopened.message(), "");
  ASSERT_OK(runs->Transition(run_id, v1::RUN_STATE_CANCELLED, "cancelled by the operator"));
  ASSERT_OK(runs->SetPendingMessage(run_id, "waiting: datamixer down"));
  ASSERT_OK_AND_ASSIGN(const v1::Run cancelled, runs->Get(run_id));
  EXPECT_EQ(cancelled.message(), "cancelled by the operator");
}

TEST(RunsTest, ForEachVisitsEveryRunOnce) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(NewStoreDir()));
  std::set<std::string> created;
  for (int k = 0; k < 5; ++k) {
    bool fresh = false;
    ASSERT_OK_AND_ASSIGN(const v1::Run run, runs->Create(Spec(), "", &fresh));
    created.insert(run.run_id());
  }
  std::multiset<std::string> visited;
  runs->ForEach([&](const v1::Run& run) { visited.insert(run.run_id()); });
  EXPECT_EQ(std::set<std::string>(visited.begin(), visited.end()), created);
  EXPECT_EQ(visited.size(), created.size());
}

// At the cap, a new run is refused until one ends; a side job and a retried request still go.
TEST(RunsTest, NewRunsBeyondTheUnfinishedCapAreRefused) {
  const std::string dir = NewStoreDir();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir, 2));
  bool created = false;
  ASSERT_OK_AND_ASSIGN(v1::Run first, runs->Create(Spec(), "first", &created));
  ASSERT_OK(runs->Create(Spec(), "", &created));
  const absl::StatusOr<v1::Run> refused = runs->Create(Spec(), "third", &created);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(),
            "already 2 unfinished runs (--max-unfinished-runs), the most this scheduler holds; "
            "retry once some have ended");
  EXPECT_FALSE(created);
  // The same request again is its run, not a new one.
  ASSERT_OK_AND_ASSIGN(v1::Run again, runs->Create(Spec(), "first", &created));
  EXPECT_EQ(again.run_id(), first.run_id());
  v1::SideJobOf parent;
  parent.set_run_id(first.run_id());
  ASSERT_OK(runs->Create(Spec(), "", &created, &parent));
  EXPECT_TRUE(created);

  ASSERT_OK(runs->Transition(first.run_id(), v1::RUN_STATE_CANCELLED, "cancelled"));
  EXPECT_OK(runs->Create(Spec(), "third", &created));
  EXPECT_TRUE(created);

  // Reopened, the store's unfinished runs count as before.
  runs.reset();
  ASSERT_OK_AND_ASSIGN(runs, Runs::Open(dir, 2));
  EXPECT_EQ(runs->Create(Spec(), "fourth", &created).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// The request ids a store holds are known again once it is reopened: a submission retried
// across a restart of the scheduler is its run, not a second one.
TEST(RunsTest, ARequestIdNamesItsRunAfterTheStoreIsReopened) {
  const std::string dir = NewStoreDir();
  std::string first, second;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
    bool created = false;
    ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(Spec(), "request-1", &created));
    first = run.run_id();
    ASSERT_OK_AND_ASSIGN(run, runs->Create(Spec(), "request-2", &created));
    second = run.run_id();
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
  bool created = true;
  ASSERT_OK_AND_ASSIGN(v1::Run again, runs->Create(Spec(), "request-2", &created));
  EXPECT_FALSE(created);
  EXPECT_EQ(again.run_id(), second);
  ASSERT_OK_AND_ASSIGN(again, runs->Create(Spec(), "request-1", &created));
  EXPECT_FALSE(created);
  EXPECT_EQ(again.run_id(), first);
  ASSERT_OK_AND_ASSIGN(v1::Run fresh, runs->Create(Spec(), "request-3", &created));
  EXPECT_TRUE(created);
  EXPECT_EQ(runs->List().size(), 3u);
}

// A batch of submissions: each new one a run, written with the others; a request id seen
// before, or twice in the batch, one run; at the cap, the rest refused. All as the store has it.
TEST(RunsTest, ABatchOfSubmissionsIsCreatedAsOneByOneWouldBe) {
  const std::string dir = NewStoreDir();
  const v1::RunSpec spec = Spec();
  std::string before, repeated;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir, /*max_unfinished=*/4));
    bool created = false;
    ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(spec, "before", &created));
    before = run.run_id();
    std::vector<Runs::Submission> batch(6);
    const std::vector<std::string> request_ids = {"a", "before", "b", "a", "", "c"};
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].spec = &spec;
      batch[i].request_id = request_ids[i];
    }
    runs->CreateMany(batch);
    // "a", "b" and the one without a request id are new; the cap (4 unfinished) refuses "c".
    ASSERT_OK(batch[0].run);
    EXPECT_TRUE(batch[0].created);
    ASSERT_OK(batch[1].run);
    EXPECT_FALSE(batch[1].created);
    EXPECT_EQ(batch[1].run->run_id(), before);
    ASSERT_OK(batch[2].run);
    EXPECT_TRUE(batch[2].created);
    ASSERT_OK(batch[3].run);
    EXPECT_FALSE(batch[3].created);
    EXPECT_EQ(batch[3].run->run_id(), batch[0].run->run_id());
    ASSERT_OK(batch[4].run);
    EXPECT_TRUE(batch[4].created);
    EXPECT_EQ(batch[5].run.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_FALSE(batch[5].created);
    EXPECT_EQ(batch[2].run->state(), v1::RUN_STATE_PENDING);
    EXPECT_EQ(ReadAll(*runs, batch[2].run->run_id(), 0).size(), 1u);
    repeated = batch[0].run->run_id();
  }
  // Written: a reopened store has the four runs, and "a" is still its run.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
  EXPECT_EQ(runs->List().size(), 4u);
  bool created = true;
  ASSERT_OK_AND_ASSIGN(v1::Run again, runs->Create(spec, "a", &created));
  EXPECT_FALSE(created);
  EXPECT_EQ(again.run_id(), repeated);
}

TEST(RunsTest, ConcurrentSubmissionsUnderOneRequestIdCreateOneRun) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(NewStoreDir()));
  constexpr int kClients = 16;
  std::vector<std::string> ids(kClients);
  std::atomic<int> created_count{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      bool created = false;
      absl::StatusOr<v1::Run> run = runs->Create(Spec(), "request-1", &created);
      ASSERT_OK(run);
      ids[i] = run->run_id();
      if (created) ++created_count;
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(created_count, 1);
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(runs->List().size(), 1u);
}

TEST(RunsTest, ConcurrentChangesOfOneRunLoseNoneAndKeepTheEventsInOrder) {
  const std::string dir = NewStoreDir();
  std::string run_id;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(dir));
    bool created = false;
    ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(Spec(), "", &created));
    run_id = run.run_id();
    constexpr int kWriters = 8, kChanges = 50;
    std::vector<std::thread> writers;
    for (int i = 0; i < kWriters; ++i) {
      writers.emplace_back([&, i] {
        for (int k = 0; k < kChanges; ++k) {
          ASSERT_OK(
              AddStep(*runs, run_id,
                      i % 2 ? RunStore::Durability::kBuffered : RunStore::Durability::kSynced));
        }
      });
    }
    for (std::thread& writer : writers) writer.join();
    ASSERT_OK_AND_ASSIGN(run, runs->Get(run_id));
    EXPECT_EQ(run.step(), kWriters * kChanges);
    const std::vector<v1::RunEvent> events = ReadAll(*runs, run_id, 0);
    ASSERT_EQ(events.size(), 1u + kWriters * kChanges);
    ExpectSequencesFrom(events, 1);
    // The k-th change saw the k-1 before it.
    for (int k = 1; k < static_cast<int>(events.size()); ++k) {
      EXPECT_EQ(events[k].metrics().step(), k);
    }
  }
  // All of it is in the store.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> reopened, Runs::Open(dir));
  ASSERT_OK_AND_ASSIGN(v1::Run run, reopened->Get(run_id));
  EXPECT_EQ(run.step(), 400);
  const std::vector<v1::RunEvent> events = ReadAll(*reopened, run_id, 0);
  ASSERT_EQ(events.size(), 401u);
  ExpectSequencesFrom(events, 1);
}

TEST(RunsTest, AWatcherFarBehindReadsTheOlderEventsFromTheStore) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(NewStoreDir()));
  bool created = false;
  ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(Spec(), "", &created));
  // More events than memory keeps.
  constexpr int kChanges = 2500;
  for (int k = 0; k < kChanges; ++k) {
    ASSERT_OK(AddStep(*runs, run.run_id(), RunStore::Durability::kBuffered));
  }
  for (int64_t after : {0, 1, 1400, 2000, 2499}) {
    const std::vector<v1::RunEvent> events = ReadAll(*runs, run.run_id(), after);
    ASSERT_EQ(events.size(), static_cast<size_t>(kChanges + 1 - after)) << "after " << after;
    ExpectSequencesFrom(events, after + 1);
  }
  EXPECT_TRUE(ReadAll(*runs, run.run_id(), kChanges + 1).empty());
}

TEST(RunsTest, AWaitingWatcherWakesForTheNextEventAndEndsWithTheRun) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(NewStoreDir()));
  bool created = false;
  ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(Spec(), "", &created));
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_OK(AddStep(*runs, run.run_id()));
  });
  const absl::Time start = absl::Now();
  bool ended = true;
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RunEvent> events,
                       runs->WaitForEvents(run.run_id(), 1, absl::Seconds(30), &ended));
  writer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sequence(), 2);
  EXPECT_FALSE(ended);

  ASSERT_OK(runs->Transition(run.run_id(), v1::RUN_STATE_CANCELLED, "not needed"));
  // Ended only once the watcher has every event.
  ASSERT_OK_AND_ASSIGN(events, runs->WaitForEvents(run.run_id(), 1, absl::Seconds(30), &ended));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(ended);
  EXPECT_EQ(events[1].state_changed().to(), v1::RUN_STATE_CANCELLED);
  // A refused change shows nothing, writes nothing and holds up no later change.
  EXPECT_FALSE(
      runs->Update(run.run_id(),
                   [](v1::Run&, auto&) { return absl::FailedPreconditionError("refused"); })
          .ok());
  EXPECT_TRUE(ReadAll(*runs, run.run_id(), 3).empty());
  ASSERT_OK(AddStep(*runs, run.run_id()));
  EXPECT_EQ(ReadAll(*runs, run.run_id(), 3).size(), 1u);
}

TEST(RunsTest, ACheckpointIsRecordedOnceHoweverOftenItIsAdded) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Runs> runs, Runs::Open(NewStoreDir()));
  bool created = false;
  ASSERT_OK_AND_ASSIGN(v1::Run run, runs->Create(Spec(), "", &created));
  v1::Checkpoint second;
  second.set_stage("short");
  second.set_step(2);
  v1::Checkpoint fourth = second;
  fourth.set_step(4);
  std::vector<v1::Checkpoint> added;
  ASSERT_OK(runs->AddCheckpoints(run.run_id(), {second}, &added));
  EXPECT_EQ(added.size(), 1u);
  // Reported again, and found again with a newer one.
  ASSERT_OK(runs->AddCheckpoints(run.run_id(), {second}, &added));
  EXPECT_TRUE(added.empty());
  ASSERT_OK_AND_ASSIGN(run, runs->AddCheckpoints(run.run_id(), {second, fourth}, &added));
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].step(), 4);
  EXPECT_TRUE(HasCheckpoint(run, "short", 2));
  EXPECT_TRUE(HasCheckpoint(run, "short", 4));
  EXPECT_FALSE(HasCheckpoint(run, "long", 4));
  EXPECT_EQ(run.checkpoints_size(), 2);
  int checkpoint_events = 0;
  for (const v1::RunEvent& event : ReadAll(*runs, run.run_id(), 0)) {
    checkpoint_events += event.has_checkpoint();
  }
  EXPECT_EQ(checkpoint_events, 2);
}

}  // namespace
}  // namespace prolong::scheduler
