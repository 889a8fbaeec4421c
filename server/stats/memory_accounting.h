#ifndef LATENCY_SERVER_STATS_MEMORY_ACCOUNTING_H_
#define LATENCY_SERVER_STATS_MEMORY_ACCOUNTING_H_

#include <cstddef>

namespace latency::stats_internal {

// HeapBlockBytes estimates what a heap allocation of `requested` bytes
// really costs with glibc malloc: an 8-byte header, rounded up to 16 bytes,
// at least 32. Used by the ApproxMemoryBytes() methods so that their figures
// track RSS rather than just sizeof.
constexpr size_t HeapBlockBytes(size_t requested) {
  if (requested == 0) return 0;
  const size_t chunk = (requested + 8 + 15) / 16 * 16;
  return chunk < 32 ? 32 : chunk;
}

}  // namespace latency::stats_internal

#endif  // LATENCY_SERVER_STATS_MEMORY_ACCOUNTING_H_
