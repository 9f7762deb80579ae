/* Times eimzo_agent/crypto/gost94_core.c as a compiler built it: bench/bench_gost94_builds.py compiles this file
 * with the core under the flags our packages use (and under Wine for the Windows DLL's compiler) and runs it.
 * Prints the best MB/s of PASSES one-shot digests of BYTES bytes, then the digest's first bytes (all builds must
 * agree). */
#include <stdio.h>
#include <stdlib.h>

#include "gost94_core.h"

#ifdef _WIN32
#include <windows.h>
static double
seconds(void)
{
    LARGE_INTEGER frequency, counter;
    QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&counter);
    return (double)counter.QuadPart / (double)frequency.QuadPart;
}
#else
#include <time.h>
static double
seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}
#endif

int
main(int argc, char **argv)
{
    size_t bytes = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
    int passes = argc > 2 ? atoi(argv[2]) : 5;
    unsigned char *data = malloc(bytes ? bytes : 1);
    unsigned char digest[32];
    double best = 1e30;
    if (data == NULL) return 1;
    for (size_t i = 0; i < bytes; i++) data[i] = (unsigned char)(i * 131 + 7);
    gost94_prepare();
    for (int pass = 0; pass < passes; pass++) {
        double start = seconds();
        gost94_digest(data, bytes, digest);
        double took = seconds() - start;
        if (took < best) best = took;
    }
    printf("%.1f ", (double)bytes / best / 1e6);
    for (int i = 0; i < 8; i++) printf("%02x", digest[i]);
    printf("\n");
    free(data);
    return 0;
}
