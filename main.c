/* darkscope: argument parsing, signals and start-up. The only code that knows every module and
 * the only place that calls exit(). */
#include "aggregator/aggregator.h"
#include "alerts/alerts.h"
#include "capture/capture.h"
#include "core/core.h"
#include "redis/redis.h"
#include "web/web.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE 2

int main_query(int argc, char **argv, struct ds_config *cfg);
int main_subscribers(int argc, char **argv, struct ds_config *cfg);
int main_run(int argc, char **argv, const struct ds_config *cfg);

static struct cap_capture *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        cap_capture_stop(running);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: darkscope COMMAND [options]\n"
                 "\n"
                 "commands:\n"
                 "  run            every role below that the configuration enables, supervised\n"
                 "  capture        read interfaces and/or pcap files into Redis time-buckets\n"
                 "  serve          the live map, its websocket and the REST API\n"
                 "  aggregate      subscriber alerts from closed buckets [--once] [--reload]\n"
                 "  notify         email digests of alerts [--once] [--dead-letters] [--retry ID]\n"
                 "  query alerts   [--org ID] [--since T] [--kind K]\n"
                 "  subscribers check FILE | lookup IP   the subscriber file\n"
                 "  query summary  --from T --to T [--sensor S] [--top N]\n"
                 "  query source   IP [--from T] [--to T] [--sensor S]\n"
                 "  check-config   FILE\n"
                 "  config-doc     print docs/config.md\n"
                 "  version\n"
                 "\n"
                 "common options:\n"
                 "  --config FILE      JSON configuration (docs/config.md)\n"
                 "  --redis URL        redis://HOST:PORT/DB or unix:/PATH (default: embedded)\n"
                 "  --set KEY=VALUE    any configuration key\n"
                 "  --dump-config      print the effective configuration and exit\n"
                 "capture options:\n"
                 "  --darknet CIDR     a darknet prefix (repeatable)\n"
                 "  --read FILE        a pcap/pcapng file (repeatable)\n"
                 "  --interface IF     a live interface (repeatable)\n"
                 "  --sensor NAME      sensor name\n"
                 "  --speed S          max, realtime or xN\n"
                 "aggregate options:\n"
                 "  --subscribers FILE the subscriber file (docs/alerting.md)\n"
                 "  --once             process every complete bucket, then exit\n"
                 "  --reload           make the running aggregator reload its subscriber file\n"
                 "serve options:\n"
                 "  --listen ADDR:PORT address to serve on (default 127.0.0.1:8080)\n");
}

enum {
    OPT_CONFIG = 1000,
    OPT_REDIS,
    OPT_DARKNET,
    OPT_READ,
    OPT_INTERFACE,
    OPT_SENSOR,
    OPT_SPEED,
    OPT_SET,
    OPT_DUMP,
    OPT_FROM,
    OPT_TO,
    OPT_TOP,
    OPT_LISTEN,
    OPT_SUBSCRIBERS,
    OPT_ONCE,
    OPT_RELOAD,
    OPT_ORG,
    OPT_SINCE,
    OPT_KIND,
    OPT_DEAD,
    OPT_RETRY,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"darknet", required_argument, NULL, OPT_DARKNET},
    {"read", required_argument, NULL, OPT_READ},
    {"interface", required_argument, NULL, OPT_INTERFACE},
    {"sensor", required_argument, NULL, OPT_SENSOR},
    {"speed", required_argument, NULL, OPT_SPEED},
    {"set", required_argument, NULL, OPT_SET},
    {"dump-config", no_argument, NULL, OPT_DUMP},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"top", required_argument, NULL, OPT_TOP},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"subscribers", required_argument, NULL, OPT_SUBSCRIBERS},
    {"once", no_argument, NULL, OPT_ONCE},
    {"reload", no_argument, NULL, OPT_RELOAD},
    {"org", required_argument, NULL, OPT_ORG},
    {"since", required_argument, NULL, OPT_SINCE},
    {"kind", required_argument, NULL, OPT_KIND},
    {"dead-letters", no_argument, NULL, OPT_DEAD},
    {"retry", required_argument, NULL, OPT_RETRY},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct cli {
    const char *config;
    bool dump;
    const char *from, *to, *top, *sensor;
    const char *org, *since, *kind;
    bool once, reload, dead;
    const char *retry;
    /* overrides, applied after the file in the order given */
    struct {
        const char *key;
        char *value;
    } set[256];
    unsigned n_set;
    int positional_n;
    char *positional[8];
};

static int cli_set(struct cli *c, const char *key, const char *value)
{
    if (c->n_set == DS_ARRAY_LEN(c->set))
        return -ENOSPC;
    c->set[c->n_set].key = key;
    c->set[c->n_set].value = strdup(value);
    c->n_set++;
    return 0;
}

