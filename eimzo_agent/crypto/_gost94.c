/*
 * Accelerator for eimzo_agent.crypto.gost94: GOST R 34.11-94 with the CryptoPro S-box and zero IV
 * (= O'zDSt 1106:2009). The hash itself is gost94_core.c (plain C, shared with the ctypes library for Windows);
 * this file is only its CPython face. The pure-Python module documents the algorithm and is the fallback when
 * neither is built. Plain CPython C API, no external libraries.
 *
 * Module _gost94:
 *   State()            streaming object: update(buffer), digest() -> 32 bytes, copy() -> State
 *   digest(buffer)     one-shot digest
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pythread.h"

#include <string.h>

#include "gost94_core.h"

/* Updates at least this long run with the GIL released (hashlib uses the same threshold). */
#define GIL_MINSIZE 2048

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
        gost94_update(&self->ctx, view.buf, (size_t)view.len);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    } else {
        state_acquire(self);
        gost94_update(&self->ctx, view.buf, (size_t)view.len);
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
    gost94_final(&self->ctx, out);
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
        gost94_update(&ctx, view.buf, (size_t)view.len);
        gost94_final(&ctx, out);
        Py_END_ALLOW_THREADS
    } else {
        gost94_update(&ctx, view.buf, (size_t)view.len);
        gost94_final(&ctx, out);
    }
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static int
module_exec(PyObject *module)
{
    gost94_prepare();
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
