/* The one table of configuration keys (see core_internal.h). docs/config.md is generated from it:
 * `darkscope config-doc > docs/config.md`; a test fails when the two differ. */
#include "core/core_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field) offsetof(struct ds_config, field)

static const char *check_sensor_name(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 64)
        return "a sensor name of 1 to 64 characters from A-Z a-z 0-9 . _ -";
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)v[i]) && v[i] != '.' && v[i] != '_' && v[i] != '-')
            return "a sensor name of 1 to 64 characters from A-Z a-z 0-9 . _ -";
    }
    return NULL;
}

static const char *check_redis_url(const char *v)
{
    if (*v == '\0' || strncmp(v, "redis://", 8) == 0 || (strncmp(v, "unix:", 5) == 0 && v[5]))
        return NULL;
    return "redis://HOST:PORT/DB, unix:/PATH, or empty for the embedded server";
}

static const char *check_speed(const char *v)
{
    char *end;

    if (strcmp(v, "max") == 0 || strcmp(v, "realtime") == 0)
        return NULL;
    if (v[0] == 'x' && v[1]) {
        double f = strtod(v + 1, &end);
        if (!*end && f >= 0.01 && f <= 1e6)
            return NULL;
    }
    return "max, realtime or xN (a speed-up factor from 0.01 to 1000000)";
}

static const char *check_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long port;

    if (!colon || colon == v)
        return "ADDR:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"";
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535 || end == colon + 1)
        return "ADDR:PORT with a port from 1 to 65535";
    return NULL;
}

static const char *check_tristate(const char *v)
{
    return strcmp(v, "auto") == 0 || strcmp(v, "true") == 0 || strcmp(v, "false") == 0
               ? NULL
               : "auto, true or false";
}

static const char *check_token(const char *v)
{
    const char *why = "NAME:SCOPE:SHA256 (scope viewer, soc or admin; 64 hex digits of the token's "
                      "SHA-256)";
    const char *a = strchr(v, ':'), *b = a ? strchr(a + 1, ':') : NULL;
    size_t scope_len;

    if (!a || !b || a == v || a - v > 64)
        return why;
    scope_len = (size_t)(b - a - 1);
    if (!((scope_len == 6 && strncmp(a + 1, "viewer", 6) == 0) ||
          (scope_len == 3 && strncmp(a + 1, "soc", 3) == 0) ||
          (scope_len == 5 && strncmp(a + 1, "admin", 5) == 0)))
        return why;
    if (strlen(b + 1) != 64)
        return why;
    for (const char *p = b + 1; *p; p++) {
        if (!isxdigit((unsigned char)*p))
            return why;
    }
    return NULL;
}

static const char *check_smtp_url(const char *v)
{
    return strncmp(v, "smtp://", 7) == 0 || strncmp(v, "smtps://", 8) == 0
               ? NULL
               : "smtp://HOST:PORT or smtps://HOST:PORT";
}

static const char *check_smtp_tls(const char *v)
{
    return strcmp(v, "try") == 0 || strcmp(v, "require") == 0 || strcmp(v, "off") == 0
               ? NULL
               : "try, require or off";
}

static const char *check_log_level(const char *v)
{
    enum ds_log_level l;

    return ds_log_level_parse(v, &l) == 0 ? NULL : "one of error, warn, info, debug";
}

