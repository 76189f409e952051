/* Connections: URL parsing, connect with timeouts, reconnect with backoff, and the embedded
 * redis-server (a unix socket in the state directory, AOF everysec, noeviction). */
#include "redis/rds_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000
#define COMMAND_TIMEOUT_MS 30000
#define BACKOFF_MIN_NS     (100 * 1000000LL)
#define BACKOFF_MAX_NS     (5 * DS_NS_PER_SEC)

struct rds_conn {
    char *host; /* NULL for unix */
    int port;
    char *path; /* unix socket */
    int db;
    char *password; /* never logged */
    bool embedded;
    char *state_dir;
    bool has_user;
    struct ds_user user;
    char describe[600];
    char error[1024];
    redisContext *ctx;
    enum rds_state state;
    ds_time_ns retry_at, backoff;
};

static int parse_url(struct rds_conn *c, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "unix:", 5) == 0) {
        c->path = strdup(url + 5);
        snprintf(c->describe, sizeof(c->describe), "unix:%s", c->path ? c->path : "");
        return c->path ? 0 : -ENOMEM;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        const char *p = url + 8, *at = strrchr(p, '@'), *slash, *colon;
        char host[256];
        if (at) {
            const char *pw = memchr(p, ':', (size_t)(at - p));
            pw = pw ? pw + 1 : p;
            c->password = strndup(pw, (size_t)(at - pw));
            p = at + 1;
        }
        slash = strchr(p, '/');
        size_t hl = slash ? (size_t)(slash - p) : strlen(p);
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, p, hl);
        host[hl] = '\0';
        colon = strrchr(host, ':');
        c->port = 6379;
        if (colon && !strchr(colon + 1, ']')) {
            char *end;
            long port = strtol(colon + 1, &end, 10);
            if (*end || port < 1 || port > 65535)
                goto bad;
            c->port = (int)port;
            host[colon - host] = '\0';
        }
        if (host[0] == '[') {
            size_t l = strlen(host);
            if (host[l - 1] != ']')
                goto bad;
            host[l - 1] = '\0';
            memmove(host, host + 1, l - 1);
        }
        if (slash && slash[1]) {
            char *end;
            long db = strtol(slash + 1, &end, 10);
            if (*end || db < 0 || db > 15)
                goto bad;
            c->db = (int)db;
        }
        c->host = strdup(host);
        snprintf(c->describe, sizeof(c->describe), "redis://%s:%d/%d", host, c->port, c->db);
        return c->host ? 0 : -ENOMEM;
    }
bad:
    snprintf(err, errlen, "redis.url: expected redis://HOST:PORT/DB or unix:/PATH, got \"%s\"",
             url);
    return -EINVAL;
}

struct rds_conn *rds_conn_new(const char *url, const char *state_dir, const struct ds_user *user,
                              char *err, size_t errlen)
{
    struct rds_conn *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (user) {
        c->has_user = true;
        c->user = *user;
    }
    c->backoff = BACKOFF_MIN_NS;
    if (!url || !*url) {
        char sock[512];
        c->embedded = true;
        c->state_dir = strdup(state_dir ? state_dir : "/var/lib/darkscope");
        snprintf(sock, sizeof(sock), "%s/redis.sock", c->state_dir ? c->state_dir : "");
        c->path = strdup(sock);
        snprintf(c->describe, sizeof(c->describe), "embedded unix:%s", sock);
        if (!c->state_dir || !c->path)
            goto nomem;
        return c;
    }
    if (parse_url(c, url, err, errlen) < 0) {
        rds_conn_free(c);
        return NULL;
    }
    return c;
nomem:
    snprintf(err, errlen, "redis: out of memory");
    rds_conn_free(c);
    return NULL;
}

void rds_conn_free(struct rds_conn *c)
{
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    free(c->host);
    free(c->path);
    if (c->password) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c->state_dir);
    free(c);
}

redisContext *rds_conn_ctx(struct rds_conn *c)
{
    return c->ctx;
}

#define OBUF_PUSH (1u << 20)

int rds_conn_push_out(redisContext *ctx)
{
    int done = 0;

    if (sdslen(ctx->obuf) < OBUF_PUSH)
        return 0;
    while (!done) {
        if (redisBufferWrite(ctx, &done) != REDIS_OK)
            return -EIO;
    }
    return 0;
}

