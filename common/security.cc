#include "common/security.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace prolong {
namespace {

constexpr absl::string_view kAuthorization = "authorization";
constexpr absl::string_view kBearer = "Bearer ";

// The PEM file a flag names; "" for an empty path.
absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  if (path.empty()) return std::string();
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return Annotate(pem.status(), flag);
  if (!absl::StrContains(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, ": not a PEM file"));
  }
  return pem;
}

std::string Digest(absl::string_view bytes) {
  Sha256 hasher;
  hasher.Update(bytes);
  return hasher.Finish();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerTlsFiles& files) {
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key: give both or neither");
  }
  if (files.cert.empty()) {
    if (!files.client_ca.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca: needs --tls-cert and --tls-key (mutual TLS is TLS first)");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(files.cert, "--tls-cert"));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem(files.key, "--tls-key"));
  grpc::SslServerCredentialsOptions options(
      files.client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ASSIGN_OR_RETURN(options.pem_root_certs, ReadPem(files.client_ca, "--tls-client-ca"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFiles& files,
                                                  absl::string_view flag_prefix) {
  const std::string ca_flag = absl::StrCat(flag_prefix, "tls-ca");
  const std::string cert_flag = absl::StrCat(flag_prefix, "tls-cert");
  const std::string key_flag = absl::StrCat(flag_prefix, "tls-key");
  if (files.tls_cert.empty() != files.tls_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_flag, " and ", key_flag, ": give both or neither"));
  }
  if (!files.tls_cert.empty() && files.tls_ca.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        cert_flag, ": needs ", ca_flag, " (a client certificate is presented over TLS only)"));
  }
  ClientSecurity security;
  ASSIGN_OR_RETURN(security.ca_pem, ReadPem(files.tls_ca, ca_flag));
  ASSIGN_OR_RETURN(security.cert_pem, ReadPem(files.tls_cert, cert_flag));
  ASSIGN_OR_RETURN(security.key_pem, ReadPem(files.tls_key, key_flag));
  if (!files.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(files.token_file);
    if (!token.ok()) return Annotate(token.status(), absl::StrCat(flag_prefix, "token-file"));
    security.token = *std::move(token);
  }
  return security;
}

std::shared_ptr<grpc::Channel> OpenChannel(const std::string& address,
                                           const ClientSecurity& security,
                                           const grpc::ChannelArguments& arguments) {
  if (security.ca_pem.empty()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = security.ca_pem;
  options.pem_cert_chain = security.cert_pem;
  options.pem_private_key = security.key_pem;
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), arguments);
}

void AddCredentials(grpc::ClientContext& context, const ClientSecurity& security) {
  if (security.token.empty()) return;
  context.AddMetadata(std::string(kAuthorization), absl::StrCat(kBearer, security.token));
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  const absl::string_view token = absl::StripAsciiWhitespace(contents);
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": empty (the token file holds the token)"));
  }
  return std::string(token);
}

absl::Status CheckBearerToken(const grpc::ServerContext& context, absl::string_view expected) {
  if (expected.empty()) return absl::OkStatus();
  return CheckBearerToken(context.client_metadata(), expected);
}

absl::Status CheckBearerToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                              absl::string_view expected) {
  if (expected.empty()) return absl::OkStatus();
  const auto header = metadata.find(grpc::string_ref(kAuthorization.data(), kAuthorization.size()));
  const absl::string_view value =
      header == metadata.end() ? absl::string_view()
                               : absl::string_view(header->second.data(), header->second.size());
  // RFC 6750: the scheme's name is case-insensitive.
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError("this call needs a bearer token (authorization: Bearer ...)");
  }
  // Digests of equal length, compared in constant time: neither the token's bytes nor its
  // length show in how long a refusal takes.
  const std::string presented = Digest(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
  const std::string wanted = Digest(expected);
  if (CRYPTO_memcmp(presented.data(), wanted.data(), wanted.size()) != 0) {
    return absl::PermissionDeniedError("the bearer token is not this service's");
  }
  return absl::OkStatus();
}

}  // namespace prolong
