/* Fuzz target: the configuration loader (core/config.c and the key table) — any JSON text loads
 * or is refused with a one-line error, never crashes or leaks; and what loads and finishes dumps
 * (--dump-config) to a configuration that loads back to the same dump. */
#include "core/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct ds_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (!f)
        abort();
    ds_config_dump(cfg, f);
    if (fclose(f) != 0)
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ds_config cfg, back;
    char err[512] = "", *first = NULL, *second = NULL;
    size_t n1, n2;

    ds_config_init(&cfg);
    if (ds_config_load_text(&cfg, (const char *)data, size, "fuzz.json", err, sizeof(err)) < 0) {
        if (strncmp(err, "fuzz.json", 9) != 0)
            abort(); /* a refusal names the file */
        goto out;
    }
    if (ds_config_finish(&cfg, err, sizeof(err)) < 0)
        goto out;
    first = dump(&cfg, &n1);
    ds_config_init(&back);
    if (ds_config_load_text(&back, first, n1, "dump", err, sizeof(err)) < 0 ||
        ds_config_finish(&back, err, sizeof(err)) < 0) {
        fprintf(stderr, "the dump does not load back: %s\n%s", err, first);
        abort();
    }
    second = dump(&back, &n2);
    if (n1 != n2 || memcmp(first, second, n1) != 0) {
        fprintf(stderr, "the dump changes when loaded back:\n%s\n%s", first, second);
        abort();
    }
    ds_config_fini(&back);
out:
    ds_config_fini(&cfg);
    free(first);
    free(second);
    return 0;
}
