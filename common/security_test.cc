#include "common/security.h"

#include <cstdlib>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;
using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir == nullptr ? "/tmp" : dir) + "/" + name;
}

std::string WriteTemp(const std::string& name, const std::string& contents) {
  const std::string path = TempPath(name);
  EXPECT_OK(WriteFileAtomically(path, contents));
  return path;
}

TEST(CheckBearerTokenTest, NoExpectedTokenLetsEveryCallThrough) {
  EXPECT_OK(CheckBearerToken(Metadata(), ""));
}

TEST(CheckBearerTokenTest, MissingTokenIsUnauthenticated) {
  EXPECT_THAT(CheckBearerToken(Metadata(), "s3cret"), StatusIs(absl::StatusCode::kUnauthenticated,
                                                               "this call needs a bearer token "
                                                               "(authorization: Bearer ...)"));
  const Metadata basic = {{"authorization", "Basic dXNlcjpwYXNz"}};
  EXPECT_THAT(CheckBearerToken(basic, "s3cret"), StatusIs(absl::StatusCode::kUnauthenticated));
  const Metadata empty = {{"authorization", "Bearer "}};
  EXPECT_THAT(CheckBearerToken(empty, "s3cret"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(CheckBearerTokenTest, WrongTokenIsPermissionDenied) {
  for (const char* presented : {"Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "Bearer x"}) {
    const Metadata metadata = {{"authorization", presented}};
    EXPECT_THAT(CheckBearerToken(metadata, "s3cret"), StatusIs(absl::StatusCode::kPermissionDenied))
        << presented;
  }
}

TEST(CheckBearerTokenTest, RightTokenPasses) {
  const Metadata metadata = {{"user-agent", "grpc"}, {"authorization", "Bearer s3cret"}};
  EXPECT_OK(CheckBearerToken(metadata, "s3cret"));
  const Metadata lowercase = {{"authorization", "bearer s3cret"}};
  EXPECT_OK(CheckBearerToken(lowercase, "s3cret"));
}

TEST(ReadTokenFileTest, TrimsWhitespace) {
  ASSERT_OK_AND_ASSIGN(const std::string token, ReadTokenFile(WriteTemp("token", "  s3cret\n")));
  EXPECT_EQ(token, "s3cret");
}

TEST(ReadTokenFileTest, EmptyOrMissingFileIsAnError) {
  EXPECT_THAT(ReadTokenFile(WriteTemp("blank", " \n")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadTokenFile(TempPath("no-such-token")), StatusIs(absl::StatusCode::kNotFound));
}

TEST(LoadClientSecurityTest, NothingNamedIsPlaintextWithoutToken) {
  ASSERT_OK_AND_ASSIGN(const ClientSecurity security, LoadClientSecurity({}));
  EXPECT_EQ(security.ca_pem, "");
  EXPECT_EQ(security.token, "");
}

TEST(LoadClientSecurityTest, ErrorsNameTheFlag) {
  ClientSecurityFiles files;
  files.tls_cert = WriteTemp("cert.pem", "-----BEGIN CERTIFICATE-----\n");
  EXPECT_THAT(LoadClientSecurity(files, "--client-"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--client-tls-cert and --client-tls-key: give both or neither"));
  files.tls_key = WriteTemp("key.pem", "-----BEGIN PRIVATE KEY-----\n");
  EXPECT_THAT(LoadClientSecurity(files),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("--tls-cert: needs --tls-ca")));
  files.tls_ca = WriteTemp("ca.txt", "not a certificate");
  EXPECT_THAT(LoadClientSecurity(files),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("--tls-ca: ")));
  files = {};
  files.token_file = WriteTemp("blank-token", "\n");
  EXPECT_THAT(LoadClientSecurity(files),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("--token-file: ")));
  files.token_file = WriteTemp("good-token", "abc\n");
  ASSERT_OK_AND_ASSIGN(const ClientSecurity security, LoadClientSecurity(files));
  EXPECT_EQ(security.token, "abc");
}

TEST(ServerCredentialsTest, IncompleteSettingsAreRefused) {
  ServerTlsFiles files;
  ASSERT_OK(ServerCredentials(files).status());
  files.client_ca = WriteTemp("client-ca.pem", "-----BEGIN CERTIFICATE-----\n");
  EXPECT_THAT(ServerCredentials(files).status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                                          ::testing::HasSubstr("--tls-client-ca")));
  files.cert = files.client_ca;
  EXPECT_THAT(ServerCredentials(files).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--tls-cert and --tls-key: give both or neither"));
  files.key = TempPath("no-such-key.pem");
  EXPECT_THAT(ServerCredentials(files).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("--tls-key: ")));
}

}  // namespace
}  // namespace prolong
