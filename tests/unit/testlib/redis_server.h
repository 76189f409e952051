/* A private redis-server for unit tests: started on a unix socket in a new temporary directory,
 * stopped and removed afterwards. One per test program. */
#ifndef TEST_REDIS_SERVER_H
#define TEST_REDIS_SERVER_H

#include <stddef.h>

/* Starts the server and waits until it answers. Writes the socket path into sock. 0 or -1. */
int test_redis_start(char *sock, size_t len);
void test_redis_stop(void);

#endif
