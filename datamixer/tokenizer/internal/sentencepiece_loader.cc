// Loads the embedded sentencepiece shim (see sentencepiece_shim.h) from memory.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/log.h"
#include "datamixer/tokenizer/internal/sentencepiece_shim.h"

// The shim's bytes, compiled in by the sentencepiece_shim_blob rule.
extern const unsigned char kProlongSentencePieceShim[];
extern const unsigned long kProlongSentencePieceShimSize;

namespace prolong::tokenizer::internal {
namespace {

void* Symbol(const char* name) {
  static void* const shim = [] {
    const int fd = memfd_create("prolong-sentencepiece-shim", MFD_CLOEXEC);
    PROLONG_CHECK(fd >= 0) << "memfd_create failed";
    size_t written = 0;
    while (written < kProlongSentencePieceShimSize) {
      const ssize_t n =
          write(fd, kProlongSentencePieceShim + written, kProlongSentencePieceShimSize - written);
      PROLONG_CHECK(n > 0) << "writing the sentencepiece shim failed";
      written += n;
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    PROLONG_CHECK(handle != nullptr) << "loading the sentencepiece shim: " << dlerror();
    close(fd);  // The mapping keeps the contents.
    return handle;
  }();
  void* symbol = dlsym(shim, name);
  PROLONG_CHECK(symbol != nullptr) << "sentencepiece shim lacks " << name;
  return symbol;
}

}  // namespace

std::unique_ptr<SentencePieceModel> NewSentencePieceModel() {
  static const auto create =
      reinterpret_cast<NewSentencePieceModelFn>(Symbol(kNewSentencePieceModelSymbol));
  return std::unique_ptr<SentencePieceModel>(create());
}

std::string TrainSentencePieceModel(const std::string& flags) {
  static const auto train =
      reinterpret_cast<TrainSentencePieceFn>(Symbol(kTrainSentencePieceSymbol));
  std::string error;
  train(flags, &error);
  return error;
}

}  // namespace prolong::tokenizer::internal
