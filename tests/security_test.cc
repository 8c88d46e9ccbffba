// TLS and bearer tokens on real service processes, with certificates made by the openssl command
// line for the occasion (a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate, and a second CA that the services do not trust):
//   - a TLS scheduler refuses plaintext clients and clients that do not trust its CA;
//   - with --tls-client-ca it refuses clients without a certificate, or with one another CA
//     signed, and serves clients whose certificate its CA signed;
//   - the scheduler (SubmitRun, CancelRun), the datamixer (Ingest) and the evaluator (Evaluate)
//     answer UNAUTHENTICATED without the token, PERMISSION_DENIED with another one, and carry
//     on with it; reads and workers' calls need none;
//   - `prolongctl run` sends the token of --token-file or PROLONG_TOKEN_FILE, and says what is
//     missing without it;
//   - a run trains to the end with mutual TLS and tokens everywhere: prolongctl to the
//     scheduler, the scheduler to the datamixer, its workers to both;
//   - a service whose TLS or token settings are incomplete does not start.

#include "common/security.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status_matchers.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong {
namespace {

using testing::ServiceProcess;

constexpr char kToken[] = "correct-horse-battery-staple";

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string Absolute(const std::string& path) { return std::filesystem::absolute(path).string(); }

void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<testing::RunResult> result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << absl::StrJoin(argv, " ") << ": " << result->stderr_text;
}

// Certificates and tokens, made once for every test.
struct Pki {
  std::string dir;
  std::string ca, ca_key;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string rogue_ca, rogue_client_cert, rogue_client_key;
  std::string token, wrong_token;

  // A P-256 key and a certificate for `subject` signed by `ca` (self-signed when empty).
  void Issue(const std::string& name, const std::string& subject, const std::string& ca_name,
             const std::string& extensions) {
    const std::string key = dir + "/" + name + ".key";
    const std::string cert = dir + "/" + name + ".pem";
    if (ca_name.empty()) {
      OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", subject, "-addext",
               "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"});
      return;
    }
    const std::string csr = dir + "/" + name + ".csr";
    OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", subject});
    const std::string extfile = WriteFile(dir, name + ".ext", extensions);
    OpenSsl({"x509", "-req", "-in", csr, "-CA", dir + "/" + ca_name + ".pem", "-CAkey",
             dir + "/" + ca_name + ".key", "-CAcreateserial", "-out", cert, "-days", "2",
             "-extfile", extfile});
  }
};

const Pki& Certificates() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    p->dir = testing::MakeTempDir();
    p->Issue("ca", "/CN=prolong test CA", "", "");
    p->Issue("server", "/CN=localhost", "ca",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    p->Issue("client", "/CN=prolong worker", "ca", "extendedKeyUsage=clientAuth\n");
    p->Issue("rogue-ca", "/CN=someone else's CA", "", "");
    p->Issue("rogue-client", "/CN=intruder", "rogue-ca", "extendedKeyUsage=clientAuth\n");
    p->ca = p->dir + "/ca.pem";
    p->ca_key = p->dir + "/ca.key";
    p->server_cert = p->dir + "/server.pem";
    p->server_key = p->dir + "/server.key";
    p->client_cert = p->dir + "/client.pem";
    p->client_key = p->dir + "/client.key";
    p->rogue_ca = p->dir + "/rogue-ca.pem";
    p->rogue_client_cert = p->dir + "/rogue-client.pem";
    p->rogue_client_key = p->dir + "/rogue-client.key";
    p->token = WriteFile(p->dir, "token", absl::StrCat(kToken, "\n"));
    p->wrong_token = WriteFile(p->dir, "wrong-token", "tr0ub4dor&3\n");
    return p;
  }();
  return *pki;
}

std::vector<std::string> ServerTls(bool mutual) {
  const Pki& pki = Certificates();
  std::vector<std::string> flags = {"--tls-cert=" + pki.server_cert, "--tls-key=" + pki.server_key};
  if (mutual) flags.push_back("--tls-client-ca=" + pki.ca);
  return flags;
}

