/*
 * web — `darkscope serve`: the live attack map's server (docs/websocket-protocol.md).
 *
 * libwebsockets on a libuv loop serves the page (web/ and its npm libraries), the websocket
 * /live (events, stats and alerts fanned out from one Redis subscription through one shared
 * ring with a read position per client) and the REST API (answered by a query thread with its
 * own Redis connection, so a slow query never stalls the websockets).
 *
 * Threading: one service thread (the loop) plus the query thread; nothing else is shared.
 */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include "core/core.h"

/* Runs the server until SIGINT or SIGTERM. web_root: the page's directory when the
 * configuration leaves web.root empty. Returns an exit status: 0 after a signal, 2 for a bad
 * configuration (with the error printed), 1 when the listener cannot be opened. */
int web_serve(const struct ds_config *cfg, const char *web_root);

#endif
