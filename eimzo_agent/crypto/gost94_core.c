/*
 * GOST R 34.11-94 with the CryptoPro S-box and zero IV (= O'zDSt 1106:2009), written from the standard; the
 * pure-Python module eimzo_agent/crypto/gost94.py documents the algorithm. See gost94_core.h for who uses this.
 */
#include "gost94_core.h"

#include <string.h>

/* id-GostR3411-94-CryptoProParamSet (RFC 4357): row i substitutes the i-th nibble, lowest first. */
static const uint8_t SBOX[8][16] = {
    {10, 4, 5, 6, 8, 1, 3, 7, 13, 12, 14, 0, 9, 2, 11, 15},
    {5, 15, 4, 0, 2, 13, 11, 9, 1, 7, 6, 3, 12, 14, 10, 8},
    {7, 15, 12, 14, 9, 4, 1, 0, 3, 11, 5, 2, 6, 10, 8, 13},
    {4, 10, 7, 12, 0, 15, 2, 8, 14, 1, 6, 5, 13, 11, 9, 3},
    {7, 6, 4, 11, 9, 12, 2, 10, 1, 8, 0, 14, 15, 13, 3, 5},
    {7, 6, 2, 4, 13, 9, 15, 0, 10, 1, 5, 11, 8, 14, 12, 3},
    {13, 14, 4, 1, 7, 0, 5, 10, 3, 12, 8, 15, 6, 2, 9, 11},
    {1, 3, 10, 9, 5, 11, 4, 15, 8, 6, 7, 14, 13, 0, 2, 12},
};

/* Key-schedule constant C3 as little-endian 64-bit words (C2 = C4 = 0). */
static const uint64_t C3[4] = {
    0xff00ff00ff00ff00ULL, 0x00ff00ff00ff00ffULL, 0xff0000ff00ffff00ULL, 0xff00ffff000000ffULL,
};

/* T[i][b]: two S-boxes applied to byte i of the round input, placed and rotated left by 11. The round function
 * is then four lookups XORed together, since substitution is nibble-wise and rotation is linear. */
static uint32_t T[4][256];

static int tables_ready;

/* Force inlining of the hash's step functions (see encrypt4). */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define HOT static __forceinline
#else
#define HOT static inline
#endif

void
gost94_prepare(void)
{
    if (tables_ready) return;
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 256; b++) {
            uint32_t v = (uint32_t)(SBOX[2 * i][b & 15] | SBOX[2 * i + 1][b >> 4] << 4) << (8 * i);
            T[i][b] = (v << 11) | (v >> 21);
        }
    }
    tables_ready = 1;
}

#define F(x) (T[0][(x) & 0xff] ^ T[1][((x) >> 8) & 0xff] ^ T[2][((x) >> 16) & 0xff] ^ T[3][(x) >> 24])

/* GOST 28147-89 encryption of the four blocks of a step, each under its own key (N1 = low word). Rounds alternate
 * the half they update instead of swapping; after 32 rounds the halves come out exchanged, which is the cipher's
 * output order.
 *
 * Why four at once: one encryption is a chain of 32 dependent rounds (add, four table loads, XORs), so a single
 * one leaves the CPU waiting on each round's loads; the step's four encryptions are independent, and interleaving
 * them lets their loads overlap. This is most of the hash's speed (docs/performance.md). */
#define ROUND4(d, s, j) \
    do { \
        d##0 ^= F(s##0 + k[0][j]); d##1 ^= F(s##1 + k[1][j]); \
        d##2 ^= F(s##2 + k[2][j]); d##3 ^= F(s##3 + k[3][j]); \
    } while (0)

#define EIGHT_ROUNDS(j0, j1, j2, j3, j4, j5, j6, j7) \
    do { \
        ROUND4(b, a, j0); ROUND4(a, b, j1); ROUND4(b, a, j2); ROUND4(a, b, j3); \
        ROUND4(b, a, j4); ROUND4(a, b, j5); ROUND4(b, a, j6); ROUND4(a, b, j7); \
    } while (0)

/* The halves are eight scalars and the rounds are written out, not arrays and loops: at -O2 (Debian's and
 * Ubuntu's flags for Python extensions, hence our .deb) gcc 12 kept the arrays in memory and hashed at 60 % of
 * its -O3 speed. Every step function below is inlined into `compress` for the same reason. */
HOT void
encrypt4(const uint32_t k[4][8], const uint64_t in[4], uint64_t out[4])
{
    uint32_t a0 = (uint32_t)in[0], a1 = (uint32_t)in[1], a2 = (uint32_t)in[2], a3 = (uint32_t)in[3];
    uint32_t b0 = (uint32_t)(in[0] >> 32), b1 = (uint32_t)(in[1] >> 32);
    uint32_t b2 = (uint32_t)(in[2] >> 32), b3 = (uint32_t)(in[3] >> 32);
    EIGHT_ROUNDS(0, 1, 2, 3, 4, 5, 6, 7);
    EIGHT_ROUNDS(0, 1, 2, 3, 4, 5, 6, 7);
    EIGHT_ROUNDS(0, 1, 2, 3, 4, 5, 6, 7);
    EIGHT_ROUNDS(7, 6, 5, 4, 3, 2, 1, 0);
    out[0] = (uint64_t)b0 | (uint64_t)a0 << 32;
    out[1] = (uint64_t)b1 | (uint64_t)a1 << 32;
    out[2] = (uint64_t)b2 | (uint64_t)a2 << 32;
    out[3] = (uint64_t)b3 | (uint64_t)a3 << 32;
}

