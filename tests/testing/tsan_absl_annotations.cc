// Makes Debian's (uninstrumented) absl::Mutex, absl::CondVar and
// absl::Notification visible to ThreadSanitizer. Built only with
// LATENCY_SANITIZE=thread, as liblatency_tsan_absl.so, and LD_PRELOADed by
// scripts/sanitizers.sh for the TSan tests.
//
// Why: libabsl_synchronization is not built with TSan, so TSan never sees
// its lock and unlock. Every ABSL_GUARDED_BY member written under the lock
// on one thread and read under it on another (ResultStore, HealthService,
// the probers' update queues, gRPC's own gpr_mu, which is an absl::Mutex)
// would then be reported as a race in OUR frames, and suppressing those
// would hide real races too. Instead, this library interposes the public
// entry points: each calls the real function (dlsym RTLD_NEXT) and tells
// TSan about the happens-before edge with __tsan_acquire/__tsan_release,
// the way abseil's own ABSL_TSAN_MUTEX_* annotations would in a TSan
// build of abseil. Writers release to `mu`, readers to `mu + 1`; a writer
// acquires both, a reader only the writers' (readers do not order each
// other). Mangled names are those of Debian 12's abseil 20220623 (inline
// namespace debian3); a missing one aborts at first use.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

extern "C" void __tsan_acquire(void* addr) __attribute__((weak));
extern "C" void __tsan_release(void* addr) __attribute__((weak));

namespace {

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

void* Real(const char* name) {
  void* function = dlsym(RTLD_NEXT, name);
  if (function == nullptr) {
    std::fprintf(stderr, "tsan_absl_annotations: no %s in abseil\n", name);
    std::abort();
  }
  return function;
}

void Acquire(const void* address) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(address));
}
void Release(const void* address) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(address));
}
const char* Readers(const void* mu) { return static_cast<const char*>(mu) + 1; }

void WriterAcquired(const void* mu) {
  Acquire(mu);
  Acquire(Readers(mu));
}
void ReaderAcquired(const void* mu) { Acquire(mu); }
void WriterReleasing(const void* mu) { Release(mu); }
void ReaderReleasing(const void* mu) { Release(Readers(mu)); }

// abseil evaluates a LockWhen/Await condition inside the call, on whichever
// thread holds the lock at that moment (the waiter, or the thread that is
// unlocking). The wrapper tells TSan that the condition's reads happen
// under the lock: acquire before, release after each evaluation.
struct Guarded {
  const Condition* condition;
  const Mutex* mu;
};
bool EvalGuarded(Guarded* guarded) {
  // Condition::Eval, looked up like the rest: no link-time dependency.
  static const auto eval = reinterpret_cast<bool (*)(const Condition*)>(
      Real("_ZNK4absl7debian39Condition4EvalEv"));
  WriterAcquired(guarded->mu);
  bool result = eval(guarded->condition);
  WriterReleasing(guarded->mu);
  return result;
}

}  // namespace

// GUARD(cond): `guarded_cond`, the condition wrapped for TSan.
#define GUARD(cond)                 \
  Guarded guarded_ctx{&(cond), mu}; \
  const Condition guarded_cond(&EvalGuarded, &guarded_ctx)

// REAL(Type, "mangled"): the next definition of the symbol (abseil's).
#define REAL(Type, name) \
  static const auto real = reinterpret_cast<Type>(Real(name))

// Each function below is defined under the mangled name of an abseil member
// function (`this` is the first argument in the Itanium C++ ABI).
#define SHIM(Return, Name, Mangled, ...) \
  extern "C" Return Name(__VA_ARGS__) __asm__(Mangled)

SHIM(void, MutexLock, "_ZN4absl7debian35Mutex4LockEv", Mutex*);
void MutexLock(Mutex* mu) {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(mu);
  WriterAcquired(mu);
}

SHIM(bool, MutexTryLock, "_ZN4absl7debian35Mutex7TryLockEv", Mutex*);
bool MutexTryLock(Mutex* mu) {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  bool locked = real(mu);
  if (locked) WriterAcquired(mu);
  return locked;
}

SHIM(void, MutexUnlock, "_ZN4absl7debian35Mutex6UnlockEv", Mutex*);
void MutexUnlock(Mutex* mu) {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  WriterReleasing(mu);
  real(mu);
}

SHIM(void, MutexReaderLock, "_ZN4absl7debian35Mutex10ReaderLockEv", Mutex*);
void MutexReaderLock(Mutex* mu) {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(mu);
  ReaderAcquired(mu);
}

SHIM(bool, MutexReaderTryLock, "_ZN4absl7debian35Mutex13ReaderTryLockEv",
     Mutex*);
bool MutexReaderTryLock(Mutex* mu) {
  REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  bool locked = real(mu);
  if (locked) ReaderAcquired(mu);
  return locked;
}

SHIM(void, MutexReaderUnlock, "_ZN4absl7debian35Mutex12ReaderUnlockEv", Mutex*);
void MutexReaderUnlock(Mutex* mu) {
  REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  ReaderReleasing(mu);
  real(mu);
}

SHIM(void, MutexLockWhen, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE",
     Mutex*, const Condition&);
void MutexLockWhen(Mutex* mu, const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  GUARD(cond);
  real(mu, guarded_cond);
  WriterAcquired(mu);
}

SHIM(void, MutexReaderLockWhen,
     "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE", Mutex*,
     const Condition&);
