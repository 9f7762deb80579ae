/*
 * The CPython extension _ozdst_ec: ozdst_ec_core.c's fixed-base point sum for eimzo_agent.crypto.ozdst, computed
 * with the GIL released. (Windows installs get the same core as ozdst_ec.dll, loaded by ozdst_ec_clib.py.)
 *
 * Module _ozdst_ec:
 *   fixed_base_sum(curve, table, digits) -> bytes: the Jacobian sum X || Y || Z; ValueError for malformed input
 *   (the layouts are in ozdst_ec_core.c)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ozdst_ec_core.h"

static PyObject *
fixed_base_sum(PyObject *module, PyObject *args)
{
    const unsigned char *curve, *table;
    const signed char *digits;
    Py_ssize_t curve_len, table_len, digits_len;
    if (!PyArg_ParseTuple(args, "y#y#y#:fixed_base_sum", &curve, &curve_len, &table, &table_len, &digits,
                          &digits_len))
        return NULL;
    unsigned char out[96];
    int status;
    /* bytes objects: immutable, and held by the caller's arguments while the GIL is released */
    Py_BEGIN_ALLOW_THREADS
    status = ozdst_ec_fixed_base_sum(curve, (size_t)curve_len, table, (size_t)table_len, digits,
                                     (size_t)digits_len, out);
    Py_END_ALLOW_THREADS
    switch (status) {
    case OZDST_EC_OK:
        return PyBytes_FromStringAndSize((const char *)out, sizeof out);
    case OZDST_EC_BAD_CURVE:
        PyErr_SetString(PyExc_ValueError, "curve must be 96 bytes: p, a and R mod p");
        return NULL;
    case OZDST_EC_BAD_TABLE:
        PyErr_SetString(PyExc_ValueError, "table must be whole rows of 32 points of 64 bytes");
        return NULL;
    case OZDST_EC_TOO_MANY_DIGITS:
        PyErr_SetString(PyExc_ValueError, "more digits than table rows");
        return NULL;
    case OZDST_EC_BAD_DIGIT:
        PyErr_SetString(PyExc_ValueError, "a digit is outside [-32, 32]");
        return NULL;
    default:
        PyErr_SetString(PyExc_ValueError, "p must be odd");
        return NULL;
    }
}

static PyMethodDef methods[] = {
    {"fixed_base_sum", fixed_base_sum, METH_VARARGS,
     "fixed_base_sum(curve, table, digits) -> X || Y || Z: the Jacobian sum of the table entries the signed "
     "digits pick (see ozdst_ec_core.c for the layouts)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_ozdst_ec", "Fixed-base point sums for O'zDSt signatures (see ozdst.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__ozdst_ec(void)
{
    return PyModule_Create(&module_def);
}
