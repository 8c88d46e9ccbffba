// A stage plan as the API reports it (DataMixer.PlanStage, `prolongctl data plan`).
#ifndef PROLONG_DATAMIXER_SERVE_DESCRIBE_PLAN_H_
#define PROLONG_DATAMIXER_SERVE_DESCRIBE_PLAN_H_

#include <cstdint>

#include "datamixer/plan/stage_plan.h"
#include "prolong/v1/datamixer.pb.h"

namespace prolong::serve {

// The plan's id, shape and per-domain use, with the composition of its first
// `describe_batches` global batches (all of them if it has fewer).
v1::StagePlan DescribePlan(const plan::StagePlan& plan, int64_t describe_batches);

// Tokens per domain, document pieces and attention work of global batch `step`.
v1::BatchDescription DescribeBatch(const plan::StagePlan& plan, int64_t step);

}  // namespace prolong::serve

#endif  // PROLONG_DATAMIXER_SERVE_DESCRIBE_PLAN_H_
