/* LD_PRELOAD for tests: a busy machine's scheduling, on demand. The process's main thread (in
 * `darkscope capture`, the coordinator) sleeps BUSY_MS with its mutex released before each timed
 * wait on a condition, so the other threads' work piles up and the main thread takes it in
 * batches, as it does when the machine is loaded. Behaviour must not depend on it
 * (tests/integration/test_capture_lanes.py). */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BUSY_MS 300

typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);

int pthread_cond_timedwait(pthread_cond_t *restrict cond, pthread_mutex_t *restrict mutex,
                           const struct timespec *restrict abstime)
{
    static timedwait_fn real;

    if (!real)
        real = (timedwait_fn)dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    if (syscall(SYS_gettid) == getpid()) {
        struct timespec busy = {0, BUSY_MS * 1000000L};
        pthread_mutex_unlock(mutex);
        nanosleep(&busy, NULL);
        pthread_mutex_lock(mutex);
    }
    return real(cond, mutex, abstime);
}
