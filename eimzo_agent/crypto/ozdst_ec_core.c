/*
 * The sum of fixed-base table points that makes k*G for an O'zDSt signature (eimzo_agent.crypto.ozdst), in plain
 * C: no Python and no external libraries. Two builds use it: the CPython extension _ozdst_ec (_ozdst_ec.c), and a
 * plain shared library (ozdst_ec.dll on Windows, cross-compiled with mingw-w64) that ozdst_ec_clib.py loads with
 * ctypes where no extension can be built.
 *
 * Why: an O'zDSt signature's k*G is ~54 mixed point additions (signed 6-bit windows over a precomputed table of G
 * multiples, no doublings). In CPython big ints that is ~0.25 ms, the largest part of a remembered key's
 * signature; here it is a few microseconds. OpenSSL's libcrypto is no help: for a curve it has no tuned code for,
 * EC_POINT_mul with a secret scalar runs its generic constant-time ladder, which measured slower (0.35 ms) than
 * the Python code.
 *
 * What stays in Python (ozdst.py): the table (built once per curve, handed over in Montgomery form), the blinded
 * scalar's signed digits, and the affine conversion. This file only adds table entries; it knows no curve
 * constants and keeps no state, so it is the same code for CryptoPro-A, -B and -C.
 *
 * Field elements: 256-bit, four 64-bit limbs least significant first, in Montgomery form (x * 2^256 mod p), every
 * result fully reduced to [0, p). Side channels: each table entry is read by scanning its whole row with masks (no
 * secret-dependent memory address) and a negative digit negates y by a masked select; a zero digit is skipped and
 * the rare exceptional additions branch, as in the Python code. The scalar is blinded by the caller.
 *
 * ozdst_ec_fixed_base_sum(curve, curve_len, table, table_len, digits, digits_len, out) -> status
 *     curve:  96 bytes, p || a*R mod p || R mod p (R = 2^256), each 32 bytes little-endian
 *     table:  rows of 32 affine points, each x || y in Montgomery form, 32 bytes little-endian apiece
 *             (row i, entry j: (j + 1) * 2^(6i) * G), so len(table) is a multiple of 2048
 *     digits: one signed byte per row, each in [-32, 32], at most as many as rows
 *     out:    96 bytes: the Jacobian sum X || Y || Z (32 bytes little-endian each, out of Montgomery form; Z = 0:
 *             infinity)
 *   returns OZDST_EC_OK, or which input is malformed (ozdst_ec_core.h); nothing is written to out then
 */
#include "ozdst_ec_core.h"

#include <string.h>

typedef unsigned __int128 u128;
typedef uint64_t fe[4];

#define ROW_POINTS 32
#define POINT_BYTES 64
#define ROW_BYTES (ROW_POINTS * POINT_BYTES)

typedef struct {
    fe p;
    uint64_t n0; /* -p^-1 mod 2^64 */
    fe a;        /* Montgomery form */
    fe one;      /* R mod p: 1 in Montgomery form */
} field;

static void
fe_load(fe out, const unsigned char *in)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, in, sizeof(fe)); /* the layout is the host's: one copy (the row scans read 110 KB per signature) */
#else
    for (int i = 0; i < 4; i++) {
        uint64_t w = 0;
        for (int b = 7; b >= 0; b--) w = (w << 8) | in[8 * i + b];
        out[i] = w;
    }
#endif
}

static void
fe_store(unsigned char *out, const fe in)
{
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++) out[8 * i + b] = (unsigned char)(in[i] >> (8 * b));
}

static int
fe_is_zero(const fe x)
{
    return (x[0] | x[1] | x[2] | x[3]) == 0;
}

/* r = x - y over 256 bits; returns the borrow. */
static uint64_t
sub256(fe r, const fe x, const fe y)
{
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)x[i] - y[i] - borrow;
        r[i] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    return borrow;
}