static int parse_cli(int argc, char **argv, struct cli *c)
{
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        int rc = 0;
        switch (opt) {
        case OPT_CONFIG:
            c->config = optarg;
            break;
        case OPT_REDIS:
            rc = cli_set(c, "redis.url", optarg);
            break;
        case OPT_DARKNET:
            rc = cli_set(c, "darknet", optarg);
            break;
        case OPT_READ:
            rc = cli_set(c, "sources.files", optarg);
            break;
        case OPT_INTERFACE:
            rc = cli_set(c, "sources.interfaces", optarg);
            break;
        case OPT_SENSOR:
            c->sensor = optarg;
            rc = cli_set(c, "sensor.name", optarg);
            break;
        case OPT_SPEED:
            rc = cli_set(c, "sources.speed", optarg);
            break;
        case OPT_LISTEN:
            rc = cli_set(c, "web.listen", optarg);
            break;
        case OPT_SUBSCRIBERS:
            rc = cli_set(c, "aggregate.subscribers", optarg);
            break;
        case OPT_ONCE:
            c->once = true;
            break;
        case OPT_RELOAD:
            c->reload = true;
            break;
        case OPT_ORG:
            c->org = optarg;
            break;
        case OPT_SINCE:
            c->since = optarg;
            break;
        case OPT_KIND:
            c->kind = optarg;
            break;
        case OPT_DEAD:
            c->dead = true;
            break;
        case OPT_RETRY:
            c->retry = optarg;
            break;
        case OPT_SET: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "darkscope: --set expects KEY=VALUE, got \"%s\"\n", optarg);
                return -EINVAL;
            }
            *eq = '\0';
            rc = cli_set(c, optarg, eq + 1);
            break;
        }
        case OPT_DUMP:
            c->dump = true;
            break;
        case OPT_FROM:
            c->from = optarg;
            break;
        case OPT_TO:
            c->to = optarg;
            break;
        case OPT_TOP:
            c->top = optarg;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            exit(0);
        default:
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
    }
    for (int i = optind; i < argc && c->positional_n < 8; i++)
        c->positional[c->positional_n++] = argv[i];
    return 0;
}

/* Installed by `meson install` and run from DS_BIN_DIR, darkscope finds the page, the message
 * templates and the bogon list under DS_DATA_DIR; run from the build tree, each module uses the
 * source tree's (compiled in). Keys the configuration sets win either way. */
