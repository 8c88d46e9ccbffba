// FUZZ_CHECK: what a fuzz function asserts beyond "no crash" (a parse that succeeds must round
// trip, an error must name its source...). A false check aborts, which libFuzzer records as a
// finding and the replay test as a failure.
#ifndef PROLONG_FUZZ_CHECK_H_
#define PROLONG_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition, message)                                                           \
  do {                                                                                           \
    if (!(condition)) {                                                                          \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #condition, \
                   std::string(message).c_str());                                                \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

#endif  // PROLONG_FUZZ_CHECK_H_