/* r = x + y over 256 bits; returns the carry. */
static uint64_t
add256(fe r, const fe x, const fe y)
{
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        u128 s = (u128)x[i] + y[i] + carry;
        r[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
    return carry;
}

/* r = x if mask is all ones, y if it is zero. */
static void
fe_select(fe r, uint64_t mask, const fe x, const fe y)
{
    for (int i = 0; i < 4; i++) r[i] = (x[i] & mask) | (y[i] & ~mask);
}

/* Subtract p once when the value (with `high` as its 257th bit) is at least p: [0, 2p) -> [0, p). */
static void
fe_reduce_once(const field *f, fe r, uint64_t high)
{
    fe t;
    uint64_t borrow = sub256(t, r, f->p);
    /* keep t unless the subtraction borrowed and there was no 257th bit */
    uint64_t keep_r = (uint64_t)0 - (borrow & (high ^ 1));
    fe_select(r, keep_r, r, t);
}

static void
fe_add(const field *f, fe r, const fe x, const fe y)
{
    uint64_t carry = add256(r, x, y);
    fe_reduce_once(f, r, carry);
}

static void
fe_sub(const field *f, fe r, const fe x, const fe y)
{
    fe t;
    uint64_t borrow = sub256(r, x, y);
    add256(t, r, f->p);
    fe_select(r, (uint64_t)0 - borrow, t, r);
}

/* Montgomery multiplication (CIOS): r = x * y / 2^256 mod p, for x, y < p. */
static void
fe_mul(const field *f, fe r, const fe x, const fe y)
{
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < 4; j++) {
            u128 s = (u128)x[j] * y[i] + t[j] + carry;
            t[j] = (uint64_t)s;
            carry = (uint64_t)(s >> 64);
        }
        u128 s = (u128)t[4] + carry;
        t[4] = (uint64_t)s;
        t[5] = (uint64_t)(s >> 64);
        uint64_t m = t[0] * f->n0;
        s = (u128)m * f->p[0] + t[0];
        carry = (uint64_t)(s >> 64);
        for (int j = 1; j < 4; j++) {
            s = (u128)m * f->p[j] + t[j] + carry;
            t[j - 1] = (uint64_t)s;
            carry = (uint64_t)(s >> 64);
        }
        s = (u128)t[4] + carry;
        t[3] = (uint64_t)s;
        t[4] = t[5] + (uint64_t)(s >> 64);
    }
    fe out = {t[0], t[1], t[2], t[3]};
    fe_reduce_once(f, out, t[4]);
    memcpy(r, out, sizeof(fe));
}

typedef struct {
    fe x, y, z; /* Jacobian, Montgomery form; z == 0: the point at infinity */
} point;

/* 2P, Jacobian (any a). */
static void
point_double(const field *f, point *r, const point *pt)
{
    if (fe_is_zero(pt->z) || fe_is_zero(pt->y)) {
        memset(r, 0, sizeof *r);
        memcpy(r->x, f->one, sizeof(fe));
        memcpy(r->y, f->one, sizeof(fe));
        return;
    }
    fe zz, m, t, yy, s, x3, y3, z3;
    fe_mul(f, zz, pt->z, pt->z);
    fe_mul(f, m, pt->x, pt->x);          /* x^2 */
    fe_add(f, t, m, m);
    fe_add(f, m, t, m);                   /* 3x^2 */
    fe_mul(f, t, zz, zz);
    fe_mul(f, t, t, f->a);                /* a z^4 */
    fe_add(f, m, m, t);                   /* M */
    fe_mul(f, yy, pt->y, pt->y);
    fe_mul(f, s, pt->x, yy);
    fe_add(f, s, s, s);
    fe_add(f, s, s, s);                   /* S = 4 x y^2 */
    fe_mul(f, x3, m, m);
    fe_sub(f, x3, x3, s);
    fe_sub(f, x3, x3, s);                 /* X3 = M^2 - 2S */
    fe_sub(f, t, s, x3);
    fe_mul(f, y3, m, t);
    fe_mul(f, t, yy, yy);
    fe_add(f, t, t, t);
    fe_add(f, t, t, t);
    fe_add(f, t, t, t);                   /* 8 y^4 */
    fe_sub(f, y3, y3, t);                 /* Y3 = M (S - X3) - 8 y^4 */
    fe_mul(f, z3, pt->y, pt->z);
    fe_add(f, z3, z3, z3);                /* Z3 = 2 y z */
    memcpy(r->x, x3, sizeof(fe));
    memcpy(r->y, y3, sizeof(fe));
    memcpy(r->z, z3, sizeof(fe));
}

