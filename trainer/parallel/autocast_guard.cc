#include "trainer/parallel/autocast_guard.h"

#include "ATen/autocast_mode.h"
#include "torch/version.h"

namespace prolong::parallel {
namespace {

// LibTorch 2.4 keyed autocast's switches by device type; earlier ones had a pair per device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool IsEnabled(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void SetEnabled(c10::DeviceType device, bool enabled) {
  at::autocast::set_autocast_enabled(device, enabled);
}
c10::ScalarType Dtype(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void SetDtype(c10::DeviceType device, c10::ScalarType dtype) {
  at::autocast::set_autocast_dtype(device, dtype);
}
#else
bool IsEnabled(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetEnabled(c10::DeviceType device, bool enabled) {
  device == c10::kCUDA ? at::autocast::set_enabled(enabled)
                       : at::autocast::set_cpu_enabled(enabled);
}
c10::ScalarType Dtype(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                              : at::autocast::get_autocast_cpu_dtype();
}
void SetDtype(c10::DeviceType device, c10::ScalarType dtype) {
  device == c10::kCUDA ? at::autocast::set_autocast_gpu_dtype(dtype)
                       : at::autocast::set_autocast_cpu_dtype(dtype);
}
#endif

}  // namespace

AutocastState CurrentAutocast(c10::DeviceType device) { return {IsEnabled(device), Dtype(device)}; }

AutocastGuard::AutocastGuard(c10::DeviceType device, bool enabled, c10::ScalarType dtype)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  was_enabled_ = IsEnabled(device_);
  previous_dtype_ = Dtype(device_);
  SetEnabled(device_, true);
  SetDtype(device_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  // As torch.autocast's exit: the outermost guard frees the weights' cached casts.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetEnabled(device_, was_enabled_);
  SetDtype(device_, previous_dtype_);
}

}  // namespace prolong::parallel