ServiceProcess StartScheduler(const std::vector<std::string>& extra,
                              const std::string& datamixer = "127.0.0.1:1") {
  std::vector<std::string> argv = {testing::kSchedulerBinary,
                                   "--state-dir=" + testing::MakeTempDir(),
                                   "--address=127.0.0.1:0",
                                   "--metrics-address=off",
                                   "--trainer-binary=" + Absolute(testing::kTrainerBinary),
                                   "--datamixer=" + datamixer,
                                   "--heartbeat-interval-ms=200",
                                   "--restart-backoff-ms=200"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto scheduler = testing::StartService(argv);
  EXPECT_OK(scheduler);
  return scheduler.ok() ? *std::move(scheduler) : ServiceProcess();
}

ClientSecurity Client(const std::string& ca, const std::string& cert = "",
                      const std::string& key = "", const std::string& token_file = "") {
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity({ca, cert, key, token_file});
  EXPECT_OK(security);
  return security.ok() ? *security : ClientSecurity();
}

grpc::Status ListRuns(const std::string& address, const ClientSecurity& security) {
  auto stub = v1::Scheduler::NewStub(OpenChannel(address, security));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  AddCredentials(context, security);
  v1::ListRunsResponse response;
  return stub->ListRuns(&context, v1::ListRunsRequest(), &response);
}

ClientSecurity WithToken(const std::string& token) {
  ClientSecurity security;
  security.token = token;
  return security;
}

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
}

// A one-stage run of a tiny Llama on one worker, 2 steps of 4 sequences of 64 tokens.
std::string Spec(const std::string& checkpoint_dir) {
  return absl::StrCat(R"(name: secure
seed: 3
deterministic: true
)",
                      testing::kTinyModelYaml, R"(stages:
  - name: short
    seq_len: 64
    batch_tokens: 256
    total_tokens: 512
    schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
    mixture:
      - {domain: books, proportion: 0.5, packing: long}
      - {domain: web, proportion: 0.5, packing: short}
resources: {data_parallel: 1}
checkpoint: {directory: )",
                      checkpoint_dir, R"(, every_steps: 1}
fault: {max_restarts: 0, heartbeat_timeout: 10s, rendezvous_timeout: 60s}
)");
}

testing::RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
  args.insert(args.begin(), testing::kProlongctlBinary);
  absl::StatusOr<testing::RunResult> result = testing::Run(args, timeout);
  EXPECT_OK(result);
  return result.ok() ? *result : testing::RunResult();
}

