/* `darkscope run`: every role of one site in one process tree, for a single machine (and the
 * demo). The roles stay separate processes — each is exactly `darkscope ROLE` with the same
 * options — so one that crashes is restarted alone, and each keeps its own privileges (capture
 * drops root after opening its interfaces, serve after opening its listener). This supervisor
 * only starts the embedded Redis once (so the roles do not race to start it), forks the roles,
 * restarts a role that dies with backoff, forwards SIGHUP to the aggregator (reload), and on
 * SIGINT/SIGTERM stops every role and waits for it. docs/deployment.md. */
#include "core/core.h"
#include "redis/redis.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_ROLES          4
#define RUN_BACKOFF_MIN_NS (1 * DS_NS_PER_SEC)
#define RUN_BACKOFF_MAX_NS (30 * DS_NS_PER_SEC)
#define RUN_STABLE_NS      (60 * DS_NS_PER_SEC) /* up this long: the backoff starts over */
#define RUN_STOP_NS        (15 * DS_NS_PER_SEC) /* then SIGKILL */
#define RUN_EXIT_USAGE     2

int main_run(int argc, char **argv, const struct ds_config *cfg);

struct run_role {
    const char *name;
    bool wanted;
    bool once_ok;  /* exit status 0 means done (capture reading files), not a crash */
    pid_t pid;     /* 0: not running */
    bool finished; /* exited 0 and once_ok: not restarted */
    ds_time_ns started, next_start, backoff;
    unsigned restarts;
};

static volatile sig_atomic_t run_stop_sig, run_hup;

static void run_on_signal(int sig)
{
    if (sig == SIGHUP)
        run_hup = 1;
    else
        run_stop_sig = sig;
}

static pid_t run_spawn(const char *exe, const char *role, int argc, char **argv)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    /* the child: `darkscope ROLE <the options run was given>` */
    char **args = calloc((size_t)argc + 2, sizeof(*args));
    if (!args)
        _exit(1);
    args[0] = (char *)exe;
    args[1] = (char *)role;
    for (int i = 2; i < argc; i++)
        args[i] = argv[i];
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGHUP, &dfl, NULL);
    execv(exe, args);
    fprintf(stderr, "darkscope run: cannot start %s: %s\n", role, strerror(errno));
    _exit(127);
}

static void run_signal_all(struct run_role *r, int sig)
{
    for (int i = 0; i < RUN_ROLES; i++) {
        if (r[i].pid > 0)
            kill(r[i].pid, sig);
    }
}

static unsigned run_alive(const struct run_role *r)
{
    unsigned n = 0;

    for (int i = 0; i < RUN_ROLES; i++)
        n += r[i].pid > 0;
    return n;
}

/* Reaps every exited child; returns RUN_EXIT_USAGE when a role refused its configuration (no
 * point restarting it), else 0. */
static int run_reap(struct run_role *r, bool stopping)
{
    int status, rc = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < RUN_ROLES; i++) {
            if (r[i].pid != pid)
                continue;
            ds_time_ns now = ds_time_monotonic();
            r[i].pid = 0;
            if (stopping)
                break;
            if (WIFEXITED(status) && WEXITSTATUS(status) == RUN_EXIT_USAGE) {
                ds_log(DS_LOG_ERROR, "run", "%s refused its configuration (exit status 2)",
                       r[i].name);
                rc = RUN_EXIT_USAGE;
            } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && r[i].once_ok) {
                ds_log(DS_LOG_INFO, "run", "%s finished", r[i].name);
                r[i].finished = true;
            } else {
                if (now - r[i].started >= RUN_STABLE_NS)
                    r[i].backoff = RUN_BACKOFF_MIN_NS;
                if (WIFSIGNALED(status))
                    ds_log(DS_LOG_WARN, "run", "%s killed by signal %d; restarting in %.0f s",
                           r[i].name, WTERMSIG(status), (double)r[i].backoff / 1e9);
                else
                    ds_log(DS_LOG_WARN, "run", "%s exited with status %d; restarting in %.0f s",
                           r[i].name, WEXITSTATUS(status), (double)r[i].backoff / 1e9);
                r[i].next_start = now + r[i].backoff;
                r[i].backoff =
                    r[i].backoff * 2 > RUN_BACKOFF_MAX_NS ? RUN_BACKOFF_MAX_NS : r[i].backoff * 2;
            }
            break;
        }
    }
    return rc;
}

