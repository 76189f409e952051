/* core/buf.c: bounded buffers, and JSON strings written by ds_buf_add_json_str read back by
 * Jansson as the same bytes. */
#include "core/core.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

static void roundtrip(const char *s)
{
    struct ds_buf b;
    json_error_t e;
    json_t *j;

    ds_buf_init(&b, 1 << 16);
    assert_int_equal(ds_buf_add_json_str(&b, s), 0);
    j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("%s: %s", b.p, e.text);
    assert_string_equal(json_string_value(j), s);
    json_decref(j);
    ds_buf_fini(&b);
}

static void test_json_str(void **state)
{
    char every[128];
    struct ds_buf b;

    (void)state;
    for (int c = 1; c < 128; c++)
        every[c - 1] = (char)c;
    every[127] = '\0';
    roundtrip(every); /* every ASCII byte, control characters included */
    roundtrip("");
    roundtrip("東京大学 \"SOC\"\\");
    ds_buf_init(&b, 64);
    ds_buf_add_json_str(&b, "a\"b\n\x01");
    assert_string_equal(b.p, "\"a\\\"b\\n\\u0001\"");
    ds_buf_fini(&b);
}

static void test_bound(void **state)
{
    struct ds_buf b;

    (void)state;
    ds_buf_init(&b, 8);
    assert_int_equal(ds_buf_adds(&b, "1234567"), 0);
    assert_int_equal(ds_buf_addc(&b, 'x'), -ENOSPC); /* the NUL must fit too */
    assert_true(ds_buf_failed(&b));
    assert_int_not_equal(ds_buf_add_json_str(&b, "y"), 0); /* sticky */
    ds_buf_reset(&b);
    assert_false(ds_buf_failed(&b));
    assert_int_equal(ds_buf_add_i64(&b, -42), 0);
    assert_string_equal(b.p, "-42");
    ds_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
