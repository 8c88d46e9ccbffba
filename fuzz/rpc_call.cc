#include "fuzz/rpc_call.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/check.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/generic/generic_stub.h"
#include "openssl/crypto.h"

namespace prolong::fuzz {
namespace {

using google::protobuf::MethodDescriptor;

// Enough to see a stream work; a stream that goes on (WatchRun, StreamBatches...) is cancelled.
constexpr int kMaxResponses = 8;
// A unary call slower than this is a hang; a stream is cancelled after it.
constexpr auto kUnaryDeadline = std::chrono::seconds(8);
constexpr auto kStreamDeadline = std::chrono::milliseconds(300);

// A client-streaming call (Ingest) sends several messages: each is two bytes of length (little
// endian) and that many bytes; a short tail is sent as it is. Other calls send `bytes` whole.
std::vector<std::string> Requests(const MethodDescriptor& method, const std::string& bytes) {
  if (!method.client_streaming()) return {bytes};
  std::vector<std::string> requests;
  size_t at = 0;
  while (at + 2 <= bytes.size()) {
    const size_t length = static_cast<uint8_t>(bytes[at]) | static_cast<uint8_t>(bytes[at + 1])
                                                                << 8;
    requests.push_back(bytes.substr(at + 2, length));
    at += 2 + length;
  }
  if (at < bytes.size()) requests.push_back(bytes.substr(at));
  return requests;
}

struct Relocation {
  std::string placeholder;
  std::string root;
};
Relocation& PathRelocation() {
  static auto* relocation = new Relocation;
  return *relocation;
}

void Relocate(google::protobuf::Message& message, const Relocation& relocation) {
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  auto relocated = [&relocation](std::string value) {
    if (value.rfind(relocation.placeholder, 0) == 0) {
      value.replace(0, relocation.placeholder.size(), relocation.root);
    }
    return value;
  };
  for (const google::protobuf::FieldDescriptor* field : fields) {
    using Type = google::protobuf::FieldDescriptor;
    if (field->type() == Type::TYPE_STRING) {
      if (!field->is_repeated()) {
        reflection.SetString(&message, field, relocated(reflection.GetString(message, field)));
        continue;
      }
      for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
        reflection.SetRepeatedString(&message, field, i,
                                     relocated(reflection.GetRepeatedString(message, field, i)));
      }
    } else if (field->type() == Type::TYPE_MESSAGE) {
      if (!field->is_repeated()) {
        Relocate(*reflection.MutableMessage(&message, field), relocation);
        continue;
      }
      for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
        Relocate(*reflection.MutableRepeatedMessage(&message, field, i), relocation);
      }
    }
  }
}

// The requests with their paths relocated; one that does not parse goes as it is.
std::vector<std::string> Relocated(const MethodDescriptor& method,
                                   std::vector<std::string> requests) {
  const Relocation& relocation = PathRelocation();
  if (relocation.placeholder.empty()) return requests;
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type());
  for (std::string& bytes : requests) {
    std::unique_ptr<google::protobuf::Message> request(prototype->New());
    if (!request->ParseFromString(bytes)) continue;
    Relocate(*request, relocation);
    bytes = request->SerializeAsString();
  }
  return requests;
}

bool RequestsParse(const MethodDescriptor& method, const std::vector<std::string>& requests) {
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(method.input_type());
  std::unique_ptr<google::protobuf::Message> request(prototype->New());
  for (const std::string& bytes : requests) {
    if (!request->ParseFromString(bytes)) return false;
  }
  return true;
}