TEST(SecurityTest, ATlsSchedulerServesOnlyClientsThatTrustItsCa) {
  const Pki& pki = Certificates();
  ServiceProcess scheduler = StartScheduler(ServerTls(/*mutual=*/false));
  EXPECT_EQ(ListRuns(scheduler.address, ClientSecurity()).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a plaintext client reached a TLS server";
  EXPECT_EQ(ListRuns(scheduler.address, Client(pki.rogue_ca)).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client trusted a certificate its CA did not sign";
  const grpc::Status trusted = ListRuns(scheduler.address, Client(pki.ca));
  EXPECT_TRUE(trusted.ok()) << trusted.error_message();
  // The certificate names localhost too.
  const std::string port = scheduler.address.substr(scheduler.address.rfind(':'));
  const grpc::Status by_name = ListRuns("localhost" + port, Client(pki.ca));
  EXPECT_TRUE(by_name.ok()) << by_name.error_message();

  const testing::RunResult healthy =
      Ctl({"health", scheduler.address, "--tls-ca=" + pki.ca, "--timeout-seconds=10"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.stderr_text;
  const testing::RunResult plaintext = Ctl({"health", scheduler.address, "--timeout-seconds=10"});
  EXPECT_EQ(plaintext.exit_code, 2) << plaintext.stdout_text;
}

TEST(SecurityTest, MutualTlsServesOnlyClientsWithACertificateOfItsCa) {
  const Pki& pki = Certificates();
  ServiceProcess scheduler = StartScheduler(ServerTls(/*mutual=*/true));
  EXPECT_EQ(ListRuns(scheduler.address, Client(pki.ca)).error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a client without a certificate was served";
  EXPECT_EQ(ListRuns(scheduler.address, Client(pki.ca, pki.rogue_client_cert, pki.rogue_client_key))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "a client with a certificate of another CA was served";
  const grpc::Status signed_client =
      ListRuns(scheduler.address, Client(pki.ca, pki.client_cert, pki.client_key));
  EXPECT_TRUE(signed_client.ok()) << signed_client.error_message();
}

TEST(SecurityTest, TheSchedulerAsksForTheTokenOnSubmitAndCancelOnly) {
  ServiceProcess scheduler = StartScheduler({"--auth-token-file=" + Certificates().token});
  auto stub = v1::Scheduler::NewStub(OpenChannel(scheduler.address, ClientSecurity()));
  struct Case {
    ClientSecurity security;
    grpc::StatusCode submit;
    grpc::StatusCode cancel;
  };
  const std::vector<Case> cases = {
      // An empty spec is refused, and an unknown run not found: the token was accepted.
      {WithToken(kToken), grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::NOT_FOUND},
      {WithToken("tr0ub4dor&3"), grpc::StatusCode::PERMISSION_DENIED,
       grpc::StatusCode::PERMISSION_DENIED},
      {WithToken(absl::StrCat(kToken, "x")), grpc::StatusCode::PERMISSION_DENIED,
       grpc::StatusCode::PERMISSION_DENIED},
      {ClientSecurity(), grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNAUTHENTICATED},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.security.token.empty() ? "no token" : c.security.token);
    v1::Run run;
    grpc::ClientContext submit;
    SetDeadline(submit);
    AddCredentials(submit, c.security);
    const grpc::Status submitted = stub->SubmitRun(&submit, v1::SubmitRunRequest(), &run);
    EXPECT_EQ(submitted.error_code(), c.submit) << submitted.error_message();
    grpc::ClientContext cancel;
    SetDeadline(cancel);
    AddCredentials(cancel, c.security);
    v1::CancelRunRequest request;
    request.set_run_id("no-such-run");
    const grpc::Status cancelled = stub->CancelRun(&cancel, request, &run);
    EXPECT_EQ(cancelled.error_code(), c.cancel) << cancelled.error_message();
    if (c.submit == grpc::StatusCode::UNAUTHENTICATED) {
      EXPECT_EQ(submitted.error_message(),
                "this call needs a bearer token (authorization: Bearer ...)");
    }
  }
  // Reads and workers' calls need no token.
  EXPECT_TRUE(ListRuns(scheduler.address, ClientSecurity()).ok());
  grpc::ClientContext get;
  SetDeadline(get);
  v1::GetRunRequest get_request;
  get_request.set_run_id("no-such-run");
  v1::Run run;
  EXPECT_EQ(stub->GetRun(&get, get_request, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext registering;
  SetDeadline(registering);
  v1::RegisterWorkerRequest register_request;
  register_request.set_run_id("no-such-run");
  register_request.set_attempt(1);
  v1::WorkerAssignment assignment;
  EXPECT_EQ(stub->RegisterWorker(&registering, register_request, &assignment).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(SecurityTest, TheDatamixerAsksForTheTokenOnIngest) {
  const std::string store = testing::MakeTempDir() + "/store";
  ASSERT_OK(testing::WriteLearnableCorpus(store));
  auto datamixer =
      testing::StartService({testing::kDatamixerBinary, "--store=" + store, "--address=127.0.0.1:0",
                             "--metrics-address=off", "--auth-token-file=" + Certificates().token});
  ASSERT_OK(datamixer);
  auto stub = v1::DataMixer::NewStub(OpenChannel(datamixer->address, ClientSecurity()));
  auto ingest = [&](const ClientSecurity& security) {
    grpc::ClientContext context;
    SetDeadline(context);
    AddCredentials(context, security);
    v1::IngestSummary summary;
    auto writer = stub->Ingest(&context, &summary);
    writer->WritesDone();
    return writer->Finish();
  };
  EXPECT_EQ(ingest(ClientSecurity()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ingest(WithToken("tr0ub4dor&3")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Past the token: this datamixer serves its store read-only.
  const grpc::Status accepted = ingest(WithToken(kToken));
  EXPECT_EQ(accepted.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << accepted.error_message();
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListDomainsResponse domains;
  const grpc::Status listed = stub->ListDomains(&context, v1::ListDomainsRequest(), &domains);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
  EXPECT_EQ(domains.domains_size(), 2);
}

TEST(SecurityTest, TheEvaluatorAsksForTheTokenOnEvaluate) {
  auto evaluator = testing::StartService(
      {testing::kEvaluatorBinary, "--store=" + testing::MakeTempDir() + "/results",
       "--address=127.0.0.1:0", "--metrics-address=off", "--device=cpu",
       "--auth-token-file=" + Certificates().token});
  ASSERT_OK(evaluator);
  auto stub = v1::Evaluator::NewStub(OpenChannel(evaluator->address, ClientSecurity()));
  auto evaluate = [&](const ClientSecurity& security) {
    grpc::ClientContext context;
    SetDeadline(context);
    AddCredentials(context, security);
    v1::Evaluation evaluation;
    return stub->Evaluate(&context, v1::EvaluateRequest(), &evaluation);
  };
  EXPECT_EQ(evaluate(ClientSecurity()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(evaluate(WithToken("tr0ub4dor&3")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Past the token: an empty request names no checkpoint.
  const grpc::Status accepted = evaluate(WithToken(kToken));
  EXPECT_EQ(accepted.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << accepted.error_message();
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListEvaluationsResponse listed;
  EXPECT_TRUE(stub->ListEvaluations(&context, v1::ListEvaluationsRequest(), &listed).ok());
}

TEST(SecurityTest, ProlongctlSendsTheTokenOfItsFileOrTheEnvironment) {
  const Pki& pki = Certificates();
  std::vector<std::string> flags = ServerTls(/*mutual=*/false);
  flags.push_back("--auth-token-file=" + pki.token);
  // No datamixer answers: a submitted run waits for its plan, PENDING.
  ServiceProcess scheduler = StartScheduler(flags);
  const std::string dir = testing::MakeTempDir();
  const std::string spec = WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints"));
  const std::vector<std::string> run = {"run", "--scheduler=" + scheduler.address,
                                        "--tls-ca=" + pki.ca};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), run.begin(), run.end());
    return Ctl(args);
  };

  const testing::RunResult refused = with({"submit", spec});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.stderr_text,
            "prolongctl run: this call needs a bearer token (authorization: Bearer ...); give "
            "--token-file or set PROLONG_TOKEN_FILE\n");
  const testing::RunResult wrong = with({"--token-file=" + pki.wrong_token, "submit", spec});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(wrong.stderr_text, "prolongctl run: the bearer token is not this service's\n");

  const testing::RunResult submitted = with({"--token-file=" + pki.token, "submit", spec});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string run_id(absl::StripAsciiWhitespace(submitted.stdout_text));
  const testing::RunResult listed = with({"list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.stderr_text;
  EXPECT_TRUE(absl::StrContains(listed.stdout_text, run_id)) << listed.stdout_text;

  const testing::RunResult not_cancelled = with({"cancel", run_id});
  EXPECT_EQ(not_cancelled.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(not_cancelled.stderr_text, "--token-file"))
      << not_cancelled.stderr_text;
  setenv("PROLONG_TOKEN_FILE", pki.token.c_str(), 1);
  const testing::RunResult cancelled = with({"cancel", run_id, "--reason=rotating keys"});
  unsetenv("PROLONG_TOKEN_FILE");
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.stderr_text;
  EXPECT_EQ(cancelled.stdout_text, run_id + ": CANCELLED: cancelled: rotating keys\n");

  const testing::RunResult unreadable = with({"--token-file=" + dir + "/no-such-file", "list"});
  EXPECT_NE(unreadable.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(unreadable.stderr_text, "--token-file")) << unreadable.stderr_text;
}

TEST(SecurityTest, ARunTrainsWithMutualTlsAndTokensEverywhere) {
  const Pki& pki = Certificates();
  const std::string dir = testing::MakeTempDir();
  ASSERT_OK(testing::WriteLearnableCorpus(dir + "/store"));
  std::vector<std::string> datamixer_argv = {testing::kDatamixerBinary, "--store=" + dir + "/store",
                                             "--address=127.0.0.1:0", "--metrics-address=off",
                                             "--auth-token-file=" + pki.token};
  for (const std::string& flag : ServerTls(/*mutual=*/true)) datamixer_argv.push_back(flag);
  auto datamixer = testing::StartService(datamixer_argv);
  ASSERT_OK(datamixer);

  std::vector<std::string> flags = ServerTls(/*mutual=*/true);
  flags.insert(flags.end(),
               {"--auth-token-file=" + pki.token, "--client-tls-ca=" + pki.ca,
                "--client-tls-cert=" + pki.client_cert, "--client-tls-key=" + pki.client_key,
                "--client-token-file=" + pki.token});
  ServiceProcess scheduler = StartScheduler(flags, datamixer->address);
  const std::vector<std::string> run = {
      "run",
      "--scheduler=" + scheduler.address,
      "--tls-ca=" + pki.ca,
      "--tls-cert=" + pki.client_cert,
      "--tls-key=" + pki.client_key,
      "--token-file=" + pki.token,
  };
  auto with = [&](std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    args.insert(args.begin(), run.begin(), run.end());
    return Ctl(args, timeout);
  };
  const std::string spec = WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints"));
  // The scheduler plans through the datamixer over mutual TLS.
  const testing::RunResult dry = with({"submit", spec, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.stderr_text << scheduler.process->Stderr();
  EXPECT_TRUE(absl::StrContains(dry.stdout_text, "stage 1/1 short: 2 steps")) << dry.stdout_text;

  const testing::RunResult submitted = with({"submit", spec});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string run_id(absl::StripAsciiWhitespace(submitted.stdout_text));
  // The worker registers, heartbeats and reports to the scheduler, and streams its batches from
  // the datamixer, all over mutual TLS with the certificate the scheduler forwards.
  const testing::RunResult watched = with({"watch", run_id}, absl::Seconds(240));
  EXPECT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text
                                  << scheduler.process->Stderr();
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "short step 2 loss")) << watched.stdout_text;
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "state:    SUCCEEDED")) << watched.stdout_text;
}

TEST(SecurityTest, IncompleteSettingsStopAServiceAtStart) {
  const Pki& pki = Certificates();
  struct Case {
    std::vector<std::string> argv;
    std::string message;
  };
  const std::string empty_token = WriteFile(testing::MakeTempDir(), "empty-token", " \n");
  const std::vector<Case> cases = {
      {{testing::kSchedulerBinary, "--tls-cert=" + pki.server_cert}, "--tls-cert and --tls-key"},
      {{testing::kSchedulerBinary, "--tls-client-ca=" + pki.ca},
       "--tls-client-ca: needs --tls-cert"},
      {{testing::kSchedulerBinary, "--tls-cert=" + pki.token, "--tls-key=" + pki.server_key},
       "--tls-cert: " + pki.token + ": not a PEM file"},
      {{testing::kSchedulerBinary, "--client-tls-cert=" + pki.client_cert,
        "--client-tls-key=" + pki.client_key},
       "--client-tls-cert: needs --client-tls-ca"},
      {{testing::kSchedulerBinary, "--auth-token-file=" + empty_token}, "--auth-token-file"},
      {{testing::kDatamixerBinary, "--store=/nonexistent", "--auth-token-file=" + empty_token},
       "--auth-token-file"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = c.argv;
    if (c.argv[0] == testing::kSchedulerBinary) {
      argv.insert(argv.end(), {"--state-dir=" + testing::MakeTempDir(), "--address=127.0.0.1:0",
                               "--metrics-address=off",
                               "--trainer-binary=" + Absolute(testing::kTrainerBinary)});
    }
    absl::StatusOr<testing::RunResult> result = testing::Run(argv, absl::Seconds(30));
    ASSERT_OK(result);
    EXPECT_NE(result->exit_code, 0) << argv[1];
    EXPECT_TRUE(absl::StrContains(result->stderr_text, c.message))
        << argv[1] << ": " << result->stderr_text;
  }
}

}  // namespace
}  // namespace prolong
