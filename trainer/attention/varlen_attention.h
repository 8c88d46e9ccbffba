// Document-masked attention of queries to any set of keys as varlen kernel calls planned by
// varlen_plan.h, such as flash attention's varlen kernel on a GPU. The kernel is an interface so
// that everything around it (the plan, the key order, rows in no call, gradients summed back at
// their input rows) runs and is tested on a CPU with a blockwise kernel of the same contract.
//
// Thread-safety: the functions and kernels keep no state but VarlenPartialAttention's plan
// cache, which is guarded.
#ifndef PROLONG_TRAINER_ATTENTION_VARLEN_ATTENTION_H_
#define PROLONG_TRAINER_ATTENTION_VARLEN_ATTENTION_H_

#include <memory>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/varlen_plan.h"

namespace prolong::attention {

// One call of a varlen kernel: q [queries, Hq, D] and k, v [keys, Hkv, D] cut into the call's
// entries, the mask within each entry causal (aligned bottom-right) or not as the call says.
class VarlenKernel {
 public:
  virtual ~VarlenKernel() = default;

  // Whether the kernel takes q (its dtype and device).
  virtual bool Accepts(const torch::Tensor& q) const = 0;
  // out [queries, Hq, D] in q's dtype, lse [Hq, queries] float32.
  virtual AttentionResult Forward(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v, const VarlenCall& call,
                                  double scale) const = 0;
  // dq, dk, dv of the call for the final out and lse of its query rows (any dtype).
  virtual AttentionGrads Backward(const torch::Tensor& dout, const torch::Tensor& q,
                                  const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& out, const torch::Tensor& lse,
                                  const VarlenCall& call, double scale) const = 0;
};

// The blockwise implementation, entry by entry: any dtype and device.
std::shared_ptr<const VarlenKernel> BlockwiseVarlenKernel();

// q against the keys through `plan`'s calls: out in q's dtype (0 for rows in no call), lse
// [Hq, Tq] float32 (-inf for those rows).
AttentionResult PlannedAttentionForward(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, const VarlenPlan& plan,
                                        double scale, const VarlenKernel& kernel);

// The gradients for the final out and lse of q's rows: dq in q's dtype, dk and dv float32 at
// their input rows (0 for padding keys and keys no call uses).
AttentionGrads PlannedAttentionBackward(const torch::Tensor& dout, const torch::Tensor& q,
                                        const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& out, const torch::Tensor& lse,
                                        const VarlenPlan& plan, double scale,
                                        const VarlenKernel& kernel);

// A PartialAttention through `kernel` where it accepts q and the layouts have a plan; the
// blockwise implementation otherwise. The plans of the latest layouts (up to 16 pairs of
// layout tensors, by identity and version) are kept: every layer of a model attends with the
// same layout tensors (context parallelism: the same gathered ones, parallel::GatheredLayouts),
// so their copy to the CPU and the plan are made once per micro-batch, not per layer.
std::shared_ptr<const PartialAttention> VarlenPartialAttention(
    std::shared_ptr<const VarlenKernel> kernel);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_VARLEN_ATTENTION_H_
