/* See redis_server.h. */
#include "tests/unit/testlib/redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/ds-redis-test-XXXXXX";
static char path[300];
static pid_t server = -1;

int test_redis_start(char *sock, size_t len)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/redis.sock", dir);
    snprintf(sock, len, "%s", path);
    server = fork();
    if (server == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", path, "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 25 * 1000000L};
        redisContext *ctx = redisConnectUnix(path);
        int ok = ctx && !ctx->err;
        if (ctx)
            redisFree(ctx);
        if (ok)
            return 0;
        nanosleep(&ts, NULL);
    }
    return -1;
}

void test_redis_stop(void)
{
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    unlink(path);
    rmdir(dir);
}
