/* redis internals: key builders and command helpers. Not included outside redis/. */
#ifndef RDS_INTERNAL_H
#define RDS_INTERNAL_H

#include "redis/redis.h"

#include <hiredis/hiredis.h>

/* The hiredis context of a connected rds_conn (NULL when not connected). */
redisContext *rds_conn_ctx(struct rds_conn *c);
/* Runs one command; on an error reply or a lost connection records it (connection reset), fills
 * err with "redis: …" and returns NULL. The caller frees a reply it gets. */
redisReply *rds_conn_command(struct rds_conn *c, const char *what, char *err, size_t errlen,
                             const char *fmt, ...);
/* Records an error from a failed command/reply and resets the connection. Returns -EIO. */
int rds_conn_fail(struct rds_conn *c, const char *what, const redisReply *r);

/* Where a connection goes, for the asynchronous connections of watch.c: host and port, or a
 * unix socket path (host NULL); the embedded server is started when needed. Pointers stay valid
 * while c lives. Returns 0 or -errno with c's error text set. */
struct rds_target {
    const char *host, *path, *password;
    int port, db;
};
int rds_conn_target(struct rds_conn *c, struct rds_target *t);

/* hiredis keeps pipelined commands in its output buffer until they are written, and grows that
 * buffer 1 MiB at a time past its first MiB (each growth copying all of it), so a pipeline of
 * tens of megabytes built whole costs a quadratic amount of copying. Call this after appending
 * each command: it writes the buffer out (blocking) once it holds 1 MiB. Redis queues the
 * replies meanwhile. Returns 0 or -EIO (the connection failed; the caller records it). */
int rds_conn_push_out(redisContext *ctx);

/* Key of a bucket part: "ds:v1:{sensor:start}:part". */
const char *rds_key_hour(char *buf, size_t len, const char *sensor, int64_t hour, const char *part);

#define RDS_KEY_MAX 192

/* A growable argv for one command, bounded by what one command may carry. */
struct rds_argv {
    size_t n, cap;
    const char **argv;
    size_t *lens;
    char *arena; /* copies of formatted arguments */
    size_t arena_len, arena_cap;
    size_t *offsets; /* arena offsets of copied args, SIZE_MAX for borrowed */
};

void rds_argv_init(struct rds_argv *a);
void rds_argv_fini(struct rds_argv *a);
void rds_argv_reset(struct rds_argv *a);
/* Copies the argument. Returns 0 or -ENOMEM. */
int rds_argv_add(struct rds_argv *a, const char *s, size_t len);
int rds_argv_addf(struct rds_argv *a, const char *fmt, ...) DS_PRINTF(2, 3);
/* Appends the command to the context's output buffer (pipelined). */
int rds_argv_append(redisContext *ctx, struct rds_argv *a);

#endif
