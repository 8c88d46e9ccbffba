#include "common/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common/log.h"

namespace prolong {
namespace {

int pipe_fds[2] = {-1, -1};
std::atomic<int> signals_seen{0};

void OnSignal(int signal_number) {
  if (signals_seen.fetch_add(1) > 0) _exit(128 + signal_number);
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  [[maybe_unused]] ssize_t written = write(pipe_fds[1], &byte, 1);
}

}  // namespace

void InstallShutdownSignalHandlers() {
  PROLONG_CHECK(pipe_fds[0] < 0) << "shutdown signal handlers installed twice";
  PROLONG_CHECK(pipe2(pipe_fds, O_CLOEXEC) == 0) << "pipe2 failed";
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int WaitForShutdownSignal() {
  PROLONG_CHECK(pipe_fds[0] >= 0) << "InstallShutdownSignalHandlers was not called";
  unsigned char byte = 0;
  while (read(pipe_fds[0], &byte, 1) != 1) {
    PROLONG_CHECK(errno == EINTR) << "reading the signal pipe failed";
  }
  return byte;
}

}  // namespace prolong