/* acc += (x2, y2), the second point affine: the same formulas and special cases as ozdst._add_affine. */
static void
point_add_affine(const field *f, point *acc, const fe x2, const fe y2)
{
    if (fe_is_zero(acc->z)) {
        memcpy(acc->x, x2, sizeof(fe));
        memcpy(acc->y, y2, sizeof(fe));
        memcpy(acc->z, f->one, sizeof(fe));
        return;
    }
    fe zz, h, r, t, hh, hhh, v, x3, y3;
    fe_mul(f, zz, acc->z, acc->z);
    fe_mul(f, t, x2, zz);
    fe_sub(f, h, t, acc->x);              /* H = x2 z1^2 - x1 */
    fe_mul(f, t, y2, zz);
    fe_mul(f, t, t, acc->z);
    fe_sub(f, r, t, acc->y);              /* r = y2 z1^3 - y1 */
    if (fe_is_zero(h)) {
        if (fe_is_zero(r)) {               /* P == Q */
            point q;
            memcpy(q.x, x2, sizeof(fe));
            memcpy(q.y, y2, sizeof(fe));
            memcpy(q.z, f->one, sizeof(fe));
            point_double(f, acc, &q);
        } else {                           /* P == -Q */
            memcpy(acc->x, f->one, sizeof(fe));
            memcpy(acc->y, f->one, sizeof(fe));
            memset(acc->z, 0, sizeof(fe));
        }
        return;
    }
    fe_mul(f, hh, h, h);
    fe_mul(f, hhh, h, hh);
    fe_mul(f, v, acc->x, hh);
    fe_mul(f, x3, r, r);
    fe_sub(f, x3, x3, hhh);
    fe_sub(f, x3, x3, v);
    fe_sub(f, x3, x3, v);                 /* X3 = r^2 - H^3 - 2 x1 H^2 */
    fe_sub(f, t, v, x3);
    fe_mul(f, y3, r, t);
    fe_mul(f, t, acc->y, hhh);
    fe_sub(f, y3, y3, t);                 /* Y3 = r (x1 H^2 - X3) - y1 H^3 */
    fe_mul(f, acc->z, acc->z, h);         /* Z3 = z1 H */
    memcpy(acc->x, x3, sizeof(fe));
    memcpy(acc->y, y3, sizeof(fe));
}

/* Entry `index` (0..31) of a row, read by touching every entry of it. */
static void
row_lookup(const unsigned char *row, unsigned index, fe x, fe y)
{
    memset(x, 0, sizeof(fe));
    memset(y, 0, sizeof(fe));
    for (unsigned j = 0; j < ROW_POINTS; j++) {
        uint64_t mask = (uint64_t)0 - (((uint64_t)(j ^ index) - 1) >> 63);
        fe ex, ey;
        fe_load(ex, row + j * POINT_BYTES);
        fe_load(ey, row + j * POINT_BYTES + 32);
        for (int i = 0; i < 4; i++) {
            x[i] |= ex[i] & mask;
            y[i] |= ey[i] & mask;
        }
    }
}

static int
field_init(field *f, const unsigned char *curve)
{
    fe_load(f->p, curve);
    fe_load(f->a, curve + 32);
    fe_load(f->one, curve + 64);
    if ((f->p[0] & 1) == 0) return -1; /* Montgomery needs an odd modulus */
    /* Newton's iteration for p^-1 mod 2^64: each step doubles the correct low bits (p * p = 1 mod 8 to start). */
    uint64_t inv = f->p[0];
    for (int i = 0; i < 5; i++) inv *= 2 - f->p[0] * inv;
    f->n0 = (uint64_t)0 - inv;
    return 0;
}

int
ozdst_ec_fixed_base_sum(const unsigned char *curve, size_t curve_len, const unsigned char *table, size_t table_len,
                        const signed char *digits, size_t digits_len, unsigned char out[96])
{
    if (curve_len != 96) return OZDST_EC_BAD_CURVE;
    if (table_len == 0 || table_len % ROW_BYTES != 0) return OZDST_EC_BAD_TABLE;
    if (digits_len > table_len / ROW_BYTES) return OZDST_EC_TOO_MANY_DIGITS;
    for (size_t i = 0; i < digits_len; i++) {
        if (digits[i] < -ROW_POINTS || digits[i] > ROW_POINTS) return OZDST_EC_BAD_DIGIT;
    }
    field f;
    if (field_init(&f, curve) != 0) return OZDST_EC_EVEN_MODULUS;
    point acc;
    memcpy(acc.x, f.one, sizeof(fe));
    memcpy(acc.y, f.one, sizeof(fe));
    memset(acc.z, 0, sizeof(fe));
    for (size_t i = 0; i < digits_len; i++) {
        int d = digits[i];
        if (d == 0) continue;
        unsigned magnitude = (unsigned)(d < 0 ? -d : d);
        fe x, y, negated;
        row_lookup(table + i * ROW_BYTES, magnitude - 1, x, y);
        fe_sub(&f, negated, f.p, y);        /* p - y: -y for y in (0, p) */
        uint64_t negative = (uint64_t)0 - (uint64_t)(d < 0);
        fe_select(y, negative, negated, y);
        point_add_affine(&f, &acc, x, y);
    }
    /* out of Montgomery form: multiply by 1 */
    fe unit = {1, 0, 0, 0};
    fe_mul(&f, acc.x, acc.x, unit);
    fe_mul(&f, acc.y, acc.y, unit);
    fe_mul(&f, acc.z, acc.z, unit);
    fe_store(out, acc.x);
    fe_store(out + 32, acc.y);
    fe_store(out + 64, acc.z);
    return OZDST_EC_OK;
}
