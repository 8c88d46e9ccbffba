#include "services/prolongctl/health_command.h"

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/security.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace prolong::ctl {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

struct HealthFlags {
  std::string address;
  std::string service;
  double timeout_seconds = 5;
  double wait_seconds = 0;
  ClientSecurityFiles security_files;
};

int CheckHealth(const HealthFlags& flags) {
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity(flags.security_files);
  if (!security.ok()) {
    std::cerr << "prolongctl health: " << security.status().message() << std::endl;
    return 2;
  }
  auto stub = Health::NewStub(OpenChannel(flags.address, *security));
  const absl::Time give_up = absl::Now() + absl::Seconds(flags.wait_seconds);
  const std::string what =
      flags.service.empty() ? flags.address : flags.address + " " + flags.service;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(flags.timeout_seconds * 1000)));
    HealthCheckRequest request;
    request.set_service(flags.service);
    HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    const bool serving = status.ok() && response.status() == HealthCheckResponse::SERVING;
    if (serving || absl::Now() >= give_up) {
      if (serving) {
        std::cout << what << ": SERVING" << std::endl;
        return 0;
      }
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        std::cerr << what << ": unknown service" << std::endl;
        return 1;
      }
      if (status.ok()) {
        std::cerr << what << ": " << HealthCheckResponse::ServingStatus_Name(response.status())
                  << std::endl;
        return 1;
      }
      std::cerr << what << ": unreachable: " << status.error_message() << std::endl;
      return 2;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace

void AddHealthCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<HealthFlags>();
  CLI::App* command = app.add_subcommand(
      "health", "Check a service's health; exit 0 serving, 1 not serving, 2 unreachable");
  command->add_option("address", flags->address, "host:port of the service")->required();
  command->add_option("--service", flags->service,
                      "Full service name, e.g. prolong.v1.Scheduler (default: the whole server)");
  command->add_option("--timeout-seconds", flags->timeout_seconds, "Deadline of each check")
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--wait-seconds", flags->wait_seconds,
                   "Keep asking until SERVING or this much time has passed")
      ->check(CLI::NonNegativeNumber);
  AddClientSecurityFlags(*command, flags->security_files, "", /*with_token=*/false,
                         /*from_environment=*/true);
  command->callback([flags, exit_code] { *exit_code = CheckHealth(*flags); });
}

}  // namespace prolong::ctl