enum rds_state rds_conn_state(const struct rds_conn *c)
{
    return c->state;
}

const char *rds_conn_describe(const struct rds_conn *c)
{
    return c->describe;
}

const char *rds_conn_error(const struct rds_conn *c)
{
    return c->error[0] ? c->error : "no error";
}

void rds_conn_reset(struct rds_conn *c)
{
    if (c->ctx)
        redisFree(c->ctx);
    c->ctx = NULL;
    c->state = RDS_BACKOFF;
    c->retry_at = ds_time_monotonic() + c->backoff;
    c->backoff = c->backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : c->backoff * 2;
}

int rds_conn_fail(struct rds_conn *c, const char *what, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(c->error, sizeof(c->error), "%s: %s", what, r->str);
    else if (c->ctx && c->ctx->err)
        snprintf(c->error, sizeof(c->error), "%s: %s", what, c->ctx->errstr);
    else
        snprintf(c->error, sizeof(c->error), "%s: unexpected reply", what);
    rds_conn_reset(c);
    return -EIO;
}

redisReply *rds_conn_command(struct rds_conn *c, const char *what, char *err, size_t errlen,
                             const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        rds_conn_fail(c, what, r);
        snprintf(err, errlen, "redis: %s", rds_conn_error(c));
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int simple_command(struct rds_conn *c, const char *what, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        rds_conn_fail(c, what, r);
        if (r)
            freeReplyObject(r);
        return -EIO;
    }
    freeReplyObject(r);
    return 0;
}

int rds_conn_ensure(struct rds_conn *c)
{
    struct timeval ct = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    struct timeval ctm = {COMMAND_TIMEOUT_MS / 1000, 0};

    if (c->ctx && !c->ctx->err)
        return 0;
    if (c->ctx)
        rds_conn_reset(c);
    if (c->state == RDS_BACKOFF && ds_time_monotonic() < c->retry_at)
        return -EAGAIN;
    if (c->embedded) {
        char sock[512], err[256];
        if (rds_embedded_ensure(c->state_dir, c->has_user ? &c->user : NULL, sock, sizeof(sock),
                                err, sizeof(err)) < 0) {
            snprintf(c->error, sizeof(c->error), "%s", err);
            rds_conn_reset(c);
            return -EIO;
        }
    }
    c->ctx = c->path ? redisConnectUnixWithTimeout(c->path, ct)
                     : redisConnectWithTimeout(c->host, c->port, ct);
    if (!c->ctx || c->ctx->err) {
        snprintf(c->error, sizeof(c->error), "connect %s: %s", c->describe,
                 c->ctx ? c->ctx->errstr : "out of memory");
        rds_conn_reset(c);
        return -EIO;
    }
    redisSetTimeout(c->ctx, ctm);
    if (c->password && simple_command(c, "AUTH", "AUTH %s", c->password) < 0)
        return -EIO;
    if (c->db && simple_command(c, "SELECT", "SELECT %d", c->db) < 0)
        return -EIO;
    c->state = RDS_CONNECTED;
    c->backoff = BACKOFF_MIN_NS;
    c->error[0] = '\0';
    return 0;
}

int rds_conn_target(struct rds_conn *c, struct rds_target *t)
{
    if (c->embedded) {
        char sock[512], err[256];
        if (rds_embedded_ensure(c->state_dir, c->has_user ? &c->user : NULL, sock, sizeof(sock),
                                err, sizeof(err)) < 0) {
            snprintf(c->error, sizeof(c->error), "%s", err);
            return -EIO;
        }
    }
    t->host = c->path ? NULL : c->host;
    t->path = c->path;
    t->port = c->port;
    t->db = c->db;
    t->password = c->password;
    return 0;
}

/* ---- embedded server */