const struct ds_cfg_key ds_cfg_keys[] = {
    {"redis", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "Where time-buckets, alerts and live events are kept."},
    {"redis.url", DS_CFG_STRING, OFF(redis_url), 0, 0, 0, 0, "", check_redis_url,
     "`redis://host:port/db` or `unix:/path/to/socket`. Empty: darkscope's own embedded redis-server on a unix socket in `state_dir`, started when not running (AOF everysec, noeviction)."},
    {"redis.flush_timeout", DS_CFG_DURATION, OFF(redis_flush_timeout), 0, 0, 1, 86400, "60", NULL,
     "How long capture keeps retrying finished buckets while Redis is unreachable before giving up at exit (exit status 3)."},
    {"redis.max_pending_buckets", DS_CFG_INT, OFF(redis_max_pending), 0, 0, 1, 100000, "120", NULL,
     "Finished buckets kept in memory while Redis is unreachable; older ones beyond this are dropped, counted and logged."},
    {"state_dir", DS_CFG_STRING, OFF(state_dir), 0, 0, 0, 0, NULL, NULL,
     "Directory for the embedded Redis (socket, AOF). Default `/var/lib/darkscope` as root, `$XDG_STATE_HOME/darkscope` or `~/.local/state/darkscope` otherwise."},
    {"darknet", DS_CFG_CIDRS, OFF(darknet), 0, 0, 0, 0, NULL, NULL,
     "IPv4/IPv6 prefixes that are the telescope. Packets to other destinations are `ignored` (`not_darknet`). Required for capture."},
    {"darknet_exclude", DS_CFG_CIDRS, OFF(darknet_exclude), 0, 0, 0, 0, NULL, NULL,
     "Live hosts or prefixes inside `darknet` whose traffic is never counted (`ignored`, `excluded`)."},
    {"sensor", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "This sensor."},
    {"sensor.name", DS_CFG_STRING, OFF(sensor_name), 0, 0, 0, 0, NULL, check_sensor_name,
     "Name used in Redis keys and on the map. Default: the host name."},
    {"sensor.location", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "Where the sensor is drawn on the map."},
    {"sensor.location.latitude", DS_CFG_DOUBLE, OFF(sensor_lat), 0, 0, -90, 90, NULL, NULL,
     "Degrees north."},
    {"sensor.location.longitude", DS_CFG_DOUBLE, OFF(sensor_lon), 0, 0, -180, 180, NULL, NULL,
     "Degrees east."},
    {"sensor.location.label", DS_CFG_STRING, OFF(sensor_label), 0, 0, 0, 0, "", NULL,
     "Label shown on the map."},
    {"sources", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "What capture reads; one thread per interface or file."},
    {"sources.interfaces", DS_CFG_STRINGS, OFF(interfaces), OFF(n_interfaces), DS_CONFIG_MAX_LIST,
     0, 0, NULL, NULL, "Live interfaces (`--interface IF`)."},
    {"sources.files", DS_CFG_STRINGS, OFF(files), OFF(n_files), DS_CONFIG_MAX_LIST, 0, 0, NULL,
     NULL, "pcap/pcapng files (`--read FILE`); capture exits after the last one."},
    {"sources.speed", DS_CFG_STRING, OFF(speed), 0, 0, 0, 0, "max", check_speed,
     "Replay speed for files: `max`, `realtime` or `xN`."},
    {"capture", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "Packet capture settings."},
    {"capture.bpf", DS_CFG_STRING, OFF(bpf), 0, 0, 0, 0, "", NULL,
     "BPF filter applied to every source (empty: none)."},
    {"capture.promiscuous", DS_CFG_BOOL, OFF(promiscuous), 0, 0, 0, 0, "true", NULL,
     "Open interfaces in promiscuous mode."},
    {"capture.buffer_mb", DS_CFG_INT, OFF(buffer_mb), 0, 0, 1, 4096, "64", NULL,
     "Kernel capture buffer per interface, MiB."},
    {"capture.snaplen", DS_CFG_INT, OFF(snaplen), 0, 0, 64, 262144, "256", NULL,
     "Bytes captured per packet on interfaces (headers are enough; `bytes` counts IP total lengths)."},
    {"capture.immediate", DS_CFG_BOOL, OFF(immediate), 0, 0, 0, 0, "true", NULL,
     "Deliver packets without kernel batching delay (live map latency)."},
    {"capture.lateness", DS_CFG_DURATION, OFF(lateness_seconds), 0, 0, 0, 3600, "10", NULL,
     "How long past its end a bucket stays open for late packets (packet time for files, wall clock for interfaces)."},
    {"capture.max_sources", DS_CFG_INT, OFF(max_sources), 0, 0, 1000, 100000000, "4000000", NULL,
     "Distinct sources kept per bucket (and as many backscatter victims); packets of further sources still count in every total, and in `sources_dropped`."},
    {"capture.ports_per_source", DS_CFG_INT, OFF(source_ports_max), 0, 0, 1, 8, "8", NULL,
     "Destination ports (the busiest, with counts) kept in each source's record per bucket."},
    {"capture.flush_threads", DS_CFG_INT, OFF(flush_threads), 0, 0, 0, 64, "0", NULL,
     "Threads that look up GeoIP and encode a closed bucket's source records while it is written "
     "to Redis. 0: one per CPU, less the live interfaces' capture threads (they keep their cores), "
     "at least 1."},
    {"capture.threads_per_file", DS_CFG_INT, OFF(threads_per_file), 0, 0, 0, 16, "0", NULL,
     "Threads aggregating the packets of each file read (`--read`), each keeping the sources "
     "whose address hash falls to it; their parts of a bucket are merged before it is written. "
     "0: the CPUs divided among the files, at least 1."},
    {"capture.threads_per_interface", DS_CFG_INT, OFF(threads_per_interface), 0, 0, 1, 16, "1",
     NULL,
     "Threads aggregating the packets of each live interface, as `capture.threads_per_file`. "
     "1: the reading thread alone, leaving the other cores to the flush of the previous bucket; "
     "more on a sensor whose one thread cannot keep up (kernel drops in the sensor record)."},
    {"bucket_seconds", DS_CFG_INT, OFF(bucket_seconds), 0, 0, 10, 3600, "60", NULL,
     "Length of a time-bucket; must divide 3600 (hourly roll-ups)."},
    {"retention", DS_CFG_DURATION, OFF(retention), 0, 0, 60, 366 * 86400.0, "2d", NULL,
     "How long bucket data (totals, ports, countries, per-source records) is kept, counted from when it is written."},
    {"rollup_retention", DS_CFG_DURATION, OFF(rollup_retention), 0, 0, 3600, 3660 * 86400.0, "90d",
     NULL, "How long hourly roll-ups are kept."},
    {"geoip", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "GeoIP databases (libmaxminddb)."},
    {"geoip.city", DS_CFG_STRINGS, OFF(geoip_city), OFF(n_geoip_city), 4, 0, 0, NULL, NULL,
     "City databases: MaxMind GeoIP2/GeoLite2-City or the flat DB-IP / ip-location-db shape (a list, e.g. the IPv4 and IPv6 files)."},
    {"geoip.asn", DS_CFG_STRING, OFF(geoip_asn), 0, 0, 0, 0, "", NULL,
     "ASN database (GeoLite2-ASN shape)."},
    {"live", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "Sampled live events for the map."},
    {"live.max_events_per_second", DS_CFG_INT, OFF(live_max_eps), 0, 0, 0, 100000, "200", NULL,
     "Upper bound of sampled events published per second per sensor (0: none); exact counters are published beside them."},
    {"web", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "`darkscope serve`: the live map, its websocket and the REST API (docs/websocket-protocol.md)."},
    {"web.listen", DS_CFG_STRING, OFF(web_listen), 0, 0, 0, 0, "127.0.0.1:8080", check_listen,
     "Address and port to listen on (`--listen`); `[::]:8080` or `0.0.0.0:8080` for every interface."},
    {"web.root", DS_CFG_STRING, OFF(web_root), 0, 0, 0, 0, "", NULL,
     "The web directory: its `page/` is served at `/` and its `node_modules/` (the npm libraries of web/package.json) at `/vendor/`. Empty: the web/ directory darkscope was built from."},
    {"web.tls", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "HTTPS and wss://, when both are set."},
    {"web.tls.cert", DS_CFG_STRING, OFF(web_tls_cert), 0, 0, 0, 0, "", NULL,
     "PEM certificate (chain) file."},
    {"web.tls.key", DS_CFG_STRING, OFF(web_tls_key), 0, 0, 0, 0, "", NULL, "PEM private key file."},
    {"web.require_token", DS_CFG_STRING, OFF(web_require_token), 0, 0, 0, 0, "auto", check_tristate,
     "`auto`: every endpoint and /live need a bearer token unless the listener is loopback; `true`: always; `false`: never (a public display)."},
    {"web.tokens", DS_CFG_STRINGS, OFF(web_tokens), OFF(n_web_tokens), DS_CONFIG_MAX_LIST, 0, 0,
     NULL, check_token,
     "Access tokens as `NAME:SCOPE:SHA256` — scope `viewer` (map and API), `soc` (also alerts) or `admin`; the token itself is never stored: `printf %s TOKEN | sha256sum`."},
    {"web.mask_sources", DS_CFG_BOOL, OFF(web_mask_sources), 0, 0, 0, 0, "false", NULL,
     "Truncate source addresses to /24 (IPv4) and /48 (IPv6) before anything leaves the server (public displays)."},
    {"web.max_clients", DS_CFG_INT, OFF(web_max_clients), 0, 0, 1, 100000, "2000", NULL,
     "Websocket clients at once; further upgrades get 503."},
    {"web.max_clients_per_address", DS_CFG_INT, OFF(web_max_clients_per_address), 0, 0, 1, 100000,
     "32", NULL, "Websocket clients at once from one address; further upgrades get 503."},
    {"web.max_http_connections_per_address", DS_CFG_INT, OFF(web_max_http_per_address), 0, 0, 1,
     100000, "32", NULL,
     "HTTP connections at once from one client address (an IPv6 client's /64): requests, idle keep-alive connections and websocket handshakes not yet answered; a further connection is closed as soon as it is accepted. Websocket clients count against `web.max_clients_per_address` instead. Behind a reverse proxy every connection comes from the proxy's address."},
    {"web.header_timeout", DS_CFG_DURATION, OFF(web_header_timeout), 0, 0, 1, 300, "10", NULL,
     "Time a connection has, from accept (or from the first byte of its next request), to send the complete request headers; a slower one is closed (slowloris)."},
    {"web.ring_events", DS_CFG_INT, OFF(web_ring_events), 0, 0, 256, 1048576, "8192", NULL,
     "Live events kept in the shared ring; a client further behind skips (and is told how many)."},
    {"web.stall_timeout", DS_CFG_DURATION, OFF(web_stall_timeout), 0, 0, 5, 3600, "60", NULL,
     "A websocket client that takes no frame for this long is closed."},
    {"web.audit_log", DS_CFG_STRING, OFF(web_audit_log), 0, 0, 0, 0, "", NULL,
     "File that records every alert and feed API access (token name, scope, endpoint, status, rows; never the token). Empty: `audit.log` in `state_dir`."},
    {"web.rate_limit", DS_CFG_INT, OFF(web_rate_limit), 0, 0, 1, 1000000, "600", NULL,
     "API requests per minute per token (per client address without a token); beyond it 429 with Retry-After. Bursts up to a sixth of it."},
    {"aggregate", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "`darkscope aggregate`: subscriber alerts and early warnings (docs/alerting.md)."},
    {"aggregate.subscribers", DS_CFG_STRING, OFF(agg_subscribers), 0, 0, 0, 0, "", NULL,
     "Subscriber file: organisations, their ranges and contacts, partners (`--subscribers`)."},
    {"aggregate.bogons", DS_CFG_STRING, OFF(agg_bogons), 0, 0, 0, 0, "", NULL,
     "File of bogon/reserved prefixes whose sources never raise an infected-host alert (one prefix per line, `#` comments). Empty: the list shipped in aggregator/bogons.txt."},
    {"aggregate.wait", DS_CFG_DURATION, OFF(agg_wait), 0, 0, 0, 86400, "120", NULL,
     "How long past a bucket's end the aggregator waits for every active sensor to write it before processing it anyway."},
    {"aggregate.infected_min_packets", DS_CFG_INT, OFF(agg_infected_min_packets), 0, 0, 1, 1e9, "1",
     NULL,
     "Infected host: scan-class packets from the host in one bucket (per-organisation `thresholds` override)."},
    {"aggregate.infected_min_darknet_addresses", DS_CFG_INT, OFF(agg_infected_min_dsts), 0, 0, 1,
     1e9, "1", NULL, "Infected host: distinct darknet addresses it hit in one bucket."},
    {"aggregate.ddos_min_packets", DS_CFG_INT, OFF(agg_ddos_min_packets), 0, 0, 1, 1e9, "25", NULL,
     "DDoS victim: backscatter packets of the attack (Corsaro3 dos plugin default)."},
    {"aggregate.ddos_min_seconds", DS_CFG_DURATION, OFF(agg_ddos_min_seconds), 0, 0, 0, 86400, "60",
     NULL, "DDoS victim: attack duration, first to last backscatter packet."},
    {"aggregate.ddos_min_window_packets", DS_CFG_INT, OFF(agg_ddos_min_window_packets), 0, 0, 1,
     1e9, "30", NULL,
     "DDoS victim: backscatter packets within one bucket (the 60 s window with 60 s buckets)."},
    {"aggregate.quiet", DS_CFG_DURATION, OFF(agg_quiet), 0, 0, 60, 30 * 86400.0, "1h", NULL,
     "An incident closes after this long without activity."},
    {"aggregate.renotify", DS_CFG_DURATION, OFF(agg_renotify), 0, 0, 60, 365 * 86400.0, "24h", NULL,
     "An open incident is alerted again after this long."},
    {"aggregate.early_warning", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "Sudden rises in distinct sources per destination port (docs/alerting.md)."},
    {"aggregate.early_warning.alpha", DS_CFG_DOUBLE, OFF(ew_alpha), 0, 0, 0.001, 1, "0.1", NULL,
     "EWMA weight of the newest bucket in a port's baseline."},
    {"aggregate.early_warning.ratio", DS_CFG_DOUBLE, OFF(ew_ratio), 0, 0, 1, 1000, "3", NULL,
     "A bucket's sources must reach this multiple of the baseline."},
    {"aggregate.early_warning.deviations", DS_CFG_DOUBLE, OFF(ew_deviations), 0, 0, 0, 1000, "6",
     NULL, "… and exceed the baseline by this many mean absolute deviations."},
    {"aggregate.early_warning.min_sources", DS_CFG_INT, OFF(ew_min_sources), 0, 0, 1, 1e9, "20",
     NULL, "… and be at least this many distinct sources."},
    {"aggregate.early_warning.warmup", DS_CFG_INT, OFF(ew_warmup), 0, 0, 1, 100000, "10", NULL,
     "Buckets of history a port needs before it can warn."},
    {"notify", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL,
     "`darkscope notify`: email digests of alerts to organisations (docs/notify.md)."},
    {"notify.smtp", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "The mail server (libcurl SMTP)."},
    {"notify.smtp.url", DS_CFG_STRING, OFF(notify_smtp_url), 0, 0, 0, 0, "smtp://127.0.0.1:25",
     check_smtp_url,
     "`smtp://host:port` (STARTTLS per `notify.smtp.tls`) or `smtps://host:port` (TLS from the start)."},
    {"notify.smtp.tls", DS_CFG_STRING, OFF(notify_smtp_tls), 0, 0, 0, 0, "try", check_smtp_tls,
     "STARTTLS on smtp://: `try` (when offered), `require` (refuse to send in clear) or `off`. "
     "With a user set, `try` means `require`: a password never travels in clear."},
    {"notify.smtp.user", DS_CFG_STRING, OFF(notify_smtp_user), 0, 0, 0, 0, "", NULL,
     "User name for SMTP authentication (empty: none)."},
    {"notify.smtp.password_file", DS_CFG_STRING, OFF(notify_smtp_password_file), 0, 0, 0, 0, "",
     NULL, "File holding the SMTP password (its first line); never logged."},
    {"notify.smtp.password_env", DS_CFG_STRING, OFF(notify_smtp_password_env), 0, 0, 0, 0, "", NULL,
     "Environment variable holding the SMTP password, when there is no password file."},
    {"notify.smtp.ca_file", DS_CFG_STRING, OFF(notify_smtp_ca_file), 0, 0, 0, 0, "", NULL,
     "PEM file of the CAs that may sign the mail server's certificate, for a private CA "
     "(empty: the system's). The server is always verified."},
    {"notify.from", DS_CFG_STRING, OFF(notify_from), 0, 0, 0, 0, "darkscope@localhost", NULL,
     "Sender address (From: and the SMTP envelope)."},
    {"notify.digest", DS_CFG_DURATION, OFF(notify_digest), 0, 0, 0, 86400, "5m", NULL,
     "An organisation's alerts are gathered for this long into one message."},
    {"notify.max_attempts", DS_CFG_INT, OFF(notify_max_attempts), 0, 0, 1, 1000, "12", NULL,
     "Delivery attempts before a message goes to the dead-letter stream."},
    {"notify.retry_max", DS_CFG_DURATION, OFF(notify_retry_max), 0, 0, 1, 86400, "30m", NULL,
     "Longest wait between attempts (the wait doubles from 10 s)."},
    {"notify.timeout", DS_CFG_DURATION, OFF(notify_timeout), 0, 0, 1, 3600, "60", NULL,
     "Connect and transfer time-out of one delivery."},
    {"notify.templates", DS_CFG_STRING, OFF(notify_templates), 0, 0, 0, 0, "", NULL,
     "Directory of the message templates (`en.txt`, `ja.txt`). Empty: those shipped in alerts/templates."},
    {"user", DS_CFG_STRING, OFF(user), 0, 0, 0, 0, "", NULL,
     "Unprivileged user capture switches to after opening its sources when started as root. Default: `darkscope` if it exists, else `nobody`."},
    {"log", DS_CFG_OBJECT, 0, 0, 0, 0, 0, NULL, NULL, "Logging."},
    {"log.level", DS_CFG_STRING, OFF(log_level), 0, 0, 0, 0, "info", check_log_level,
     "error, warn, info or debug."},
};

const size_t ds_cfg_nkeys = DS_ARRAY_LEN(ds_cfg_keys);
