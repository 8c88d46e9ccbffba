// The Scheduler gRPC service (proto/prolong/v1/scheduler.proto): operators submit, list, watch
// and cancel runs; trainer workers register, heartbeat and report. Each run that has not ended
// has a RunDriver (run_driver.h) walking its stages, stepped on a DriverPool's few threads
// (driver_pool.h); runs, events and transitions live in the scheduler's RocksDB (runs.h), so a
// restarted scheduler picks up every run where it was.
//
// Thread-safety: every method may be called from many gRPC threads at once.
#ifndef PROLONG_SCHEDULER_SCHEDULER_SERVICE_H_
#define PROLONG_SCHEDULER_SCHEDULER_SERVICE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "prometheus/registry.h"

namespace prolong::scheduler {

struct SchedulerServiceOptions {
  // Holds the run store (state/) and, unless a spec says otherwise, runs' work directories
  // (runs/<id>: stage files and worker logs).
  std::string state_dir;
  // The trainer binary the launchers start.
  std::string trainer_binary;
  // The services a spec that names none uses.
  std::string datamixer_address;
  std::string evaluator_address;
  // Where a spec's paths may point (run_spec_check.h); empty: anywhere.
  std::vector<std::string> path_roots;
  // How often workers heartbeat.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Before a gang's first restart; doubled for each further one.
  absl::Duration restart_backoff = absl::Seconds(1);
  // Set for Slurm's commands and, through sbatch, the workers (e.g. SLURM_CONF).
  std::map<std::string, std::string> slurm_env;
  // WatchRun and StreamLogs calls served at once; beyond, RESOURCE_EXHAUSTED. Each holds a
  // thread for as long as its client watches.
  int max_watches = 256;
  // Runs not yet ended (side jobs aside); SubmitRun beyond is RESOURCE_EXHAUSTED. Slurm's
  // MaxJobCount has the same default.
  int max_unfinished_runs = 10000;
  // SubmitRun and CancelRun need "authorization: Bearer <auth_token>"; empty: no token asked.
  std::string auth_token;
  // How the scheduler calls the datamixer and the evaluator.
  ClientSecurity outgoing;
  // The TLS files (as the workers' machines see them) of the workers' calls to the scheduler
  // and the datamixer: the trainer's --client-tls-* flags. The token file is not forwarded.
  ClientSecurityFiles worker_tls;
};

// SubmitRun and GetRun use gRPC's callback API, whose handlers run on gRPC's own few threads
// and must not block. GetRun reads memory and answers there. SubmitRun checks the caller and
// the spec there, then queues the call: one thread creates the runs of every call queued
// meanwhile with one synced write (batch_worker.h, Runs::CreateMany), and dry runs, which call
// datamixers, go to threads of their own (call_workers.h). The other methods are synchronous.
class SchedulerService final
    : public v1::Scheduler::WithCallbackMethod_SubmitRun<
          v1::Scheduler::WithCallbackMethod_GetRun<v1::Scheduler::Service>> {
 public:
  // Opens the run store. FAILED_PRECONDITION when another scheduler holds it, NOT_FOUND for a
  // trainer binary that is not there.
  static absl::StatusOr<std::unique_ptr<SchedulerService>> Create(
      const SchedulerServiceOptions& options, prometheus::Registry& registry);
  // Stops driving (the runs stay as stored; their local gangs stop).
  ~SchedulerService() override;

  // Drives every stored run that has not ended, and each new one; workers are told to register
  // at `address` (the server's, as workers reach it). Call once, when the server is up.
  void Start(const std::string& address);

  grpc::ServerUnaryReactor* SubmitRun(grpc::CallbackServerContext* context,
                                      const v1::SubmitRunRequest* request,
                                      v1::Run* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const v1::GetRunRequest* request, v1::Run* response) override;
  grpc::Status ListRuns(grpc::ServerContext* context, const v1::ListRunsRequest* request,
                        v1::ListRunsResponse* response) override;
  grpc::Status CancelRun(grpc::ServerContext* context, const v1::CancelRunRequest* request,
                         v1::Run* response) override;
  grpc::Status WatchRun(grpc::ServerContext* context, const v1::WatchRunRequest* request,
                        grpc::ServerWriter<v1::RunEvent>* writer) override;
  grpc::Status StreamLogs(grpc::ServerContext* context, const v1::StreamLogsRequest* request,
                          grpc::ServerWriter<v1::LogLines>* writer) override;
  grpc::Status RegisterWorker(grpc::ServerContext* context,
                              const v1::RegisterWorkerRequest* request,
                              v1::WorkerAssignment* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status ReportMetrics(grpc::ServerContext* context, const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override;
  grpc::Status ReportCheckpoint(grpc::ServerContext* context,
                                const v1::ReportCheckpointRequest* request,
                                v1::ReportCheckpointResponse* response) override;

 private:
  struct State;
  explicit SchedulerService(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_SCHEDULER_SERVICE_H_
