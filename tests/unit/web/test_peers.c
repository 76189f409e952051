/* web/peers.c: connections per client address (web.max_http_connections_per_address). */
#include "web/web_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static const uint64_t KEY[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

static struct ds_addr addr(const char *text)
{
    struct ds_addr a;

    assert_int_equal(ds_addr_parse(text, &a), 0);
    return a;
}

static void test_limit_per_address(void **state)
{
    struct web_peers p;
    struct ds_addr a = addr("198.51.100.7"), b = addr("198.51.100.8");
    unsigned ids[3];

    (void)state;
    assert_int_equal(web_peers_init(&p, 3, KEY), 0);
    for (unsigned i = 0; i < 3; i++) {
        ids[i] = web_peers_admit(&p, &a);
        assert_int_not_equal(ids[i], 0);
    }
    assert_int_equal(web_peers_admit(&p, &a), 0); /* the fourth at once */
    assert_int_equal(p.refused, 1);
    assert_int_not_equal(web_peers_admit(&p, &b), 0); /* another address is not affected */
    assert_int_equal(p.open, 4);

    web_peers_release(&p, ids[1]);
    assert_int_equal(p.open, 3);
    assert_int_not_equal(web_peers_admit(&p, &a), 0); /* room again */
    assert_int_equal(web_peers_admit(&p, &a), 0);
    assert_int_equal(p.refused, 2);

    web_peers_release(&p, 0); /* nothing counted: nothing released */
    assert_int_equal(p.open, 4);
    web_peers_fini(&p);
    web_peers_fini(&p); /* twice is harmless */
}

static void test_ipv6_by_64(void **state)
{
    struct web_peers p;
    struct ds_addr a1 = addr("2001:db8:1:2::1"), a2 = addr("2001:db8:1:2:ffff::9"),
                   other = addr("2001:db8:1:3::1");
    unsigned id;

    (void)state;
    assert_int_equal(web_peers_init(&p, 2, KEY), 0);
    assert_int_not_equal(web_peers_admit(&p, &a1), 0);
    id = web_peers_admit(&p, &a2);
    assert_int_not_equal(id, 0);
    /* a host's addresses share its /64: the third from that /64 is refused */
    assert_int_equal(web_peers_admit(&p, &a1), 0);
    assert_int_not_equal(web_peers_admit(&p, &other), 0);
    web_peers_release(&p, id);
    assert_int_not_equal(web_peers_admit(&p, &a1), 0);
    web_peers_fini(&p);
}

static void test_release_never_underflows(void **state)
{
    struct web_peers p;
    struct ds_addr a = addr("203.0.113.1");
    unsigned id;

    (void)state;
    assert_int_equal(web_peers_init(&p, 1, KEY), 0);
    id = web_peers_admit(&p, &a);
    web_peers_release(&p, id);
    web_peers_release(&p, id);
    web_peers_release(&p, WEB_PEER_SLOTS + 1); /* not an id */
    assert_int_equal(p.open, 0);
    assert_int_not_equal(web_peers_admit(&p, &a), 0);
    assert_int_equal(web_peers_admit(&p, &a), 0);
    web_peers_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_per_address),
        cmocka_unit_test(test_ipv6_by_64),
        cmocka_unit_test(test_release_never_underflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
