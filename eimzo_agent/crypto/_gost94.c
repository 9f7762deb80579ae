/*
 * Accelerator for eimzo_agent.crypto.gost94: GOST R 34.11-94 with the CryptoPro S-box and zero IV
 * (= O'zDSt 1106:2009). Written from the standard; the pure-Python module documents the algorithm and is the
 * fallback when this extension is not built. Plain CPython C API, no external libraries.
 *
 * Module _gost94:
 *   State()            streaming object: update(buffer), digest() -> 32 bytes, copy() -> State
 *   digest(buffer)     one-shot digest
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pythread.h"

#include <stdint.h>
#include <string.h>

/* Updates at least this long run with the GIL released (hashlib uses the same threshold). */
#define GIL_MINSIZE 2048

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

static void
init_tables(void)
{
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 256; b++) {
            uint32_t v = (uint32_t)(SBOX[2 * i][b & 15] | SBOX[2 * i + 1][b >> 4] << 4) << (8 * i);
            T[i][b] = (v << 11) | (v >> 21);
        }
    }
}

#define F(x) (T[0][(x) & 0xff] ^ T[1][((x) >> 8) & 0xff] ^ T[2][((x) >> 16) & 0xff] ^ T[3][(x) >> 24])

/* GOST 28147-89 encryption of one block (N1 = low word). Rounds alternate the half they update instead of
 * swapping; after 32 rounds the halves come out exchanged, which is the cipher's output order. */
static uint64_t
encrypt(const uint32_t k[8], uint64_t block)
{
    uint32_t a = (uint32_t)block, b = (uint32_t)(block >> 32);
    for (int i = 0; i < 3; i++) {
        b ^= F(a + k[0]); a ^= F(b + k[1]); b ^= F(a + k[2]); a ^= F(b + k[3]);
        b ^= F(a + k[4]); a ^= F(b + k[5]); b ^= F(a + k[6]); a ^= F(b + k[7]);
    }
    b ^= F(a + k[7]); a ^= F(b + k[6]); b ^= F(a + k[5]); a ^= F(b + k[4]);
    b ^= F(a + k[3]); a ^= F(b + k[2]); b ^= F(a + k[1]); a ^= F(b + k[0]);
    return (uint64_t)b | (uint64_t)a << 32;
}

/* Transformation P: subkey j takes byte j of each 64-bit word of w. */
static void
subkeys(const uint64_t w[4], uint32_t k[8])
{
    for (int j = 0; j < 8; j++) {
        int s = 8 * j;
        k[j] = (uint32_t)((w[0] >> s) & 0xff) | (uint32_t)((w[1] >> s) & 0xff) << 8
             | (uint32_t)((w[2] >> s) & 0xff) << 16 | (uint32_t)((w[3] >> s) & 0xff) << 24;
    }
}

/* Transformation A: words (y4, y3, y2, y1) -> (y1 ^ y2, y4, y3, y2). */
static void
transform_a(uint64_t y[4])
{
    uint64_t t = y[0] ^ y[1];
    y[0] = y[1]; y[1] = y[2]; y[2] = y[3]; y[3] = t;
}

/* psi^n applied to 16 16-bit words held at w[0..15]: each step appends the feedback word, so the result ends up
 * at w[n..n+15]. w must have room for n + 16 words. */
static void
psi_steps(uint16_t *w, int n)
{
    for (int i = 0; i < n; i++) {
        w[i + 16] = w[i] ^ w[i + 1] ^ w[i + 2] ^ w[i + 3] ^ w[i + 12] ^ w[i + 15];
    }
}

static void
words64_to_16(const uint64_t in[4], uint16_t out[16])
{
    for (int i = 0; i < 16; i++) {
        out[i] = (uint16_t)(in[i / 4] >> (16 * (i % 4)));
    }
}

/* The step function: H = psi^61(H ^ psi(M ^ psi^12(S))), S = four encryptions of H's words under keys from
 * H and M. */
static void
compress(uint64_t h[4], const uint64_t m[4])
{
    uint64_t u[4], v[4], w[4], s[4];
    uint32_t k[8];
    uint16_t buf[16 + 61];
    uint16_t mw[16], hw[16];

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
        subkeys(w, k);
        s[i] = encrypt(k, h[i]);
    }

    words64_to_16(s, buf);
    words64_to_16(m, mw);
    words64_to_16(h, hw);
    psi_steps(buf, 12);
    for (int i = 0; i < 16; i++) buf[i] = buf[i + 12] ^ mw[i];
    psi_steps(buf, 1);
    for (int i = 0; i < 16; i++) buf[i] = buf[i + 1] ^ hw[i];
    psi_steps(buf, 61);
    for (int i = 0; i < 4; i++) {
        const uint16_t *p = buf + 61 + 4 * i;
        h[i] = (uint64_t)p[0] | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 32 | (uint64_t)p[3] << 48;
    }
}

