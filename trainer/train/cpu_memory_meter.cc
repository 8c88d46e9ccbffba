#include "trainer/train/cpu_memory_meter.h"

#include <atomic>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "c10/core/CPUAllocator.h"

namespace prolong::train {
namespace {

std::atomic<int64_t> current{0};
std::atomic<int64_t> peak{0};

void Count(int64_t bytes) {
  const int64_t now = current.fetch_add(bytes) + bytes;
  int64_t seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}

class CountingAllocator;
CountingAllocator* installed = nullptr;  // set once by Install, never freed

// The default allocator's blocks, each with its size. A DataPtr's context stays its data
// pointer (some LibTorch kernels assert that of CPU memory), so sizes live here.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t bytes) const override {
    void* data = base_->raw_allocate(bytes);
    {
      absl::MutexLock lock(&mu_);
      sizes_[data] = static_cast<int64_t>(bytes);
    }
    Count(static_cast<int64_t>(bytes));
    return c10::DataPtr(data, data, &Delete, c10::Device(c10::kCPU));
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

 private:
  static void Delete(void* data) {
    if (data == nullptr) return;
    CountingAllocator& self = *installed;
    int64_t bytes = 0;
    {
      absl::MutexLock lock(&self.mu_);
      const auto it = self.sizes_.find(data);
      if (it != self.sizes_.end()) {
        bytes = it->second;
        self.sizes_.erase(it);
      }
    }
    Count(-bytes);
    self.base_->raw_deallocate(data);
  }

  c10::Allocator* base_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<void*, int64_t> sizes_;
};

}  // namespace

void CpuMemoryMeter::Install() {
  if (installed != nullptr) return;
  installed = new CountingAllocator(c10::GetDefaultCPUAllocator());
  // Above the default's priority, so that LibTorch keeps it.
  c10::SetCPUAllocator(installed, /*priority=*/100);
}

int64_t CpuMemoryMeter::current_bytes() { return current.load(); }

int64_t CpuMemoryMeter::peak_bytes() { return peak.load(); }

void CpuMemoryMeter::ResetPeak() { peak.store(current.load()); }

}  // namespace prolong::train