void MutexReaderLockWhen(Mutex* mu, const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  GUARD(cond);
  real(mu, guarded_cond);
  ReaderAcquired(mu);
}

SHIM(bool, MutexLockWhenWithTimeout,
     "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
     "8DurationE",
     Mutex*, const Condition&, Duration);
bool MutexLockWhenWithTimeout(Mutex* mu, const Condition& cond, Duration d) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  GUARD(cond);
  bool result = real(mu, guarded_cond, d);
  WriterAcquired(mu);  // held whatever the result
  return result;
}

SHIM(bool, MutexLockWhenWithDeadline,
     "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
     "4TimeE",
     Mutex*, const Condition&, Time);
bool MutexLockWhenWithDeadline(Mutex* mu, const Condition& cond, Time t) {
  REAL(bool (*)(Mutex*, const Condition&, Time),
       "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
       "4TimeE");
  GUARD(cond);
  bool result = real(mu, guarded_cond, t);
  WriterAcquired(mu);
  return result;
}

SHIM(bool, MutexReaderLockWhenWithTimeout,
     "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_"
     "8DurationE",
     Mutex*, const Condition&, Duration);
bool MutexReaderLockWhenWithTimeout(Mutex* mu, const Condition& cond,
                                    Duration d) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  GUARD(cond);
  bool result = real(mu, guarded_cond, d);
  ReaderAcquired(mu);
  return result;
}

SHIM(bool, MutexReaderLockWhenWithDeadline,
     "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_"
     "4TimeE",
     Mutex*, const Condition&, Time);
bool MutexReaderLockWhenWithDeadline(Mutex* mu, const Condition& cond, Time t) {
  REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  GUARD(cond);
  bool result = real(mu, guarded_cond, t);
  ReaderAcquired(mu);
  return result;
}

// Await and CondVar waits give the lock up while they wait.
SHIM(void, MutexAwait, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE", Mutex*,
     const Condition&);
void MutexAwait(Mutex* mu, const Condition& cond) {
  REAL(void (*)(Mutex*, const Condition&),
       "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  WriterReleasing(mu);
  GUARD(cond);
  real(mu, guarded_cond);
  WriterAcquired(mu);
}

SHIM(bool, MutexAwaitWithTimeout,
     "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE",
     Mutex*, const Condition&, Duration);
bool MutexAwaitWithTimeout(Mutex* mu, const Condition& cond, Duration d) {
  REAL(bool (*)(Mutex*, const Condition&, Duration),
       "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
       "8DurationE");
  WriterReleasing(mu);
  GUARD(cond);
  bool result = real(mu, guarded_cond, d);
  WriterAcquired(mu);
  return result;
}

SHIM(bool, MutexAwaitWithDeadline,
     "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE",
     Mutex*, const Condition&, Time);
bool MutexAwaitWithDeadline(Mutex* mu, const Condition& cond, Time t) {
  REAL(bool (*)(Mutex*, const Condition&, Time),
       "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  WriterReleasing(mu);
  GUARD(cond);
  bool result = real(mu, guarded_cond, t);
  WriterAcquired(mu);
  return result;
}

SHIM(void, CondVarWait, "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE", CondVar*,
     Mutex*);
void CondVarWait(CondVar* cv, Mutex* mu) {
  REAL(void (*)(CondVar*, Mutex*),
       "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  WriterReleasing(mu);
  real(cv, mu);
  WriterAcquired(mu);
}

SHIM(bool, CondVarWaitWithTimeout,
     "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE",
     CondVar*, Mutex*, Duration);
bool CondVarWaitWithTimeout(CondVar* cv, Mutex* mu, Duration d) {
  REAL(bool (*)(CondVar*, Mutex*, Duration),
       "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  WriterReleasing(mu);
  bool result = real(cv, mu, d);
  WriterAcquired(mu);
  return result;
}

SHIM(bool, CondVarWaitWithDeadline,
     "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE",
     CondVar*, Mutex*, Time);
bool CondVarWaitWithDeadline(CondVar* cv, Mutex* mu, Time t) {
  REAL(bool (*)(CondVar*, Mutex*, Time),
       "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  WriterReleasing(mu);
  bool result = real(cv, mu, t);
  WriterAcquired(mu);
  return result;
}

SHIM(void, NotificationNotify, "_ZN4absl7debian312Notification6NotifyEv",
     Notification*);
void NotificationNotify(Notification* n) {
  REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  Release(n);
  real(n);
}

SHIM(void, NotificationWait,
     "_ZNK4absl7debian312Notification19WaitForNotificationEv",
     const Notification*);
void NotificationWait(const Notification* n) {
  REAL(void (*)(const Notification*),
       "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(n);
  Acquire(n);
}

SHIM(bool, NotificationWaitWithTimeout,
     "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
     "8DurationE",
     const Notification*, Duration);
bool NotificationWaitWithTimeout(const Notification* n, Duration d) {
  REAL(bool (*)(const Notification*, Duration),
       "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
       "8DurationE");
  bool notified = real(n, d);
  if (notified) Acquire(n);
  return notified;
}

SHIM(bool, NotificationWaitWithDeadline,
     "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
     "4TimeE",
     const Notification*, Time);
bool NotificationWaitWithDeadline(const Notification* n, Time t) {
  REAL(bool (*)(const Notification*, Time),
       "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
       "4TimeE");
  bool notified = real(n, t);
  if (notified) Acquire(n);
  return notified;
}