static uint64_t
load64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
         | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

typedef struct {
    uint64_t h[4];        /* chaining value, zero IV */
    uint64_t sigma[4];    /* sum of the message blocks mod 2^256 */
    uint64_t length;      /* message bytes so far (the bit length is derived at the end) */
    unsigned char buf[32];
    size_t buflen;
} gost94_ctx;

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

static void
ctx_update(gost94_ctx *ctx, const unsigned char *data, size_t len)
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
static void
ctx_digest(const gost94_ctx *in, unsigned char out[32])
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

/* --- Python objects ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    gost94_ctx ctx;
    PyThread_type_lock lock;  /* created on the first large update, which runs without the GIL */
} StateObject;

static void
state_acquire(StateObject *self)
{
    if (self->lock && !PyThread_acquire_lock(self->lock, 0)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, 1);
        Py_END_ALLOW_THREADS
    }
}

static void
state_release(StateObject *self)
{
    if (self->lock) PyThread_release_lock(self->lock);
}

static PyObject *
state_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "State() takes no arguments");
        return NULL;
    }
    StateObject *self = (StateObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    memset(&self->ctx, 0, sizeof self->ctx);
    self->lock = NULL;
    return (PyObject *)self;
}

static void
state_dealloc(StateObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (self->lock) PyThread_free_lock(self->lock);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyObject *
state_update(StateObject *self, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len >= GIL_MINSIZE && self->lock == NULL) {
        self->lock = PyThread_allocate_lock();  /* NULL on failure: we simply keep the GIL */
    }
    if (view.len >= GIL_MINSIZE && self->lock != NULL) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->lock, 1);
        ctx_update(&self->ctx, view.buf, (size_t)view.len);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    } else {
        state_acquire(self);
        ctx_update(&self->ctx, view.buf, (size_t)view.len);
        state_release(self);
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *
state_digest(StateObject *self, PyObject *Py_UNUSED(ignored))
{
    unsigned char out[32];
    state_acquire(self);
    ctx_digest(&self->ctx, out);
    state_release(self);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyObject *
state_copy(StateObject *self, PyObject *Py_UNUSED(ignored))
{
    PyTypeObject *type = Py_TYPE(self);
    StateObject *clone = (StateObject *)type->tp_alloc(type, 0);
    if (clone == NULL) return NULL;
    clone->lock = NULL;
    state_acquire(self);
    clone->ctx = self->ctx;
    state_release(self);
    return (PyObject *)clone;
}

static PyMethodDef state_methods[] = {
    {"update", (PyCFunction)state_update, METH_O, "Hash more bytes (any buffer)."},
    {"digest", (PyCFunction)state_digest, METH_NOARGS, "The 32-byte digest of everything so far."},
    {"copy", (PyCFunction)state_copy, METH_NOARGS, "An independent copy of the state."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot state_slots[] = {
    {Py_tp_new, state_new},
    {Py_tp_dealloc, state_dealloc},
    {Py_tp_methods, state_methods},
    {Py_tp_doc, "Streaming GOST R 34.11-94 (CryptoPro S-box, zero IV) state."},
    {0, NULL},
};

static PyType_Spec state_spec = {
    .name = "eimzo_agent.crypto._gost94.State",
    .basicsize = sizeof(StateObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = state_slots,
};

static PyObject *
module_digest(PyObject *Py_UNUSED(module), PyObject *data)
{
    Py_buffer view;
    gost94_ctx ctx;
    unsigned char out[32];
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    memset(&ctx, 0, sizeof ctx);
    if (view.len >= GIL_MINSIZE) {
        Py_BEGIN_ALLOW_THREADS
        ctx_update(&ctx, view.buf, (size_t)view.len);
        ctx_digest(&ctx, out);
        Py_END_ALLOW_THREADS
    } else {
        ctx_update(&ctx, view.buf, (size_t)view.len);
        ctx_digest(&ctx, out);
    }
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static int
module_exec(PyObject *module)
{
    init_tables();
    PyObject *type = PyType_FromModuleAndSpec(module, &state_spec, NULL);
    if (type == NULL) return -1;
    if (PyModule_AddObject(module, "State", type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static PyMethodDef module_methods[] = {
    {"digest", (PyCFunction)module_digest, METH_O, "One-shot GOST R 34.11-94 (CryptoPro) digest of a buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_gost94",
    .m_doc = "C accelerator for eimzo_agent.crypto.gost94 (O'zDSt 1106 / GOST R 34.11-94, CryptoPro S-box).",
    .m_size = 0,
    .m_methods = module_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__gost94(void)
{
    return PyModuleDef_Init(&module_def);
}
