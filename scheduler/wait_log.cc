#include "scheduler/wait_log.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace prolong::scheduler {

std::optional<std::string> WaitLog::Line(absl::string_view run_id, absl::string_view reason,
                                         absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = reasons_.try_emplace(reason);
  Reason& seen = it->second;
  if (!inserted && now < seen.logged + interval_) {
    ++seen.unlogged;
    return std::nullopt;
  }
  std::string line = absl::StrCat("run ", run_id, ": ", reason, "; retrying every 2s");
  if (seen.unlogged > 0) {
    absl::StrAppend(&line, " (", seen.unlogged, " more run", seen.unlogged > 1 ? "s" : "",
                    " found waiting for this since the last such line)");
  }
  seen = {now, 0};
  if (inserted) {
    // Specs may name any number of datamixers over time: reasons quiet for an interval go.
    absl::erase_if(reasons_, [&](const auto& entry) {
      return entry.second.unlogged == 0 && now >= entry.second.logged + interval_;
    });
  }
  return line;
}

void WaitLog::Waiting(absl::string_view run_id, absl::string_view reason, absl::Time now) {
  const std::optional<std::string> line = Line(run_id, reason, now);
  if (line.has_value()) PROLONG_LOG(WARNING) << *line;
}

}  // namespace prolong::scheduler
