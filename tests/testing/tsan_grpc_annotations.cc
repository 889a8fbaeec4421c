// Makes the one ordering gRPC's callback API promises — an operation's
// completion callback runs after the operation was started — visible to
// ThreadSanitizer. Linked into liblatency_tsan_absl.so next to the abseil
// shims (tests/testing/tsan_absl_annotations.cc) and LD_PRELOADed the same
// way by scripts/sanitizers.sh.
//
// Why: a reactor's StartRead/StartWrite/Finish and the OnReadDone/
// OnWriteDone that follows are header code compiled into our (instrumented)
// binaries, but the handoff between them — the completion queue, the
// executor, the poller threads — is inside Debian's uninstrumented
// libgrpc. A bidi stream's OnReadDone on one thread, its OnWriteDone on a
// second and the next OnReadDone on a third are ordered by gRPC, yet TSan
// sees three unordered threads touching the reactor and reports races in
// OUR frames (agent_test's echo reactor clearing its response). Suppressing
// those would hide real races as well.
//
// How: libgrpc++ starts every batch through grpc_call_start_batch and, on
// the completion thread, drops the batch's call reference with
// grpc_call_unref right before it runs the user's callback
// (CallOpSet::FinalizeResult). Both are exported from libgrpc and called
// through the PLT, so this library interposes them: a release on the call
// before a batch starts, an acquire on the call at each unref. Keyed by the
// call, the edge is per RPC: a callback is ordered after every batch
// started on its call before, which is gRPC's contract plus, for a bidi
// stream's concurrent read and write, at most the order they were started
// in.
#include <dlfcn.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>

#include "grpc/grpc.h"

extern "C" void __tsan_acquire(void* addr) __attribute__((weak));
extern "C" void __tsan_release(void* addr) __attribute__((weak));

namespace {

template <typename Function>
Function RealGrpc(const char* name) {
  void* function = dlsym(RTLD_NEXT, name);
  if (function == nullptr) {
    std::fprintf(stderr, "tsan_grpc_annotations: no %s in libgrpc\n", name);
    std::abort();
  }
  return reinterpret_cast<Function>(function);
}

}  // namespace

extern "C" grpc_call_error grpc_call_start_batch(grpc_call* call,
                                                 const grpc_op* ops,
                                                 size_t nops, void* tag,
                                                 void* reserved) {
  using StartBatch =
      grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*, void*);
  static const auto real = RealGrpc<StartBatch>("grpc_call_start_batch");
  // Before the real call: the completion may run on another thread before
  // it returns.
  if (__tsan_release != nullptr) __tsan_release(call);
  return real(call, ops, nops, tag, reserved);
}

extern "C" void grpc_call_unref(grpc_call* call) {
  using Unref = void (*)(grpc_call*);
  static const auto real = RealGrpc<Unref>("grpc_call_unref");
  // Before the real call: it may be the last reference and free the call.
  if (__tsan_acquire != nullptr) __tsan_acquire(call);
  real(call);
}
