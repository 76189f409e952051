/* Fuzz target: message templates (alerts/template.c) against fixed data — any template text
 * renders or is refused with an error, never crashes, never writes past its buffer. */
#include "alerts/alerts.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    char *tpl = malloc(size + 1), err[200] = "";
    struct ds_buf out;

    if (!ctx)
        ctx = json_loads("{\"org_name\":\"City A\",\"n\":3,\"ok\":true,\"o\":{\"k\":\"v\"},"
                         "\"alerts\":[{\"host\":\"1.2.3.4\",\"is_ddos\":true},{\"host\":\"::1\"}]}",
                         0, NULL);
    if (!tpl)
        return 0;
    memcpy(tpl, data, size);
    tpl[size] = '\0';
    ds_buf_init(&out, 1 << 16);
    if (alert_template_render(tpl, ctx, &out, err, sizeof(err)) < 0 && !err[0])
        abort(); /* a refusal always says why */
    ds_buf_fini(&out);
    free(tpl);
    return 0;
}
