// One fuzz input as a call to a gRPC service, for the *_rpc fuzz targets: the first byte picks
// a method of the service, the rest is sent as the request message's bytes, as a client could
// send them (several, each length-prefixed, for a client stream), through a real in-process channel
// (so gRPC's own parsing runs too). Streams are read for a bounded number of messages and then
// cancelled.
#ifndef PROLONG_FUZZ_RPC_CALL_H_
#define PROLONG_FUZZ_RPC_CALL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/server.h"
#include "grpcpp/grpcpp.h"

namespace prolong::fuzz {

// Serves `service` as every prolong process does (common/server.h, on a loopback port).
std::unique_ptr<Server> ServeForFuzzing(const HostedService& service);
std::shared_ptr<grpc::Channel> ChannelTo(const Server& server);
// The same for the rest of the process: the service and its server stay reachable (so that
// leak checking does not count them) and are shut down when the process exits.
const Server& ServeUntilExit(std::unique_ptr<grpc::Service> service, const std::string& name);

// From now on, request strings that start with `placeholder` start with `root` instead when
// sent: seeds name files under a placeholder root (a RunSpec's checkpoint directory, an
// EvaluateRequest's checkpoint), and each process keeps them under its own scratch directory.
void RelocatePaths(const std::string& placeholder, const std::string& root);

// Calls the method of `service` (its full name, e.g. "prolong.v1.DataMixer") that `data[0]`
// picks, with `data[1..]` as the request, over `channel`. Checks what every handler promises a
// client: a request that parses as the method's request type is answered with OK or a status a
// client can act on (never UNKNOWN or INTERNAL) whose message says why. Aborts otherwise.
void FuzzCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
              const uint8_t* data, size_t size);

// The same, over the channel `channel_for` gives for the method's name ("Ingest").
using ChannelFor = std::function<std::shared_ptr<grpc::Channel>(const std::string& method)>;
void FuzzCall(const ChannelFor& channel_for, const std::string& service, const uint8_t* data,
              size_t size);

}  // namespace prolong::fuzz

#endif  // PROLONG_FUZZ_RPC_CALL_H_
