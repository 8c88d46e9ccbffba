#ifndef PROLONG_COMMON_VERSION_H_
#define PROLONG_COMMON_VERSION_H_

namespace prolong {

// Semantic version of the prolong.v1 API and its binaries.
inline constexpr char kVersion[] = "0.1.0";

}  // namespace prolong

#endif  // PROLONG_COMMON_VERSION_H_
