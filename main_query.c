/* `darkscope query`: summaries and source records as JSON on stdout. */
#include "core/core.h"
#include "redis/redis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main_query(int argc, char **argv, struct ds_config *cfg);

static int parse_time(const char *what, const char *s, int64_t *out)
{
    ds_time_ns t;

    if (ds_time_parse(s, &t) < 0) {
        fprintf(stderr,
                "darkscope query: %s: expected RFC 3339 UTC like 2026-01-01T00:00:00Z, got "
                "\"%s\"\n",
                what, s);
        return -EINVAL;
    }
    *out = t / DS_NS_PER_SEC;
    return 0;
}

int main_query(int argc, char **argv, struct ds_config *cfg)
{
    const char *what = argc > 0 ? argv[0] : "";
    const char *from_s = NULL, *to_s = NULL, *ip = NULL;
    int64_t from = 0, to = 253402300799LL;
    long top = 10;
    char err[1024];
    struct rds_conn *conn;
    json_t *out = NULL;
    const char *sensor = NULL, *org = NULL, *kind = NULL, *since_s = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from_s = argv[++i];
        else if (strcmp(argv[i], "--sensor") == 0 && i + 1 < argc)
            sensor = argv[++i];
        else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
            org = argv[++i];
        else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc)
            kind = argv[++i];
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since_s = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to_s = argv[++i];
        else if (strcmp(argv[i], "--top") == 0 && i + 1 < argc) {
            char *end;
            top = strtol(argv[++i], &end, 10);
            if (*end || top < 1 || top > 10000) {
                fprintf(stderr, "darkscope query: --top: expected 1 to 10000\n");
                return 2;
            }
        } else if (!ip)
            ip = argv[i];
        else {
            fprintf(stderr, "darkscope query: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    int64_t since = 0;
    if (since_s && parse_time("--since", since_s, &since) < 0)
        return 2;
    if (kind && strcmp(kind, "infected") != 0 && strcmp(kind, "internal") != 0 &&
        strcmp(kind, "ddos_victim") != 0 && strcmp(kind, "early_warning") != 0) {
        fprintf(stderr,
                "darkscope query alerts: --kind: expected infected, internal, ddos_victim "
                "or early_warning, got \"%s\"\n",
                kind);
        return 2;
    }
    if ((from_s && parse_time("--from", from_s, &from) < 0) ||
        (to_s && parse_time("--to", to_s, &to) < 0))
        return 2;
    if (strcmp(what, "summary") == 0 && (!from_s || !to_s)) {
        fprintf(stderr, "usage: darkscope query summary --from T --to T [--sensor S] [--top N]\n");
        return 2;
    }
    struct ds_user user;
    bool as_user = geteuid() == 0 && ds_user_resolve(cfg->user, &user, err, sizeof(err)) == 0;
    conn = rds_conn_new(cfg->redis_url, cfg->state_dir, as_user ? &user : NULL, err, sizeof(err));
    if (!conn) {
        fprintf(stderr, "darkscope query: %s\n", err);
        return 2;
    }
    if (rds_conn_ensure(conn) < 0) {
        fprintf(stderr, "darkscope query: cannot reach Redis %s: %s\n", rds_conn_describe(conn),
                rds_conn_error(conn));
        rds_conn_free(conn);
        return 3;
    }
    if (strcmp(what, "summary") == 0) {
        out = rds_query_summary(conn, from, to, sensor, (unsigned)top, err, sizeof(err));
    } else if (strcmp(what, "alerts") == 0 && !ip) {
        out = rds_query_alerts(conn, org, since, kind, 1000000, err, sizeof(err));
    } else if (strcmp(what, "source") == 0 && ip) {
        struct ds_addr a;
        if (ds_addr_parse(ip, &a) < 0) {
            fprintf(stderr, "darkscope query source: expected an IPv4/IPv6 address, got \"%s\"\n",
                    ip);
            rds_conn_free(conn);
            return 2;
        }
        out = rds_query_source(conn, &a, from, to, sensor, err, sizeof(err));
    } else {
        fprintf(stderr, "usage: darkscope query summary|source|alerts ...\n");
        rds_conn_free(conn);
        return 2;
    }
    rds_conn_free(conn);
    if (!out) {
        fprintf(stderr, "darkscope query: %s\n", err);
        return 1;
    }
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
    return 0;
}