static bool socket_answers(const char *sock)
{
    struct timeval t = {0, 500000};
    redisContext *ctx = redisConnectUnixWithTimeout(sock, t);
    bool ok = false;

    if (ctx && !ctx->err) {
        redisReply *r = redisCommand(ctx, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (ctx)
        redisFree(ctx);
    return ok;
}

static int mkdir_p(const char *path)
{
    char buf[512];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static const struct ds_user *chown_user;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (lchown(path, (uid_t)chown_user->uid, (gid_t)chown_user->gid) < 0)
        return -1;
    return 0;
}

/* Root starting the server for an unprivileged user: the user owns the state directory. */
static int give_state_dir(const char *state_dir, const struct ds_user *u, char *err, size_t errlen)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int rc;

    pthread_mutex_lock(&lock);
    chown_user = u;
    rc = nftw(state_dir, chown_one, 16, FTW_PHYS);
    pthread_mutex_unlock(&lock);
    if (rc < 0) {
        snprintf(err, errlen, "embedded redis: cannot give %s to %s: %s", state_dir, u->name,
                 strerror(errno));
        return -errno;
    }
    return 0;
}

/* Run by the embedded server's start (sh -c, as the server's user) after an unclean stop: a
 * redis-server killed while writing a MULTI to its AOF leaves part of it in the file, and Redis
 * 7.0 drops only the cut command, keeping MULTI and the commands before it without EXEC; the
 * next transaction's EXEC then completes them and they are applied together with it (counters
 * added twice; fixed upstream in valkey-io/valkey#4342). redis-check-aof --fix cuts the file
 * back to before that MULTI instead: the transaction is lost whole, as its writer expects (it
 * was never answered, or was answered within the fsync interval — docs/reliability.md). */
static const char AOF_REPAIR[] =
    "m=\"$1/appendonlydir/appendonly.aof.manifest\"\n"
    "if [ -f \"$m\" ] && ! redis-check-aof \"$m\" >/dev/null 2>&1; then\n"
    "  echo \"darkscope: $m was cut short (redis-server stopped while writing it): "
    "redis-check-aof --fix\" >>\"$3\"\n"
    "  echo y | redis-check-aof --fix \"$m\" >>\"$3\" 2>&1\n"
    "fi\n"
    "exec redis-server \"$2\"\n";

/* Whether the embedded server last stopped without removing its pid file (killed, or the
 * machine went down): its AOF may end inside a transaction. */
static bool stopped_uncleanly(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    bool stale;

    if (!f)
        return false;
    stale = fscanf(f, "%ld", &pid) != 1 || pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);
    fclose(f);
    if (!stale) {
        /* a killed daemon not yet reaped by init is a zombie: dead too */
        char path[64], stat[256] = "";
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f) {
            size_t n = fread(stat, 1, sizeof(stat) - 1, f);
            stat[n] = '\0';
            fclose(f);
            const char *close = strrchr(stat, ')');
            stale = close && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
        }
    }
    return stale;
}

static int embedded_start(const char *state_dir, const struct ds_user *user, char *sock,
                          size_t socklen, char *err, size_t errlen);

/* Roles started together (tools/demo, `darkscope run`, systemd) may all find no server: they
 * take turns under a lock file in the state directory, and the ones after the first find it
 * answering. Without the lock each started a redis-server of its own on the same socket and
 * AOF. */
int rds_embedded_ensure(const char *state_dir, const struct ds_user *user, char *sock,
                        size_t socklen, char *err, size_t errlen)
{
    char lock[600];
    int fd, rc;

    snprintf(sock, socklen, "%s/redis.sock", state_dir);
    if (socket_answers(sock))
        return 0;
    rc = mkdir_p(state_dir);
    if (rc < 0) {
        snprintf(err, errlen, "embedded redis: cannot create %s: %s", state_dir, strerror(-rc));
        return rc;
    }
    snprintf(lock, sizeof(lock), "%s/redis.start.lock", state_dir);
    /* read-only is enough to lock, so a role already running as the service user can too */
    fd = open(lock, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
        close(fd);
        fd = -1;
    }
    rc = embedded_start(state_dir, user, sock, socklen, err, errlen);
    if (fd >= 0)
        close(fd); /* unlocks */
    return rc;
}