static int installed_data(struct ds_config *cfg, char *err, size_t errlen)
{
    static const struct {
        const char *key, *path;
    } data[] = {
        {"web.root", DS_DATA_DIR "/web"},
        {"notify.templates", DS_DATA_DIR "/templates"},
        {"aggregate.bogons", DS_DATA_DIR "/bogons.txt"},
    };
    const char *now[] = {cfg->web_root, cfg->notify_templates, cfg->agg_bogons};
    char exe[PATH_MAX], bindir[PATH_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0)
        return 0;
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (!slash || !realpath(DS_BIN_DIR, bindir))
        return 0;
    *slash = '\0';
    if (strcmp(exe, bindir) != 0)
        return 0;
    for (size_t i = 0; i < DS_ARRAY_LEN(data); i++) {
        if ((!now[i] || !*now[i]) &&
            ds_config_set(cfg, data[i].key, data[i].path, 0, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

/* Loads the file, applies the overrides (a list key given on the command line replaces the
 * file's list; repeating the flag appends) and finishes. Exit status 2 on any error. */
static int load_config(struct cli *c, struct ds_config *cfg)
{
    char err[1024];
    const char *seen[256];
    unsigned n_seen = 0;

    if (c->config && ds_config_load(cfg, c->config, err, sizeof(err)) < 0)
        goto bad;
    for (unsigned i = 0; i < c->n_set; i++) {
        unsigned flags = 0;
        for (unsigned k = 0; k < n_seen; k++) {
            if (strcmp(seen[k], c->set[i].key) == 0)
                flags = DS_CONFIG_APPEND;
        }
        if (!flags && n_seen < DS_ARRAY_LEN(seen))
            seen[n_seen++] = c->set[i].key;
        if (ds_config_set(cfg, c->set[i].key, c->set[i].value, flags, err, sizeof(err)) < 0)
            goto bad;
    }
    if (installed_data(cfg, err, sizeof(err)) < 0 || ds_config_finish(cfg, err, sizeof(err)) < 0)
        goto bad;
    enum ds_log_level level;
    if (ds_log_level_parse(cfg->log_level, &level) == 0)
        ds_log_level_set(level);
    return 0;
bad:
    fprintf(stderr, "darkscope: %s\n", err);
    return -EINVAL;
}

static void cli_free(struct cli *c)
{
    for (unsigned i = 0; i < c->n_set; i++)
        free(c->set[i].value);
}

static int run_capture(struct ds_config *cfg)
{
    char err[1024];
    struct sigaction sa = {0};
    int status;

    if (cap_capture_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope: %s\n", err);
        return EXIT_USAGE;
    }
    running = cap_capture_new(cfg, err, sizeof(err));
    if (!running) {
        fprintf(stderr, "darkscope: %s\n", err);
        return 1;
    }
    if (cap_capture_drop_privileges(running, err, sizeof(err)) < 0) {
        fprintf(stderr, "darkscope: %s\n", err);
        cap_capture_free(running);
        return 1;
    }
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    status = cap_capture_run(running);
    cap_capture_free(running);
    running = NULL;
    return status;
}

int main(int argc, char **argv)
{
    struct ds_config cfg;
    struct cli cli = {0};
    const char *cmd;
    int status = 0;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("darkscope %s\n", DS_VERSION);
        return 0;
    }
    ds_config_init(&cfg);
    if (strcmp(cmd, "config-doc") == 0) {
        ds_config_doc(stdout);
        ds_config_fini(&cfg);
        return 0;
    }
    if (parse_cli(argc - 1, argv + 1, &cli) < 0) {
        usage(stderr);
        status = EXIT_USAGE;
        goto out;
    }
    if (strcmp(cmd, "check-config") == 0) {
        if (!cli.config && cli.positional_n == 1)
            cli.config = cli.positional[0];
        if (!cli.config) {
            fprintf(stderr, "usage: darkscope check-config FILE\n");
            status = EXIT_USAGE;
            goto out;
        }
        if (load_config(&cli, &cfg) < 0) {
            status = EXIT_USAGE;
            goto out;
        }
        printf("%s: ok\n", cli.config);
        goto out;
    }
    if (load_config(&cli, &cfg) < 0) {
        status = EXIT_USAGE;
        goto out;
    }
    if (cli.dump) {
        ds_config_dump(&cfg, stdout);
        goto out;
    }
    if (strcmp(cmd, "capture") == 0) {
        if (cli.positional_n) {
            fprintf(stderr, "darkscope capture: unexpected argument \"%s\"\n", cli.positional[0]);
            status = EXIT_USAGE;
            goto out;
        }
        status = run_capture(&cfg);
    } else if (strcmp(cmd, "serve") == 0) {
        if (cli.positional_n) {
            fprintf(stderr, "darkscope serve: unexpected argument \"%s\"\n", cli.positional[0]);
            status = EXIT_USAGE;
            goto out;
        }
        status = web_serve(&cfg, DS_WEB_ROOT);
    } else if (strcmp(cmd, "aggregate") == 0) {
        if (cli.reload) {
            char err[512];
            if (agg_reload_signal(&cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "darkscope aggregate --reload: %s\n", err);
                status = 1;
            }
            goto out;
        }
        /* darkscope is linked with jemalloc (meson.build) except under the sanitizers; with
         * glibc's malloc, no fast bins: a bucket's records are tens of thousands of small JSON
         * values freed together, and each large Redis reply then made glibc consolidate the fast
         * bins again — a third of a bucket's CPU time in bench/aggregate, halved without them */
        mallopt(M_MXFAST, 0);
        status = agg_run(&cfg, cli.once);
    } else if (strcmp(cmd, "notify") == 0) {
        if (cli.dead)
            status = alert_notify_dead_letters(&cfg);
        else if (cli.retry)
            status = alert_notify_retry(&cfg, cli.retry);
        else
            status = alert_notify_run(&cfg, cli.once);
    } else if (strcmp(cmd, "run") == 0) {
        if (cli.positional_n || cli.once || cli.reload) {
            fprintf(stderr, "darkscope run: takes the options of the roles, nothing else\n");
            status = EXIT_USAGE;
            goto out;
        }
        status = main_run(argc, argv, &cfg);
    } else if (strcmp(cmd, "subscribers") == 0) {
        status = main_subscribers(cli.positional_n, cli.positional, &cfg);
    } else if (strcmp(cmd, "query") == 0) {
        char *args[24];
        int n = 0;
        for (int i = 0; i < cli.positional_n && n < 12; i++)
            args[n++] = cli.positional[i];
        if (cli.from) {
            args[n++] = "--from";
            args[n++] = (char *)cli.from;
        }
        if (cli.to) {
            args[n++] = "--to";
            args[n++] = (char *)cli.to;
        }
        if (cli.sensor) {
            args[n++] = "--sensor";
            args[n++] = (char *)cli.sensor;
        }
        if (cli.top) {
            args[n++] = "--top";
            args[n++] = (char *)cli.top;
        }
        if (cli.org) {
            args[n++] = "--org";
            args[n++] = (char *)cli.org;
        }
        if (cli.since) {
            args[n++] = "--since";
            args[n++] = (char *)cli.since;
        }
        if (cli.kind) {
            args[n++] = "--kind";
            args[n++] = (char *)cli.kind;
        }
        status = main_query(n, args, &cfg);
    } else {
        fprintf(stderr, "darkscope: unknown command \"%s\"\n", cmd);
        usage(stderr);
        status = EXIT_USAGE;
    }
out:
    cli_free(&cli);
    ds_config_fini(&cfg);
    return status;
}
