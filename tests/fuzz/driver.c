/* A stand-alone driver for the fuzz targets when libFuzzer is not at hand (gcc, CI): every seed
 * given on the command line, then ITERATIONS deterministic mutations of them (bit flips, byte
 * sets, insertions, deletions, splices), each fed to LLVMFuzzerTestOneInput in a heap block of
 * exactly its size, as libFuzzer does, so that ASan sees a read past the end — under the
 * sanitizers in CI. With clang, link the same target with -fsanitize=fuzzer instead
 * (-Dfuzzing=true, tests/fuzz/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ITERATIONS 20000
#define MAX_INPUT  4096

static uint64_t rng = 0x853c49e6748fea9bULL;

static void run(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);

    if (!copy)
        abort();
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    static uint8_t seeds[64][MAX_INPUT], buf[MAX_INPUT];
    size_t lens[64];
    int n = 0;

    /* every file runs once; the first 64 are also the seeds of the mutations */
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        size_t len;
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        len = fread(buf, 1, MAX_INPUT, f);
        fclose(f);
        run(buf, len);
        if (n < 64) {
            memcpy(seeds[n], buf, len);
            lens[n++] = len;
        }
    }
    if (n == 0) {
        lens[0] = 0;
        n = 1;
    }
    for (int it = 0; it < ITERATIONS; it++) {
        int s = (int)(next() % (uint64_t)n);
        size_t len = lens[s];
        memcpy(buf, seeds[s], len);
        for (int m = 0, muts = 1 + (int)(next() % 8); m < muts; m++) {
            size_t pos = len ? (size_t)(next() % len) : 0;
            switch (next() % 5) {
            case 0:
                if (len)
                    buf[pos] ^= (uint8_t)(1u << (next() % 8));
                break;
            case 1:
                if (len)
                    buf[pos] = (uint8_t)next();
                break;
            case 2:
                if (len < MAX_INPUT) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = "{}[]\":,#^/ \n0a."[next() % 16];
                    len++;
                }
                break;
            case 3:
                if (len) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            default: {
                int o = (int)(next() % (uint64_t)n);
                if (lens[o]) {
                    size_t from = (size_t)(next() % lens[o]);
                    size_t k = (size_t)(next() % 64);
                    if (k > lens[o] - from)
                        k = lens[o] - from;
                    if (pos + k > MAX_INPUT)
                        k = MAX_INPUT - pos;
                    memcpy(buf + pos, seeds[o] + from, k);
                    if (pos + k > len)
                        len = pos + k;
                }
            }
            }
        }
        run(buf, len);
    }
    printf("%d inputs\n", ITERATIONS + argc - 1);
    return 0;
}
