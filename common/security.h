// TLS and bearer tokens, for every prolong server and client. A server given a certificate and
// its key speaks only TLS; given a client CA as well, it completes a handshake only with clients
// presenting a certificate that CA signed (mutual TLS: how workers prove they belong). A service
// given a token asks for it on the calls that change state (SubmitRun, CancelRun, Ingest,
// Evaluate); reads, and workers' calls, need none. The token travels as "authorization: Bearer
// <token>", on TLS and plaintext channels alike.
#ifndef PROLONG_COMMON_SECURITY_H_
#define PROLONG_COMMON_SECURITY_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/string_ref.h"

namespace prolong {

// A server's PEM files (flags --tls-cert, --tls-key, --tls-client-ca). All empty: plaintext.
struct ServerTlsFiles {
  std::string cert;       // the server's certificate chain
  std::string key;        // its private key
  std::string client_ca;  // set: clients must present a certificate this CA signed
};

// Reads the files. Plaintext credentials when none is named, TLS otherwise. INVALID_ARGUMENT
// naming the flag for a certificate without its key (or the reverse), a client CA without a
// certificate, or a file holding no PEM; NOT_FOUND for a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerTlsFiles& files);

// The files a client's flags name (common/cli.h AddClientSecurityFlags).
struct ClientSecurityFiles {
  std::string tls_ca;      // PEM: the CA that signed the servers' certificates; set: TLS
  std::string tls_cert;    // PEM: this client's certificate chain, for servers that ask for one
  std::string tls_key;     // PEM: its private key
  std::string token_file;  // the bearer token
};

// What a client presents, read once from its files.
struct ClientSecurity {
  std::string ca_pem;  // empty: plaintext
  std::string cert_pem;
  std::string key_pem;
  std::string token;  // empty: none sent
};

// Reads the files. Errors name the flag, `flag_prefix` + "tls-ca" (or "tls-cert", "tls-key",
// "token-file"): INVALID_ARGUMENT for a certificate without its key (or the reverse), a client
// certificate without a CA (it would go unused over plaintext), a file holding no PEM, an empty
// token; NOT_FOUND for a file that cannot be read.
absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFiles& files,
                                                  absl::string_view flag_prefix = "--");

// A channel to `address`: TLS when `security` has a CA (presenting its client certificate, if
// any), plaintext otherwise. The server's certificate must name the address's host (a DNS or IP
// subject alternative name).
std::shared_ptr<grpc::Channel> OpenChannel(
    const std::string& address, const ClientSecurity& security,
    const grpc::ChannelArguments& arguments = grpc::ChannelArguments());

// Adds "authorization: Bearer <token>" to the call when `security` has a token.
void AddCredentials(grpc::ClientContext& context, const ClientSecurity& security);

// A token file's contents, surrounding whitespace trimmed. NOT_FOUND when it cannot be read,
// INVALID_ARGUMENT when nothing is left. Errors name the path.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// For the methods that change state. OK when `expected` is empty (the service asks for no
// token) or the call carries "authorization: Bearer <expected>", compared in constant time.
// UNAUTHENTICATED when the call carries no bearer token, PERMISSION_DENIED when another one.
absl::Status CheckBearerToken(const grpc::ServerContext& context, absl::string_view expected);
// The same on a call's metadata.
absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              absl::string_view expected);

}  // namespace prolong

#endif  // PROLONG_COMMON_SECURITY_H_
