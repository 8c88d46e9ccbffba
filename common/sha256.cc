#include "common/sha256.h"

#include <openssl/evp.h>

#include "common/log.h"

namespace prolong {

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  PROLONG_CHECK(context_ != nullptr && EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) == 1)
      << "OpenSSL SHA-256 unavailable";
}

Sha256::~Sha256() { EVP_MD_CTX_free(context_); }

void Sha256::Update(absl::string_view bytes) { Update(bytes.data(), bytes.size()); }

void Sha256::Update(const void* data, size_t size) {
  PROLONG_CHECK(EVP_DigestUpdate(context_, data, size) == 1) << "SHA-256 update failed";
}

std::string Sha256::Finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  PROLONG_CHECK(EVP_DigestFinal_ex(context_, digest, &size) == 1) << "SHA-256 final failed";
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace prolong
