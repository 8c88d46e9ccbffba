// Waiting for SIGTERM/SIGINT in a multi-threaded process. The handler only writes to a pipe
// (async-signal-safe), so it works whichever thread the kernel delivers the signal to.
#ifndef PROLONG_COMMON_SHUTDOWN_SIGNAL_H_
#define PROLONG_COMMON_SHUTDOWN_SIGNAL_H_

namespace prolong {

// Installs the handlers. Call once, before waiting. A second signal after the first makes the
// process exit at once with 128 + signal number (an operator insisting).
void InstallShutdownSignalHandlers();

// Blocks until SIGTERM or SIGINT arrives and returns its number.
int WaitForShutdownSignal();

}  // namespace prolong

#endif  // PROLONG_COMMON_SHUTDOWN_SIGNAL_H_
