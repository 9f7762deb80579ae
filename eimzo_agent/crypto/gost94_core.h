/*
 * GOST R 34.11-94 with the CryptoPro S-box and zero IV (= O'zDSt 1106:2009) in plain C, no Python and no
 * external libraries. Two builds use it: the CPython extension _gost94 (_gost94.c), and a plain shared library
 * (gost94.dll on Windows, cross-compiled with mingw-w64) that eimzo_agent/crypto/gost94_clib.py loads with
 * ctypes where no extension can be built. The exported functions are that library's ABI: keep them stable.
 */
#ifndef EIMZO_GOST94_CORE_H
#define EIMZO_GOST94_CORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(GOST94_BUILD_DLL)
#define GOST94_API __declspec(dllexport)
#else
#define GOST94_API
#endif

typedef struct {
    uint64_t h[4];        /* chaining value, zero IV */
    uint64_t sigma[4];    /* sum of the message blocks mod 2^256 */
    uint64_t length;      /* message bytes so far (the bit length is derived at the end) */
    unsigned char buf[32];
    size_t buflen;
} gost94_ctx;

/* Builds the round tables; call once before any hashing (idempotent, not thread-safe on its first call). */
GOST94_API void gost94_prepare(void);
/* sizeof(gost94_ctx), so a caller without this header (ctypes) can allocate one. */
GOST94_API size_t gost94_ctx_size(void);
GOST94_API void gost94_init(gost94_ctx *ctx);
GOST94_API void gost94_update(gost94_ctx *ctx, const unsigned char *data, size_t len);
/* The digest of everything so far; ctx is not changed, so hashing can go on (like hashlib's digest()). */
GOST94_API void gost94_final(const gost94_ctx *ctx, unsigned char out[32]);
/* One-shot digest of a buffer. */
GOST94_API void gost94_digest(const unsigned char *data, size_t len, unsigned char out[32]);

#endif
