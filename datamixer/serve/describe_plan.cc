#include "datamixer/serve/describe_plan.h"

#include <algorithm>
#include <vector>

namespace prolong::serve {

v1::BatchDescription DescribeBatch(const plan::StagePlan& plan, int64_t step) {
  v1::BatchDescription description;
  description.set_step(step);
  std::vector<int64_t> tokens(plan.domains().size(), 0);
  int64_t documents = 0;
  double work = 0;
  for (const plan::PlannedSequence& sequence : plan.GlobalBatch(step)) {
    tokens[sequence.domain] += plan.seq_len();
    documents += static_cast<int64_t>(sequence.pieces.size());
    work += plan::SumOfSquaredLengths(sequence.pieces);
  }
  description.mutable_domain_tokens()->Assign(tokens.begin(), tokens.end());
  description.set_documents(documents);
  description.set_sum_squared_document_lengths(work);
  return description;
}

v1::StagePlan DescribePlan(const plan::StagePlan& plan, int64_t describe_batches) {
  v1::StagePlan out;
  out.set_plan_id(plan.id());
  out.set_fingerprint(plan.data().fingerprint);
  out.set_seq_len(plan.seq_len());
  out.set_sequences_per_batch(plan.sequences_per_batch());
  out.set_steps(plan.steps());
  for (const plan::DomainUsage& domain : plan.domains()) {
    v1::DomainPlan* entry = out.add_domains();
    entry->set_domain(domain.data->name);
    entry->set_sequences(domain.sequences);
    entry->set_tokens(domain.tokens);
    entry->set_epochs(domain.epochs);
  }
  for (int64_t step = 0; step < std::min(describe_batches, plan.steps()); ++step) {
    *out.add_batches() = DescribeBatch(plan, step);
  }
  return out;
}

}  // namespace prolong::serve
