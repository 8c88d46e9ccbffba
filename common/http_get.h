// A blocking HTTP/1.1 GET of a small document, enough to scrape a /metrics endpoint from
// tests and tools without pulling in an HTTP library.
#ifndef PROLONG_COMMON_HTTP_GET_H_
#define PROLONG_COMMON_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace prolong {

// GET http://`address``path`. Returns the body of a 200 response; UNAVAILABLE if the server
// cannot be reached, INTERNAL for another status, DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<std::string> HttpGet(absl::string_view address, absl::string_view path,
                                    absl::Duration timeout = absl::Seconds(5));

}  // namespace prolong

#endif  // PROLONG_COMMON_HTTP_GET_H_
