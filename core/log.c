/* Logging: one line per call on stderr, level checked before formatting (see ds_log()). */
#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

volatile int ds_log_threshold = DS_LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ds_log_level_set(enum ds_log_level level)
{
    ds_log_threshold = (int)level;
}

int ds_log_level_parse(const char *name, enum ds_log_level *out)
{
    for (size_t i = 0; i < DS_ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum ds_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void ds_log_write(enum ds_log_level level, const char *module, const char *fmt, ...)
{
    char line[1024], stamp[40];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if ((unsigned)level >= DS_ARRAY_LEN(level_names))
        level = DS_LOG_DEBUG;
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", stamp, ts.tv_nsec / 1000000L, level_names[level],
            module, line);
    pthread_mutex_unlock(&log_lock);
}