static int embedded_start(const char *state_dir, const struct ds_user *user, char *sock,
                          size_t socklen, char *err, size_t errlen)
{
    bool as_user = user && user->uid != 0 && geteuid() == 0;
    char conf[600], pidfile[600], logfile[600];
    FILE *f;
    pid_t pid;
    int status;

    /* under the start lock (the caller created state_dir): another role may have started it */
    snprintf(sock, socklen, "%s/redis.sock", state_dir);
    if (socket_answers(sock))
        return 0;
    snprintf(conf, sizeof(conf), "%s/redis.conf", state_dir);
    snprintf(pidfile, sizeof(pidfile), "%s/redis.pid", state_dir);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", state_dir);
    f = fopen(conf, "w");
    if (!f) {
        snprintf(err, errlen, "embedded redis: cannot write %s: %s", conf, strerror(errno));
        return -errno;
    }
    /* written by darkscope on every start of the embedded server; edit the config instead */
    fprintf(f,
            "port 0\nunixsocket %s\nunixsocketperm 770\ndir %s\ndaemonize yes\npidfile %s\n"
            "logfile %s\nappendonly yes\nappendfsync everysec\nmaxmemory-policy noeviction\n"
            "save \"\"\n",
            sock, state_dir, pidfile, logfile);
    fclose(f);
    if (as_user && give_state_dir(state_dir, user, err, errlen) < 0)
        return -EPERM;
    bool check_aof = stopped_uncleanly(pidfile);
    if (check_aof)
        ds_log(DS_LOG_WARN, "redis",
               "embedded redis in %s stopped uncleanly: checking its AOF before starting it (a "
               "repair is logged in %s)",
               state_dir, logfile);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "embedded redis: fork: %s", strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        if (as_user && (setgroups(1, (const gid_t[]){(gid_t)user->gid}) < 0 ||
                        setgid((gid_t)user->gid) < 0 || setuid((uid_t)user->uid) < 0))
            _exit(126);
        if (check_aof)
            execlp("sh", "sh", "-c", AOF_REPAIR, "sh", state_dir, conf, logfile, (char *)NULL);
        else
            execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen,
                 "embedded redis: redis-server %s failed (exit %d); is redis-server installed? "
                 "see %s",
                 conf, WIFEXITED(status) ? WEXITSTATUS(status) : -1, logfile);
        return -EIO;
    }
    for (int i = 0; i < 100; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        if (socket_answers(sock))
            return 0;
        nanosleep(&ts, NULL);
    }
    snprintf(err, errlen, "embedded redis: no answer on %s after 5 s; see %s", sock, logfile);
    return -ETIMEDOUT;
}

/* ---- argv */

void rds_argv_init(struct rds_argv *a)
{
    memset(a, 0, sizeof(*a));
}

void rds_argv_fini(struct rds_argv *a)
{
    free(a->argv);
    free(a->lens);
    free(a->offsets);
    free(a->arena);
    memset(a, 0, sizeof(*a));
}

void rds_argv_reset(struct rds_argv *a)
{
    a->n = 0;
    a->arena_len = 0;
}

int rds_argv_add(struct rds_argv *a, const char *s, size_t len)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        const char **nv = realloc(a->argv, nc * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        a->argv = nv;
        size_t *nl = realloc(a->lens, nc * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        a->lens = nl;
        size_t *no = realloc(a->offsets, nc * sizeof(*no));
        if (!no)
            return -ENOMEM;
        a->offsets = no;
        a->cap = nc;
    }
    if (a->arena_len + len + 1 > a->arena_cap) {
        size_t nc = a->arena_cap ? a->arena_cap * 2 : 4096;
        while (nc < a->arena_len + len + 1)
            nc *= 2;
        char *na = realloc(a->arena, nc);
        if (!na)
            return -ENOMEM;
        a->arena = na;
        a->arena_cap = nc;
    }
    memcpy(a->arena + a->arena_len, s, len);
    a->arena[a->arena_len + len] = '\0';
    a->offsets[a->n] = a->arena_len;
    a->lens[a->n] = len;
    a->arena_len += len + 1;
    a->n++;
    return 0;
}

int rds_argv_addf(struct rds_argv *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EINVAL;
    return rds_argv_add(a, buf, (size_t)n);
}

int rds_argv_append(redisContext *ctx, struct rds_argv *a)
{
    /* the arena may have moved while growing: resolve pointers now */
    for (size_t i = 0; i < a->n; i++)
        a->argv[i] = a->arena + a->offsets[i];
    return redisAppendCommandArgv(ctx, (int)a->n, a->argv, a->lens) == REDIS_OK ? 0 : -EIO;
}
