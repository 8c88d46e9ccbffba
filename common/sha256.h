// Incremental SHA-256 (OpenSSL's EVP interface) for content ids and fingerprints.
#ifndef PROLONG_COMMON_SHA256_H_
#define PROLONG_COMMON_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

// OpenSSL's context type, declared here so that its headers stay out of ours.
struct evp_md_ctx_st;

namespace prolong {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view bytes);
  void Update(const void* data, size_t size);
  // The 32-byte digest; the hasher must not be used afterwards.
  std::string Finish();

 private:
  evp_md_ctx_st* context_;
};

}  // namespace prolong

#endif  // PROLONG_COMMON_SHA256_H_