/* Transformation P: subkey j takes byte j of each 64-bit word of w. */
HOT void
subkeys(const uint64_t w[4], uint32_t k[8])
{
    for (int j = 0; j < 8; j++) {
        int s = 8 * j;
        k[j] = (uint32_t)((w[0] >> s) & 0xff) | (uint32_t)((w[1] >> s) & 0xff) << 8
             | (uint32_t)((w[2] >> s) & 0xff) << 16 | (uint32_t)((w[3] >> s) & 0xff) << 24;
    }
}

/* Transformation A: words (y4, y3, y2, y1) -> (y1 ^ y2, y4, y3, y2). */
HOT void
transform_a(uint64_t y[4])
{
    uint64_t t = y[0] ^ y[1];
    y[0] = y[1]; y[1] = y[2]; y[2] = y[3]; y[3] = t;
}

/* The mixing function psi on 16 16-bit words kept in four 64-bit words (word i = lane i % 4 of x[i / 4], the
 * order words64 already has): one step appends w16 = w0 ^ w1 ^ w2 ^ w3 ^ w12 ^ w15 and drops w0.
 *
 * Why in registers and four steps at once: psi^61 was a quarter of the hash's work done one 16-bit word at a time
 * through memory. Four new words need only old words except through the w15 term, which chains each new word to
 * the one before; so the other five terms are XORed for all four lanes in one 64-bit operation, and the chain is a
 * prefix XOR over the lanes (two shifts). With the state in registers this lifts the hash past librhash
 * (docs/performance.md); it needs no particular byte order. */
HOT void
psi4(uint64_t x[4])
{
    uint64_t a = x[0], b = x[1], d = x[3];
    uint64_t y = a ^ (a >> 16 | b << 48) ^ (a >> 32 | b << 32) ^ (a >> 48 | b << 16) ^ d ^ (d >> 48);
    y ^= y << 16;
    y ^= y << 32;
    x[0] = b; x[1] = x[2]; x[2] = d; x[3] = y;
}

HOT void
psi1(uint64_t x[4])
{
    uint64_t a = x[0], d = x[3];
    uint64_t w16 = (a ^ a >> 16 ^ a >> 32 ^ a >> 48 ^ d ^ d >> 48) & 0xffff;
    x[0] = a >> 16 | x[1] << 48;
    x[1] = x[1] >> 16 | x[2] << 48;
    x[2] = x[2] >> 16 | d << 48;
    x[3] = d >> 16 | w16 << 48;
}

/* The step function: H = psi^61(H ^ psi(M ^ psi^12(S))), S = four encryptions of H's words under keys from
 * H and M. */
static void
compress(uint64_t h[4], const uint64_t m[4])
{
    uint64_t u[4], v[4], w[4], s[4];
    uint32_t k[4][8];

    memcpy(u, h, sizeof u);
    memcpy(v, m, sizeof v);
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            transform_a(u);
            if (i == 2) {
                for (int j = 0; j < 4; j++) u[j] ^= C3[j];
            }
            transform_a(v);
            transform_a(v);
        }
        for (int j = 0; j < 4; j++) w[j] = u[j] ^ v[j];
        subkeys(w, k[i]);
    }
    encrypt4(k, h, s);

    for (int i = 0; i < 3; i++) psi4(s);  /* psi^12 */
    for (int j = 0; j < 4; j++) s[j] ^= m[j];
    psi1(s);
    for (int j = 0; j < 4; j++) s[j] ^= h[j];
    for (int i = 0; i < 15; i++) psi4(s);  /* psi^61 = psi^60, then one step */
    psi1(s);
    memcpy(h, s, sizeof s);
}

static uint64_t
load64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
         | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void
absorb_block(gost94_ctx *ctx, const unsigned char *p)
{
    uint64_t m[4];
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        m[i] = load64(p + 8 * i);
        uint64_t t = ctx->sigma[i] + m[i];
        uint64_t c1 = t < m[i];
        ctx->sigma[i] = t + carry;
        carry = c1 | (ctx->sigma[i] < t);
    }
    compress(ctx->h, m);
}

void
gost94_update(gost94_ctx *ctx, const unsigned char *data, size_t len)
{
    ctx->length += len;
    if (ctx->buflen) {
        size_t take = 32 - ctx->buflen;
        if (take > len) take = len;
        memcpy(ctx->buf + ctx->buflen, data, take);
        ctx->buflen += take;
        data += take;
        len -= take;
        if (ctx->buflen < 32) return;
        absorb_block(ctx, ctx->buf);
        ctx->buflen = 0;
    }
    while (len >= 32) {
        absorb_block(ctx, data);
        data += 32;
        len -= 32;
    }
    memcpy(ctx->buf, data, len);
    ctx->buflen = len;
}

/* Finish on a copy so the object can keep streaming after digest(), like hashlib. */
void
gost94_final(const gost94_ctx *in, unsigned char out[32])
{
    gost94_ctx ctx = *in;
    uint64_t len_bits[4] = {ctx.length << 3, ctx.length >> 61, 0, 0};
    if (ctx.buflen) {  /* the last partial block is zero-padded; whole-block messages add none */
        memset(ctx.buf + ctx.buflen, 0, 32 - ctx.buflen);
        absorb_block(&ctx, ctx.buf);
    }
    compress(ctx.h, len_bits);
    compress(ctx.h, ctx.sigma);
    for (int i = 0; i < 32; i++) out[i] = (unsigned char)(ctx.h[i / 8] >> (8 * (i % 8)));
}

void
gost94_init(gost94_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
}

size_t
gost94_ctx_size(void)
{
    return sizeof(gost94_ctx);
}

void
gost94_digest(const unsigned char *data, size_t len, unsigned char out[32])
{
    gost94_ctx ctx;
    gost94_init(&ctx);
    gost94_update(&ctx, data, len);
    gost94_final(&ctx, out);
}
