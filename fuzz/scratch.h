// Files for the parsers that take a path rather than bytes: a directory of this process's own
// under $TMPDIR (or /tmp), made on first use, reused by every input (a fuzzer runs millions, so
// nothing is made per input) and removed when the process exits. Never in the source tree: the
// replay test and fuzz/run.sh both run from it.
#ifndef PROLONG_FUZZ_SCRATCH_H_
#define PROLONG_FUZZ_SCRATCH_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prolong::fuzz {

// The directory's absolute path, without a trailing slash.
const std::string& ScratchDir();

// ScratchDir()/name holding exactly `contents` (replaced if it exists); returns its path.
// Aborts if it cannot be written: the harness, not the parser, is broken then.
std::string WriteScratchFile(absl::string_view name, absl::string_view contents);

// ScratchDir()/name as a fresh, empty directory (its old contents removed); returns its path.
std::string EmptyScratchDir(absl::string_view name);

}  // namespace prolong::fuzz

#endif  // PROLONG_FUZZ_SCRATCH_H_
