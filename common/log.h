// Minimal leveled logging to stderr: PROLONG_LOG(INFO) << "message";
// Lines look like glog's: "I20261127 05:11:04.123456 4242 server.cc:42] message".
// (LibTorch defines LOG and CHECK, hence the prefix.) Thread-safe: each line is one write.
#ifndef PROLONG_COMMON_LOG_H_
#define PROLONG_COMMON_LOG_H_

#include <sstream>

namespace prolong {

enum class LogSeverity { kInfo, kWarning, kError, kFatal };

// Lines below this severity are dropped. Default kInfo.
void SetMinLogSeverity(LogSeverity severity);

namespace internal {

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line);
  ~LogMessage();  // Writes the line; aborts after a kFatal one.
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Swallows the stream of a check that passed.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace internal
}  // namespace prolong

#define PROLONG_LOG_SEVERITY_INFO ::prolong::LogSeverity::kInfo
#define PROLONG_LOG_SEVERITY_WARNING ::prolong::LogSeverity::kWarning
#define PROLONG_LOG_SEVERITY_ERROR ::prolong::LogSeverity::kError
#define PROLONG_LOG_SEVERITY_FATAL ::prolong::LogSeverity::kFatal

#define PROLONG_LOG(severity) \
  ::prolong::internal::LogMessage(PROLONG_LOG_SEVERITY_##severity, __FILE__, __LINE__).stream()

// For impossible states: logs and aborts when `condition` is false.
#define PROLONG_CHECK(condition) \
  (condition)                    \
      ? (void)0                  \
      : ::prolong::internal::LogVoidify() & PROLONG_LOG(FATAL) << "Check failed: " #condition " "

#endif  // PROLONG_COMMON_LOG_H_
