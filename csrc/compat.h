/* Portability layer: OS threads, locks, condition variables, atomics, clocks.
 *
 * The C core keeps cross-interpreter state outside of any interpreter, so it cannot
 * use CPython's locks (PyMutex is public only from 3.13 and there is no public
 * condition variable). POSIX threads are used directly. */
#ifndef XI_COMPAT_H
#define XI_COMPAT_H

#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030C0000
#  error "extrainterpreters needs CPython 3.12 or newer"
#endif

/* Copies `len` bytes into memory that was just allocated for a new object (a bytes,
 * a bytearray, an owned packet) and may never have been touched. For a large copy it
 * first asks for transparent huge pages on the part of `dst` that whole huge pages
 * cover, so that filling it faults once per 2 MiB instead of once per 4 KiB page: on
 * machines where a page fault is costly that is most of the time of a large copy. */
static inline void
xi_copy_new(void *dst, const void *src, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (len >= 2 * huge) {
        uintptr_t start = ((uintptr_t)dst + huge - 1) & ~(huge - 1);
        uintptr_t end = ((uintptr_t)dst + len) & ~(huge - 1);
        if (end > start) {
            (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
        }
    }
#endif
    memcpy(dst, src, len);
}

typedef pthread_mutex_t xi_mutex;
typedef pthread_cond_t xi_cond;

static inline void xi_mutex_init(xi_mutex *m) { pthread_mutex_init(m, NULL); }
static inline void xi_mutex_fini(xi_mutex *m) { pthread_mutex_destroy(m); }
static inline void xi_lock(xi_mutex *m) { pthread_mutex_lock(m); }
static inline void xi_unlock(xi_mutex *m) { pthread_mutex_unlock(m); }

static inline void
xi_cond_init(xi_cond *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}
static inline void xi_cond_fini(xi_cond *c) { pthread_cond_destroy(c); }
static inline void xi_signal(xi_cond *c) { pthread_cond_signal(c); }
static inline void xi_broadcast(xi_cond *c) { pthread_cond_broadcast(c); }
static inline void xi_wait(xi_cond *c, xi_mutex *m) { pthread_cond_wait(c, m); }

/* Monotonic time in nanoseconds. */
static inline int64_t
xi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits until signalled or until the monotonic deadline; returns 0 or ETIMEDOUT. */
static inline int
xi_wait_until(xi_cond *c, xi_mutex *m, int64_t deadline_ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    return pthread_cond_timedwait(c, m, &ts);
}

/* A hint to the CPU inside a short spin-wait. */
static inline void
xi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* How long a thread spins on a hand-off before it sleeps: long enough to cover a
 * short call's round trip, short enough to cost nothing measurable. */
#define XI_SPIN_NS 50000

/* Spins until `done(arg)` or XI_SPIN_NS pass; returns done(arg). After the first few
 * microseconds it yields the CPU on each round, so that on a busy machine the thread it
 * waits for can run on this core. */
#include <sched.h>
static inline int
xi_spin_until(int (*done)(void *), void *arg)
{
    int64_t start = xi_now_ns(), now = start;
    while (!done(arg)) {
        if (now - start > XI_SPIN_NS) {
            return 0;
        }
        if (now - start > 5000) {
            sched_yield();
        }
        else {
            for (int i = 0; i < 32; i++) {
                xi_cpu_relax();
            }
        }
        now = xi_now_ns();
    }
    return 1;
}

#endif /* XI_COMPAT_H */
