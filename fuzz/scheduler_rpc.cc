// Every Scheduler method's request, as an operator's client or a worker on the network could
// send it, through a real scheduler (its own RocksDB run store) that plans on a real datamixer
// over a store of books, web pages and chats (datamixer/serve/test_corpus.h). Its trainer
// binary is /bin/false, so a run that passes every check plans its stage, launches a gang
// whose workers exit at once and fails, rather than training for minutes per input. Spec paths
// must lie under the process's scratch directory, which the seeds name /prolong-fuzz-root
// (rpc_call.h's RelocatePaths). Asserts rpc_call.h's promise: a well-formed request gets OK or
// an error a client can act on.
#include <cstdint>
#include <memory>
#include <string>

#include "datamixer/serve/datamixer_service.h"
#include "datamixer/serve/test_corpus.h"
#include "fuzz/check.h"
#include "fuzz/rpc_call.h"
#include "fuzz/scratch.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "prometheus/registry.h"
#include "scheduler/scheduler_service.h"

namespace {

std::shared_ptr<grpc::Channel> StartScheduler() {
  const std::string dir = prolong::fuzz::EmptyScratchDir("scheduler");
  static auto* registry = new prometheus::Registry;
  prolong::serve::testing::WriteTestCorpus(dir + "/store", /*seed=*/1);
  prolong::serve::DataMixerOptions datamixer_options;
  datamixer_options.store_dir = dir + "/store";
  auto datamixer = prolong::serve::DataMixerService::Create(datamixer_options, *registry);
  FUZZ_CHECK(datamixer.ok(), datamixer.status().ToString());
  const prolong::Server& datamixer_server = prolong::fuzz::ServeUntilExit(
      std::move(*datamixer), prolong::v1::DataMixer::service_full_name());

  const std::string root = prolong::fuzz::EmptyScratchDir("allowed");
  prolong::fuzz::RelocatePaths("/prolong-fuzz-root", root);
  prolong::scheduler::SchedulerServiceOptions options;
  options.state_dir = dir + "/scheduler";
  options.trainer_binary = "/bin/false";
  options.datamixer_address = datamixer_server.address();
  options.evaluator_address = "127.0.0.1:1";  // none: evaluations wait, as they would
  options.path_roots = {root};
  options.heartbeat_interval = absl::Milliseconds(200);
  options.restart_backoff = absl::Milliseconds(10);
  auto scheduler = prolong::scheduler::SchedulerService::Create(options, *registry);
  FUZZ_CHECK(scheduler.ok(), scheduler.status().ToString());
  prolong::scheduler::SchedulerService* service = scheduler->get();
  const prolong::Server& server = prolong::fuzz::ServeUntilExit(
      std::move(*scheduler), prolong::v1::Scheduler::service_full_name());
  service->Start(server.address());
  return prolong::fuzz::ChannelTo(server);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<grpc::Channel> channel = StartScheduler();
  prolong::fuzz::FuzzCall(channel, "prolong.v1.Scheduler", data, size);
  return 0;
}