// Runs the call as a client would, whatever its kind: one request, then every response until
// the server ends the call or kMaxResponses have come.
void PrintResponse(const MethodDescriptor& method, const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return;
  std::string bytes;
  for (const grpc::Slice& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  std::unique_ptr<google::protobuf::Message> response(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(method.output_type())
          ->New());
  response->ParseFromString(bytes);
  std::fprintf(stderr, "%s\n", response->ShortDebugString().substr(0, 2000).c_str());
}

// With PROLONG_FUZZ_VERBOSE set, each response and status is printed (to write seeds).
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, const MethodDescriptor& method,
                  const std::vector<std::string>& requests) {
  static const bool verbose = std::getenv("PROLONG_FUZZ_VERBOSE") != nullptr;
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  const bool streams = method.server_streaming();
  context.set_deadline(
      std::chrono::system_clock::now() +
      (streams ? std::chrono::duration_cast<std::chrono::milliseconds>(kStreamDeadline)
               : std::chrono::duration_cast<std::chrono::milliseconds>(kUnaryDeadline)));
  // Each operation is awaited before the next starts, so one tag serves them all.
  auto await = [&queue] {
    void* tag = nullptr;
    bool ok = false;
    FUZZ_CHECK(queue.Next(&tag, &ok), "completion queue shut down");
    return ok;
  };
  void* const tag = &queue;
  const std::string name = "/" + method.service()->full_name() + "/" + method.name();
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, name, &queue);
  call->StartCall(tag);
  if (await()) {
    bool open = true;
    for (const std::string& bytes : requests) {
      grpc::Slice slice(bytes);
      grpc::ByteBuffer request(&slice, 1);
      call->Write(request, tag);
      if (!(open = await())) break;
    }
    if (open) {
      call->WritesDone(tag);
      await();
    }
    grpc::ByteBuffer response;
    int responses = 0;
    while (responses < kMaxResponses) {
      call->Read(&response, tag);
      if (!await()) break;
      ++responses;
      if (verbose) PrintResponse(method, response);
    }
    if (responses == kMaxResponses) context.TryCancel();
  }
  grpc::Status status;
  call->Finish(&status, tag);
  await();
  queue.Shutdown();
  if (verbose)
    std::fprintf(stderr, "%s: %d %s\n", name.c_str(), status.error_code(),
                 status.error_message().c_str());
  void* ignored_tag;
  bool ignored_ok;
  while (queue.Next(&ignored_tag, &ignored_ok)) {
  }
  return status;
}

}  // namespace

std::unique_ptr<Server> ServeForFuzzing(const HostedService& service) {
  ServerOptions options;
  options.component = "fuzz";
  options.metrics_address = "";
  auto server = Server::Start(options, {service}, std::make_shared<prometheus::Registry>());
  FUZZ_CHECK(server.ok(), server.status().ToString());
  return std::move(*server);
}

std::shared_ptr<grpc::Channel> ChannelTo(const Server& server) {
  return grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
}

const Server& ServeUntilExit(std::unique_ptr<grpc::Service> service, const std::string& name) {
  struct Kept {
    std::unique_ptr<grpc::Service> service;
    std::unique_ptr<Server> server;
  };
  static auto* kept = new std::vector<Kept>;
  // At exit, before the libraries' own statics go (LibTorch's operator registry...): a service
  // still working on another thread (an evaluation) would find them destroyed. OpenSSL
  // registers its cleanup when first used; initialized now, it runs after this (exit handlers
  // run in reverse), so a checkpoint still being hashed never finds it gone.
  static const bool registered = [] {
    OPENSSL_init_crypto(OPENSSL_INIT_ADD_ALL_CIPHERS | OPENSSL_INIT_ADD_ALL_DIGESTS, nullptr);
    std::atexit([] {
      for (auto it = kept->rbegin(); it != kept->rend(); ++it) {
        it->server->Shutdown();
        it->server.reset();
        it->service.reset();
      }
    });
    return true;
  }();
  (void)registered;
  std::unique_ptr<Server> server = ServeForFuzzing({service.get(), name});
  kept->push_back({std::move(service), std::move(server)});
  return *kept->back().server;
}

void RelocatePaths(const std::string& placeholder, const std::string& root) {
  PathRelocation() = {placeholder, root};
}

void FuzzCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
              const uint8_t* data, size_t size) {
  FuzzCall([&channel](const std::string&) { return channel; }, service, data, size);
}

void FuzzCall(const ChannelFor& channel_for, const std::string& service, const uint8_t* data,
              size_t size) {
  if (size == 0) return;
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  FUZZ_CHECK(descriptor != nullptr && descriptor->method_count() > 0, service);
  const MethodDescriptor& method = *descriptor->method(data[0] % descriptor->method_count());
  const std::vector<std::string> requests = Relocated(
      method, Requests(method, std::string(reinterpret_cast<const char*>(data + 1), size - 1)));

  const grpc::Status status = Call(channel_for(method.name()), method, requests);
  if (status.ok() || !RequestsParse(method, requests)) return;
  const std::string what = method.full_name() + ": " + std::to_string(status.error_code()) + " " +
                           status.error_message();
  FUZZ_CHECK(status.error_code() != grpc::StatusCode::UNKNOWN &&
                 status.error_code() != grpc::StatusCode::INTERNAL,
             what);
  FUZZ_CHECK(!status.error_message().empty(), what);
}

}  // namespace prolong::fuzz
