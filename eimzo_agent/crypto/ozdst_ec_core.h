/*
 * The fixed-base point sum of an O'zDSt signature's k*G in plain C (ozdst_ec_core.c documents the layouts). Two
 * builds use it: the CPython extension _ozdst_ec, and a plain shared library (ozdst_ec.dll on Windows) that
 * eimzo_agent/crypto/ozdst_ec_clib.py loads with ctypes. The exported function is that library's ABI: keep it
 * stable. Needs a compiler with unsigned __int128 (gcc, clang, mingw-w64).
 */
#ifndef EIMZO_OZDST_EC_CORE_H
#define EIMZO_OZDST_EC_CORE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(OZDST_EC_BUILD_DLL)
#define OZDST_EC_API __declspec(dllexport)
#else
#define OZDST_EC_API
#endif

/* What ozdst_ec_fixed_base_sum returns; the callers turn the non-zero ones into their errors. */
enum {
    OZDST_EC_OK = 0,
    OZDST_EC_BAD_CURVE = 1,        /* curve is not 96 bytes */
    OZDST_EC_BAD_TABLE = 2,        /* table is empty or not whole rows */
    OZDST_EC_TOO_MANY_DIGITS = 3,  /* more digits than table rows */
    OZDST_EC_BAD_DIGIT = 4,        /* a digit outside [-32, 32] */
    OZDST_EC_EVEN_MODULUS = 5,     /* p is even */
};

OZDST_EC_API int ozdst_ec_fixed_base_sum(const unsigned char *curve, size_t curve_len, const unsigned char *table,
                                         size_t table_len, const signed char *digits, size_t digits_len,
                                         unsigned char out[96]);

#endif