int main_run(int argc, char **argv, const struct ds_config *cfg)
{
    char exe[4096], err[512], sock[512];
    struct ds_user user;
    struct run_role r[RUN_ROLES] = {
        {.name = "capture",
         .wanted = cfg->n_interfaces + cfg->n_files > 0,
         .once_ok = cfg->n_interfaces == 0},
        {.name = "aggregate", .wanted = cfg->agg_subscribers && *cfg->agg_subscribers},
        {.name = "notify", .wanted = cfg->agg_subscribers && *cfg->agg_subscribers},
        {.name = "serve", .wanted = true},
    };
    struct sigaction sa = {.sa_handler = run_on_signal};
    int status = 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0) {
        fprintf(stderr, "darkscope run: cannot find its own executable: %s\n", strerror(errno));
        return 1;
    }
    exe[n] = '\0';
    if (!*cfg->redis_url) {
        /* one embedded Redis for every role, started before any of them */
        bool root = geteuid() == 0;
        if (root && ds_user_resolve(cfg->user, &user, err, sizeof(err)) < 0) {
            fprintf(stderr, "darkscope run: %s\n", err);
            return RUN_EXIT_USAGE;
        }
        if (rds_embedded_ensure(cfg->state_dir, root ? &user : NULL, sock, sizeof(sock), err,
                                sizeof(err)) < 0) {
            fprintf(stderr, "darkscope run: %s\n", err);
            return 1;
        }
        ds_log(DS_LOG_INFO, "run", "embedded Redis on %s", sock);
    }
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    for (int i = 0; i < RUN_ROLES; i++) {
        r[i].backoff = RUN_BACKOFF_MIN_NS;
        if (!r[i].wanted)
            ds_log(DS_LOG_INFO, "run", "%s not started (%s)", r[i].name,
                   i == 0 ? "no interfaces or files configured" : "no aggregate.subscribers");
    }
    while (!run_stop_sig) {
        ds_time_ns now = ds_time_monotonic();
        for (int i = 0; i < RUN_ROLES; i++) {
            if (!r[i].wanted || r[i].finished || r[i].pid > 0 || now < r[i].next_start)
                continue;
            r[i].pid = run_spawn(exe, r[i].name, argc, argv);
            if (r[i].pid < 0) {
                ds_log(DS_LOG_ERROR, "run", "fork for %s: %s", r[i].name, strerror(errno));
                r[i].pid = 0;
                r[i].next_start = now + r[i].backoff;
                continue;
            }
            r[i].started = now;
            if (r[i].restarts++)
                ds_log(DS_LOG_INFO, "run", "%s restarted (pid %d)", r[i].name, (int)r[i].pid);
            else
                ds_log(DS_LOG_INFO, "run", "%s started (pid %d)", r[i].name, (int)r[i].pid);
        }
        if (run_hup) {
            run_hup = 0;
            if (r[1].pid > 0) {
                ds_log(DS_LOG_INFO, "run", "SIGHUP: the aggregator reloads its subscribers");
                kill(r[1].pid, SIGHUP);
            }
        }
        struct timespec tick = {0, 100 * 1000000L};
        nanosleep(&tick, NULL);
        if (run_reap(r, false) == RUN_EXIT_USAGE) {
            status = RUN_EXIT_USAGE;
            break;
        }
    }
    /* stop: every role gets SIGTERM (each flushes what it holds), then SIGKILL after a bound */
    if (run_stop_sig)
        ds_log(DS_LOG_INFO, "run", "signal %d: stopping %u roles", (int)run_stop_sig, run_alive(r));
    run_signal_all(r, SIGTERM);
    ds_time_ns deadline = ds_time_monotonic() + RUN_STOP_NS;
    while (run_alive(r) && ds_time_monotonic() < deadline) {
        struct timespec tick = {0, 50 * 1000000L};
        nanosleep(&tick, NULL);
        run_reap(r, true);
    }
    if (run_alive(r)) {
        ds_log(DS_LOG_WARN, "run", "%u roles did not stop within %.0f s: killed", run_alive(r),
               (double)RUN_STOP_NS / 1e9);
        run_signal_all(r, SIGKILL);
        for (int i = 0; i < RUN_ROLES; i++) {
            if (r[i].pid > 0)
                waitpid(r[i].pid, NULL, 0);
            r[i].pid = 0;
        }
    }
    return status;
}
