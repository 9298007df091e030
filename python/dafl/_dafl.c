/*
 * dafl._dafl — the C face of libdafl for Python.
 *
 * Every array crosses through DLPack: the extension calls the object's __dlpack__(),
 * reads the DLManagedTensor it gets (device, dtype, shape, strides) and uses the data
 * pointer in place, so a C-contiguous CPU tensor (torch) or array (numpy) is never
 * copied.  The losses' float operands (input or logits, target, grad) may be float32,
 * bfloat16 or float16, each its own: the view records its dafl_dtype and the params'
 * input_dtype / target_dtype / grad_dtype say it to libdafl, which reads and writes the
 * half-precision elements themselves (SPEC 13).  Everything else has one exact dtype
 * (float32 per-element losses, weights and heatmaps, int32 labels, float64 keypoints).
 * This layer converts nothing: anything but an accepted dtype, a CPU device and a
 * C-contiguous layout is refused with TypeError / ValueError naming the argument.  The
 * documented one-copy conversions (other strides, float64) live in the pure-Python layer
 * above (dafl/_convert.py).
 *
 * The capsule is held (not consumed) for the duration of the call: its own destructor
 * then hands the tensor back to the producer, as the DLPack protocol has it for a
 * capsule that was not renamed "used_dltensor".
 *
 * Outputs (loss, grad, heatmaps) are arrays the caller allocated; dafl writes nothing
 * when a call fails, and every failing status raises dafl.DaflError (a ValueError) whose
 * message is dafl_status_string(), .status the code and .status_name e.g.
 * "DAFL_ERR_INVALID_TARGET".  The GIL is released
 * around every libdafl call.
 */
#define PY_SSIZE_T_CLEAN
/* The limited C API of CPython 3.9 only, in every build: the wheel is one abi3 wheel for
 * every CPython >= 3.9 (Meson >= 1.3 defines this itself from limited_api : '3.9' in
 * python/dafl/meson.build and names the module _dafl.abi3.so), and an older Meson's
 * build compiles against the same subset, so that nothing outside it creeps in. */
#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03090000
#endif
#include <Python.h>

/* Newer than the 3.9 limited API, and written here with the API it has (Python 3.11's
 * headers define Py_NewRef as an inline function whatever the limited API's version). */
#if Py_LIMITED_API + 0 < 0x030a0000
#ifndef Py_NewRef
static inline PyObject *dafl_py_newref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#define Py_NewRef(o) dafl_py_newref((PyObject *)(o))
#endif
/* PyModule_AddObjectRef (3.10): adds a new reference; the caller keeps its own. */
static int dafl_py_module_add_object_ref(PyObject *m, const char *name, PyObject *value)
{
    Py_XINCREF(value);
    if (PyModule_AddObject(m, name, value) < 0) {
        Py_XDECREF(value);
        return -1;
    }
    return 0;
}
#define PyModule_AddObjectRef dafl_py_module_add_object_ref
#endif

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <dafl.h>

static PyObject *DaflError;

/* "__dlpack__", interned once: a name made afresh for every array would miss the type's
 * attribute cache on every call. */
static PyObject *dlpack_method;

/* ---- DLPack views ---------------------------------------------------------------- */

typedef struct view {
    PyObject *capsule; /* owns the DLManagedTensor while the view is used */
    DLTensor *t;
    void *data;        /* t->data + t->byte_offset */
    size_t count;      /* number of elements */
    dafl_dtype dtype;  /* a loss operand's element type (LOSS_FLOAT); FLOAT32 otherwise */
} view;

/* A view zeroed (an absent array's, or one that is not a loss operand) says float32. */
_Static_assert(DAFL_DTYPE_FLOAT32 == 0, "a zeroed view's dtype is not float32");

static void view_release(view *v)
{
    Py_CLEAR(v->capsule);
}

/* The element types the entry points take. */
static const DLDataType FLOAT32 = {kDLFloat, 32, 1};
static const DLDataType FLOAT64 = {kDLFloat, 64, 1};
static const DLDataType INT32 = {kDLInt, 32, 1};
static const DLDataType INT64 = {kDLInt, 64, 1};
static const DLDataType UINT8 = {kDLUInt, 8, 1};
/* Not an element type: what view_get takes for a float operand of a loss (input or
 * logits, target, grad), which may be float32, bfloat16 or float16 (dafl_dtype). */
static const DLDataType LOSS_FLOAT = {kDLFloat, 0, 1};

/* The dafl_dtype of a DLPack element type a loss reads and writes in place: 0, or -1
 * for any other. */
static int loss_float_dtype(DLDataType d, dafl_dtype *dtype)
{
    if (d.lanes != 1)
        return -1;
    if (d.code == kDLFloat && d.bits == 32)
        *dtype = DAFL_DTYPE_FLOAT32;
    else if (d.code == kDLBfloat && d.bits == 16)
        *dtype = DAFL_DTYPE_BFLOAT16;
    else if (d.code == kDLFloat && d.bits == 16)
        *dtype = DAFL_DTYPE_FLOAT16;
    else
        return -1;
    return 0;
}

static const char *device_name(int type)
{
    switch (type) {
    case kDLCPU: return "cpu";
    case kDLCUDA: return "cuda";
    case kDLCUDAHost: return "cuda pinned host";
    case kDLCUDAManaged: return "cuda managed";
    case kDLROCM: return "rocm";
    case kDLMetal: return "metal";
    case kDLVulkan: return "vulkan";
    case kDLOpenCL: return "opencl";
    default: return "non-cpu";
    }
}

static const char *dtype_name(DLDataType d)
{
    if (d.lanes != 1)
        return "a vector dtype";
    switch (d.code) {
    case kDLFloat:
        return d.bits == 16 ? "float16" : d.bits == 32 ? "float32" : d.bits == 64 ? "float64"
                                                                                  : "float";
    case kDLBfloat: return "bfloat16";
    case kDLInt:
        return d.bits == 8 ? "int8" : d.bits == 16 ? "int16" : d.bits == 32 ? "int32" : "int64";
    case kDLUInt: return d.bits == 8 ? "uint8" : "unsigned int";
    default: return "an unsupported dtype";
    }
}

/* Borrow obj's memory through DLPack.  `fn` ("dafl.<entry point>") and `what` (the
 * argument) name it in errors; `want` is the one dtype accepted, or LOSS_FLOAT: float32,
 * bfloat16 or float16, recorded in v->dtype.  Refuses (with the view left empty) a
 * non-CPU device, another dtype, and any layout but C-contiguous (strides NULL, or the
 * compact ones; dimensions of extent 1 may carry any stride). */
static int view_get(const char *fn, PyObject *obj, const char *what, DLDataType want,
                    view *v)
{
    memset(v, 0, sizeof *v);
    PyObject *capsule = PyObject_CallMethodObjArgs(obj, dlpack_method, NULL);
    if (!capsule) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            /* (the type's __name__: its tp_name is outside the limited API) */
            PyObject *type_name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__name__");
            if (!type_name)
                PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: '%s' must be an array or tensor with "
                         "__dlpack__ (numpy >= 1.22, torch), not %S", fn, what,
                         type_name ? type_name : Py_None);
            Py_XDECREF(type_name);
        }
        return -1;
    }
    DLManagedTensor *m = PyCapsule_IsValid(capsule, "dltensor")
                             ? PyCapsule_GetPointer(capsule, "dltensor") : NULL;
    if (!m) {
        Py_DECREF(capsule);
        PyErr_Format(PyExc_TypeError, "%s: '%s' gave no unversioned DLPack capsule",
                     fn, what);
        return -1;
    }
    DLTensor *t = &m->dl_tensor;
    v->capsule = capsule;
    v->t = t;
    if (t->device.device_type != kDLCPU) {
        PyErr_Format(PyExc_ValueError, "%s: '%s' is on the %s device; dafl computes on the "
                     "CPU (move it with .cpu())", fn, what, device_name(t->device.device_type));
        goto fail;
    }
    if (want.bits == 0 ? loss_float_dtype(t->dtype, &v->dtype) < 0
                       : t->dtype.code != want.code || t->dtype.bits != want.bits ||
                             t->dtype.lanes != 1) {
        PyErr_Format(PyExc_TypeError, "%s: '%s' must be %s, got %s", fn, what,
                     want.bits == 0 ? "float32, bfloat16 or float16" : dtype_name(want),
                     dtype_name(t->dtype));
        goto fail;
    }
    /* An empty array (a dimension of extent 0, anywhere) has no layout to check: a
     * (2, 0, 4, 4) tensor's strides are whatever its producer chose. */
    int empty = 0;
    for (int d = 0; d < t->ndim; d++)
        empty |= t->shape[d] == 0;
    size_t count = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        if (n < 0 || (n && count > SIZE_MAX / (size_t)n)) {
            PyErr_Format(PyExc_ValueError, "%s: '%s' has an invalid size", fn, what);
            goto fail;
        }
        if (t->strides && !empty && n > 1 && t->strides[d] != expect) {
            PyErr_Format(PyExc_ValueError, "%s: '%s' must be C-contiguous", fn, what);
            goto fail;
        }
        count *= (size_t)n;
        expect *= n;
    }
    v->count = count;
    v->data = (char *)t->data + t->byte_offset;
    return 0;
fail:
    view_release(v);
    return -1;
}

/* An optional view: Py_None gives an empty one (data NULL). */
static int view_get_opt(const char *fn, PyObject *obj, const char *what, DLDataType want,
                        view *v)
{
    if (obj == Py_None) {
        memset(v, 0, sizeof *v);
        return 0;
    }
    return view_get(fn, obj, what, want, v);
}

static int same_shape(const DLTensor *a, const DLTensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

static PyObject *shape_repr(const DLTensor *t)
{
    PyObject *dims = PyTuple_New(t->ndim);
    if (!dims)
        return NULL;
    for (int d = 0; d < t->ndim; d++) {
        PyObject *n = PyLong_FromLongLong(t->shape[d]);
        if (!n || PyTuple_SetItem(dims, d, n) < 0) { /* (SetItem steals n) */
            Py_DECREF(dims);
            return NULL;
        }
    }
    PyObject *r = PyObject_Repr(dims);
    Py_DECREF(dims);
    return r;
}

/* ValueError: '<what>' has shape S, expected that of '<ref>' (S'). */
static int require_same_shape(const char *fn, const view *v, const char *what,
                              const view *ref, const char *ref_name)
{
    if (!v->t || same_shape(v->t, ref->t))
        return 0;
    PyObject *a = shape_repr(v->t), *b = shape_repr(ref->t);
    if (a && b)
        PyErr_Format(PyExc_ValueError, "%s: '%s' has shape %U, expected the shape of "
                     "'%s' %U", fn, what, a, ref_name, b);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return -1;
}

static int require_count(const char *fn, const view *v, const char *what, size_t count)
{
    if (!v->t || v->count == count)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s: '%s' has %zu elements, expected %zu", fn, what,
                 v->count, count);
    return -1;
}

/* ---- statuses ---------------------------------------------------------------------- */

/* DaflError(message) with .status = st and .status_name (the status string's name part);
 * takes the reference to message (NULL: an error is already set). */
static PyObject *raise_status_message(dafl_status st, PyObject *message)
{
    if (!message)
        return NULL;
    const char *text = dafl_status_string(st);
    PyObject *e = PyObject_CallFunctionObjArgs(DaflError, message, NULL);
    Py_DECREF(message);
    if (!e)
        return NULL;
    PyObject *code = PyLong_FromLong((long)st);
    PyObject *name = PyUnicode_FromStringAndSize(text, (Py_ssize_t)strcspn(text, ":"));
    if (code && name && PyObject_SetAttrString(e, "status", code) == 0 &&
        PyObject_SetAttrString(e, "status_name", name) == 0)
        PyErr_SetObject(DaflError, e);
    Py_XDECREF(code);
    Py_XDECREF(name);
    Py_DECREF(e);
    return NULL;
}

/* DaflError(dafl_status_string(st)). */
static PyObject *raise_status(dafl_status st)
{
    return raise_status_message(st, PyUnicode_FromString(dafl_status_string(st)));
}

/* ---- Stats: an exact dafl_stats ---------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dafl_stats s;
} StatsObject;

/* A heap type made from its spec at import (PyType_FromSpec: a static PyTypeObject is
 * outside the limited API). */
static PyTypeObject *StatsType;

static StatsObject *stats_new_empty(void)
{
    StatsObject *o = PyObject_New(StatsObject, StatsType);
    if (o)
        dafl_stats_init(&o->s);
    return o;
}

static PyObject *Stats_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    StatsObject *o = (StatsObject *)PyType_GenericAlloc(type, 0);
    if (o)
        dafl_stats_init(&o->s);
    return (PyObject *)o;
}

/* Instances of a heap type hold a reference to it. */
static void Stats_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyObject *Stats_combine(StatsObject *self, PyObject *other)
{
    if (!PyObject_TypeCheck(other, StatsType))
        return PyErr_Format(PyExc_TypeError, "Stats.combine: 'other' must be dafl.Stats");
    dafl_status st = dafl_stats_combine(&self->s, &((StatsObject *)other)->s);
    if (st != DAFL_OK)
        return raise_status(st);
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *Stats_reduce(StatsObject *self, PyObject *args)
{
    int reduction;
    float normalizer = 1.0f;
    if (!PyArg_ParseTuple(args, "i|f:reduce", &reduction, &normalizer))
        return NULL;
    float loss;
    dafl_status st = dafl_stats_reduce(&self->s, (dafl_reduction)reduction, normalizer, &loss);
    if (st != DAFL_OK)
        return raise_status(st);
    return PyFloat_FromDouble(loss);
}

static PyObject *Stats_to_bytes(StatsObject *self, PyObject *unused)
{
    (void)unused;
    return PyBytes_FromStringAndSize((const char *)&self->s, sizeof self->s);
}

static PyObject *Stats_from_bytes(PyObject *cls, PyObject *arg)
{
    (void)cls;
    /* Any bytes-like object, read through a memoryview: Py_buffer is outside the 3.9
     * limited API. */
    PyObject *mv = PyMemoryView_FromObject(arg);
    if (!mv)
        return NULL;
    PyObject *bytes = PyBytes_FromObject(mv);
    Py_DECREF(mv);
    char *data;
    Py_ssize_t len;
    if (!bytes || PyBytes_AsStringAndSize(bytes, &data, &len) < 0) {
        Py_XDECREF(bytes);
        return NULL;
    }
    if ((size_t)len != sizeof(dafl_stats)) {
        Py_DECREF(bytes);
        return PyErr_Format(PyExc_ValueError, "Stats.from_bytes: 'data' must be %zu bytes, "
                            "got %zd", sizeof(dafl_stats), len);
    }
    StatsObject *o = stats_new_empty();
    if (o)
        memcpy(&o->s, data, sizeof o->s);
    Py_DECREF(bytes);
    return (PyObject *)o;
}

/* The four statistics, each read by its dafl_stats_* accessor. */
#define STATS_GETTER(name, to_python)                                                    \
    static PyObject *Stats_get_##name(StatsObject *self, void *closure)                  \
    {                                                                                    \
        (void)closure;                                                                   \
        return to_python(dafl_stats_##name(&self->s));                                   \
    }
STATS_GETTER(loss_sum, PyFloat_FromDouble)
STATS_GETTER(positives, PyLong_FromUnsignedLongLong)
STATS_GETTER(elements, PyLong_FromUnsignedLongLong)
STATS_GETTER(weight_sum, PyFloat_FromDouble)
#undef STATS_GETTER

static PyMethodDef Stats_methods[] = {
    {"combine", (PyCFunction)Stats_combine, METH_O,
     "combine(other): self += other, exactly (any order gives the same bits); returns self"},
    {"reduce", (PyCFunction)Stats_reduce, METH_VARARGS,
     "reduce(reduction, normalizer=1.0): the reduced loss one call over the combined data "
     "gives, bit for bit (reduction: a dafl.REDUCTION_* code)"},
    {"to_bytes", (PyCFunction)Stats_to_bytes, METH_NOARGS,
     "the statistics as bytes (to send between processes)"},
    {"from_bytes", (PyCFunction)Stats_from_bytes, METH_O | METH_CLASS,
     "Stats.from_bytes(data): statistics sent by to_bytes()"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Stats_getset[] = {
    {"loss_sum", (getter)Stats_get_loss_sum, NULL, "sum of the per-element losses", NULL},
    {"positives", (getter)Stats_get_positives, NULL, "number of targets equal to 1", NULL},
    {"elements", (getter)Stats_get_elements, NULL,
     "number of elements (softmax focal: non-ignored pixels)", NULL},
    {"weight_sum", (getter)Stats_get_weight_sum, NULL, "what the mean reduction divides by",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot Stats_slots[] = {
    {Py_tp_doc, (void *)"Exact partial statistics of a loss call (dafl_stats): combine "
                        "shards with combine(), get the loss with reduce()."},
    {Py_tp_new, (void *)Stats_new},
    {Py_tp_dealloc, (void *)Stats_dealloc},
    {Py_tp_methods, Stats_methods},
    {Py_tp_getset, Stats_getset},
    {0, NULL}};

static PyType_Spec Stats_spec = {
    .name = "dafl.Stats",
    .basicsize = sizeof(StatsObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Stats_slots,
};

/* ---- keypoint batches (SPEC section 12) --------------------------------------------- */

/* A keypoint batch as the Python layer hands it over: `keypoints` (N, K, 4 or 5) float64,
 * per image K rows of (x, y, class, size[, k]), of which the first counts[i] (int64, (N,))
 * are keypoints - all K when counts is None - and the rest padding; size is the radius
 * (umich) or sigma (msra, distance), k the peak (1 without a fifth column).  Read into
 * an array of dafl_keypoint of one style. */
typedef struct keypoint_list {
    view kp, counts;
    dafl_keypoint *points;
    size_t count, rows;
} keypoint_list;

static void keypoint_list_release(keypoint_list *l)
{
    view_release(&l->kp);
    view_release(&l->counts);
    PyMem_Free(l->points);
    l->points = NULL;
}

static int keypoint_list_get(const char *fn, PyObject *kp_o, PyObject *counts_o, size_t n,
                             size_t c, int style, keypoint_list *l)
{
    memset(l, 0, sizeof *l);
    if (style < DAFL_KEYPOINT_UMICH || style > DAFL_KEYPOINT_DISTANCE) {
        PyErr_Format(PyExc_ValueError, "%s: 'style' %d is not a dafl.KEYPOINT_* code", fn,
                     style);
        return -1;
    }
    if (view_get(fn, kp_o, "keypoints", FLOAT64, &l->kp) < 0 ||
        view_get_opt(fn, counts_o, "counts", INT64, &l->counts) < 0)
        goto fail;
    const DLTensor *t = l->kp.t;
    if (t->ndim != 3 || (size_t)t->shape[0] != n || (t->shape[2] != 4 && t->shape[2] != 5)) {
        PyObject *s = shape_repr(t);
        if (s)
            PyErr_Format(PyExc_ValueError, "%s: 'keypoints' has shape %U, expected (%zu, K, 4) "
                         "or (%zu, K, 5): per image K rows of (x, y, class, size[, k])", fn, s,
                         n, n);
        Py_XDECREF(s);
        goto fail;
    }
    if (l->counts.t && (l->counts.t->ndim != 1 || (size_t)l->counts.t->shape[0] != n)) {
        PyObject *s = shape_repr(l->counts.t);
        if (s)
            PyErr_Format(PyExc_ValueError, "%s: 'counts' has shape %U, expected (%zu,): the "
                         "number of keypoints of each image", fn, s, n);
        Py_XDECREF(s);
        goto fail;
    }
    const size_t rows = (size_t)t->shape[1], cols = (size_t)t->shape[2];
    const int64_t *counts = l->counts.data;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const int64_t k = counts ? counts[i] : (int64_t)rows;
        if (k < 0 || (uint64_t)k > rows) {
            PyErr_Format(PyExc_ValueError, "%s: 'counts'[%zu] is %lld, outside 0..%zu (the "
                         "rows of 'keypoints')", fn, i, (long long)k, rows);
            goto fail;
        }
        total += (size_t)k;
    }
    l->rows = rows;
    l->points = PyMem_Malloc((total ? total : 1) * sizeof *l->points);
    if (!l->points) {
        PyErr_NoMemory();
        goto fail;
    }
    const double *data = l->kp.data;
    for (size_t i = 0; i < n; i++) {
        const size_t k = counts ? (size_t)counts[i] : rows;
        for (size_t j = 0; j < k; j++) {
            const double *r = data + (i * rows + j) * cols;
            /* the class becomes the channel: an integer in 0 .. c-1 (NaN fails) */
            if (!(r[2] >= 0.0 && r[2] < (double)c) || r[2] != (double)(int64_t)r[2]) {
                PyObject *v = PyFloat_FromDouble(r[2]);
                if (v)
                    PyErr_Format(PyExc_ValueError, "%s: 'keypoints'[%zu, %zu, 2], the class, "
                                 "is %R: expected an integer in 0..%zd (C = %zu classes)", fn,
                                 i, j, v, (Py_ssize_t)c - 1, c);
                Py_XDECREF(v);
                goto fail;
            }
            dafl_keypoint p = DAFL_KEYPOINT_INIT;
            p.image = (int64_t)i;
            p.channel = (int64_t)r[2];
            p.x = r[0];
            p.y = r[1];
            p.size = r[3];
            p.k = cols == 5 ? (float)r[4] : 1.0f;
            p.style = (dafl_keypoint_style)style;
            l->points[l->count++] = p;
        }
    }
    return 0;
fail:
    keypoint_list_release(l);
    return -1;
}

/* DaflError for a failing keypoint call: when one keypoint alone fails dafl's checks
 * (each validated against the batch's n and c on an empty plane), the message names it,
 * as 'keypoints'[image, row] with its values. */
static PyObject *raise_keypoint_status(const char *fn, dafl_status st, const keypoint_list *l,
                                       size_t n, size_t c)
{
    size_t bad = l->count;
    if (st == DAFL_ERR_INVALID_PARAMETER || st == DAFL_ERR_INVALID_LABEL ||
        st == DAFL_ERR_INVALID_ENUM)
        for (size_t i = 0; i < l->count && bad == l->count; i++)
            if (dafl_render_heatmaps(&l->points[i], 1, n, c, 0, 0, NULL) != DAFL_OK)
                bad = i;
    const char *text = dafl_status_string(st);
    PyObject *msg;
    if (bad < l->count) {
        const dafl_keypoint *p = &l->points[bad];
        const int64_t *counts = l->counts.data;
        size_t image = 0, row = bad;
        while (row >= (counts ? (size_t)counts[image] : l->rows)) {
            row -= counts ? (size_t)counts[image] : l->rows;
            image++;
        }
        PyObject *x = PyFloat_FromDouble(p->x), *y = PyFloat_FromDouble(p->y);
        PyObject *size = PyFloat_FromDouble(p->size), *k = PyFloat_FromDouble(p->k);
        static const char *hints[] = {
            "umich: x, y and the radius integers, radius >= 0, k in [0, 1]",
            "msra: finite x, y, sigma > 0, k in [0, 1]",
            "distance: integer x, y, sigma > 0, k in [0, 1]"};
        msg = x && y && size && k
                  ? PyUnicode_FromFormat("%s: 'keypoints'[%zu, %zu] (x %R, y %R, size %R, "
                                         "k %R; %s): %s", fn, image, row, x, y, size, k,
                                         hints[p->style], text)
                  : NULL;
        Py_XDECREF(x);
        Py_XDECREF(y);
        Py_XDECREF(size);
        Py_XDECREF(k);
    } else {
        msg = PyUnicode_FromFormat("%s: %s", fn, text);
    }
    return raise_status_message(st, msg);
}

/* ---- losses ------------------------------------------------------------------------ */

/* Every loss entry point has one shape, described by a row of a table (loss_entry): its
 * arguments (keywords, PyArg_ParseTupleAndKeywords format and where each value goes) and
 * how to read its arrays.  run_loss() parses a call's arguments by the row into a
 * loss_call, reads and checks the arrays with the row's read function (each error naming
 * the argument), makes the one libdafl call with the GIL released and returns (the
 * reduced loss, or None for reduction none, and the call's Stats), or raises DaflError. */
typedef enum loss_kind {
    LOSS_PENALTY_FOCAL,
    LOSS_SIGMOID_FOCAL,
    LOSS_BCE_WITH_LOGITS,
    LOSS_SOFTMAX_FOCAL,
    LOSS_MSE,
    LOSS_PENALTY_FOCAL_KEYPOINTS,
} loss_kind;

/* The parameters of a loss: its dafl_*_params. */
typedef union loss_params {
    dafl_penalty_focal_params penalty_focal; /* also penalty_focal_keypoints' */
    dafl_sigmoid_focal_params sigmoid_focal;
    dafl_bce_params bce;
    dafl_softmax_focal_params softmax_focal;
    dafl_mse_params mse;
} loss_params;

/* The parameters are parsed in place, into the members of the loss's dafl_*_params: the
 * enums (reduction, input_mode) and softmax focal's int32_t ignore_index with "i" (which
 * writes an int), flags (uint32_t) with "I" (an unsigned int).  The size of an enum is
 * the compiler's choice: this checks that it is an int's. */
_Static_assert(sizeof(dafl_reduction) == sizeof(int) && sizeof(dafl_input_mode) == sizeof(int)
                   && sizeof(int32_t) == sizeof(int) && sizeof(uint32_t) == sizeof(unsigned),
               "a loss parameter parsed in place is not the size of its format unit's C type");

typedef struct loss_entry loss_entry;

typedef struct loss_call {
    const loss_entry *entry;
    /* The arguments as parsed: the arrays as Python gave them (None where an optional one
     * is absent), and penalty_focal_keypoints' style and softmax focal's channels_last
     * (no params member takes them as they are); then the parameters. */
    struct {
        PyObject *input, *target, *loss, *grad, *weights, *keypoints, *counts;
        int style, channels_last;
        int channel_dim; /* mse: the dimension of the channels in the arrays as given */
    } arg;
    loss_params params;
    /* What the entry's read function makes of the arrays. */
    view input;
    view target;     /* softmax focal: the int32 labels */
    view loss, grad; /* the optional outputs: loss for reduction none, and only then */
    view weights;    /* mse's weights, softmax focal's class weights, BCE's pos_weights */
    size_t n, c, hw; /* images, channels and pixels per channel: mse, softmax focal */
    size_t h, w;     /* penalty_focal_keypoints: the heatmaps' height and width */
    keypoint_list keypoints;
} loss_call;

/* One argument of a loss entry point: its keyword and where its value goes in a loss_call
 * (the entry's format unit at its position says of which C type). */
typedef struct loss_arg {
    const char *keyword;
    size_t offset;
} loss_arg;

#define MAX_LOSS_ARGS 17 /* penalty_focal_keypoints has the most */

struct loss_entry {
    const char *fn;            /* "dafl.<name>", which every error message starts with */
    loss_kind kind;            /* the libdafl call (loss_call_run) */
    int (*read)(loss_call *l); /* reads and checks the arrays: 0, or -1 with the error set */
    const char *format;        /* PyArg_ParseTupleAndKeywords' format, ":<name>" ending it */
    loss_params defaults;      /* DAFL_*_PARAMS_INIT */
    loss_arg args[MAX_LOSS_ARGS + 1]; /* in the order of the format; a NULL keyword ends */
};

static void loss_call_release(loss_call *l)
{
    view_release(&l->input);
    view_release(&l->target);
    view_release(&l->loss);
    view_release(&l->grad);
    view_release(&l->weights);
    keypoint_list_release(&l->keypoints);
}

/* The call's arguments, parsed by its entry into l.  The destinations go to
 * PyArg_ParseTupleAndKeywords as its variadic arguments, MAX_LOSS_ARGS of them whatever the
 * entry: the format reads as many as it has units, and the NULL ones after are not read. */
static int loss_call_parse(loss_call *l, PyObject *args, PyObject *kw)
{
    char *keywords[MAX_LOSS_ARGS + 1] = {NULL};
    void *to[MAX_LOSS_ARGS] = {NULL};
    for (int i = 0; i < MAX_LOSS_ARGS && l->entry->args[i].keyword; i++) {
        keywords[i] = (char *)l->entry->args[i].keyword;
        to[i] = (char *)l + l->entry->args[i].offset;
    }
    return PyArg_ParseTupleAndKeywords(args, kw, l->entry->format, keywords, to[0], to[1],
                                       to[2], to[3], to[4], to[5], to[6], to[7], to[8], to[9],
                                       to[10], to[11], to[12], to[13], to[14], to[15], to[16])
               ? 0
               : -1;
}

/* The reduction in l's params. */
static int loss_call_reduction(const loss_call *l)
{
    const loss_params *p = &l->params;
    switch (l->entry->kind) {
    case LOSS_SIGMOID_FOCAL: return (int)p->sigmoid_focal.reduction;
    case LOSS_BCE_WITH_LOGITS: return (int)p->bce.reduction;
    case LOSS_SOFTMAX_FOCAL: return (int)p->softmax_focal.reduction;
    case LOSS_MSE: return (int)p->mse.reduction;
    default: return (int)p->penalty_focal.reduction; /* and penalty_focal_keypoints */
    }
}

/* The libdafl call of l, writing the loss into `loss` and the statistics into `stats`
 * (made without the GIL: it reads nothing of Python's). */
static dafl_status loss_call_run(const loss_call *l, float *loss, dafl_stats *stats)
{
    const loss_params *p = &l->params;
    /* (float pointers to elements of the params' dtypes, as libdafl takes them) */
    const float *x = l->input.data;
    float *grad = l->grad.data;
    switch (l->entry->kind) {
    case LOSS_PENALTY_FOCAL:
        return dafl_penalty_focal(x, l->target.data, l->input.count, &p->penalty_focal, loss,
                                  grad, stats);
    case LOSS_SIGMOID_FOCAL:
        return dafl_sigmoid_focal(x, l->target.data, l->input.count, &p->sigmoid_focal, loss,
                                  grad, stats);
    case LOSS_BCE_WITH_LOGITS:
        return dafl_bce_with_logits(x, l->target.data, l->input.count, &p->bce, loss, grad,
                                    stats);
    case LOSS_SOFTMAX_FOCAL:
        return dafl_softmax_focal(x, l->target.data, l->n, l->c, l->hw, &p->softmax_focal,
                                  loss, grad, stats);
    case LOSS_MSE:
        return dafl_mse(x, l->target.data, l->n, l->c, l->hw, &p->mse, loss, grad, stats);
    case LOSS_PENALTY_FOCAL_KEYPOINTS:
        return dafl_penalty_focal_keypoints(x, l->n, l->c, l->h, l->w, l->keypoints.points,
                                            l->keypoints.count, &p->penalty_focal, loss, grad,
                                            stats);
    }
    return DAFL_ERR_INVALID_ENUM;
}

/* The element types of the arrays read into the loss's params (SPEC 13): input (or
 * logits), target and grad each as it is, read and written in place by libdafl.  An
 * absent array keeps float32 (a view without an array records it): no grad (nothing is
 * written), the keypoint loss's target (none: its targets are rendered in float32);
 * softmax focal's params have no target dtype (its labels are int32). */
static void loss_call_set_dtypes(loss_call *l)
{
    const dafl_dtype x = l->input.dtype, y = l->target.dtype, g = l->grad.dtype;
    loss_params *p = &l->params;
#define SET_DTYPES(params) \
    ((params).input_dtype = x, (params).target_dtype = y, (params).grad_dtype = g)
    switch (l->entry->kind) {
    case LOSS_PENALTY_FOCAL:
    case LOSS_PENALTY_FOCAL_KEYPOINTS: SET_DTYPES(p->penalty_focal); break;
    case LOSS_SIGMOID_FOCAL: SET_DTYPES(p->sigmoid_focal); break;
    case LOSS_BCE_WITH_LOGITS: SET_DTYPES(p->bce); break;
    case LOSS_MSE: SET_DTYPES(p->mse); break;
    case LOSS_SOFTMAX_FOCAL:
        p->softmax_focal.input_dtype = x;
        p->softmax_focal.grad_dtype = g;
        break;
    }
#undef SET_DTYPES
}

/* A loss entry point: see the top of this section. */
static PyObject *run_loss(const loss_entry *e, PyObject *args, PyObject *kw)
{
    loss_call l = {.entry = e,
                   .arg = {.loss = Py_None, .grad = Py_None, .weights = Py_None,
                           .style = DAFL_KEYPOINT_UMICH, .channel_dim = 1},
                   .params = e->defaults};
    if (loss_call_parse(&l, args, kw) < 0)
        return NULL;
    PyObject *result = NULL;
    StatsObject *stats = e->read(&l) < 0 ? NULL : stats_new_empty();
    if (stats) {
        loss_call_set_dtypes(&l);
        float value = 0.0f; /* the reduced loss, where no per-element loss is written */
        dafl_status st;
        Py_BEGIN_ALLOW_THREADS
        st = loss_call_run(&l, l.loss.t ? l.loss.data : &value, &stats->s);
        Py_END_ALLOW_THREADS
        if (st == DAFL_OK) {
            PyObject *loss = loss_call_reduction(&l) == DAFL_REDUCTION_NONE
                                 ? Py_NewRef(Py_None)
                                 : PyFloat_FromDouble(value);
            result = loss ? Py_BuildValue("(NN)", loss, (PyObject *)stats) : NULL;
            if (!loss)
                Py_DECREF(stats);
        } else {
            Py_DECREF(stats);
            if (e->kind == LOSS_PENALTY_FOCAL_KEYPOINTS)
                raise_keypoint_status(e->fn, st, &l.keypoints, l.n, l.c);
            else
                raise_status(st);
        }
    }
    loss_call_release(&l);
    return result;
}

/* The optional outputs: loss (float32, as libdafl writes every loss), then grad (float32,
 * bfloat16 or float16); their shapes are the loss's to check. */
static int read_outputs(loss_call *l)
{
    const char *fn = l->entry->fn;
    return view_get_opt(fn, l->arg.loss, "loss", FLOAT32, &l->loss) < 0 ||
                   view_get_opt(fn, l->arg.grad, "grad", LOSS_FLOAT, &l->grad) < 0
               ? -1
               : 0;
}

/* A per-element loss is written for reduction none, and a reduced one otherwise. */
static int require_loss_output(const loss_call *l)
{
    if ((loss_call_reduction(l) == DAFL_REDUCTION_NONE) == (l->loss.t != NULL))
        return 0;
    PyErr_Format(PyExc_ValueError, "%s: 'loss' must be an output array exactly when the "
                 "reduction is none", l->entry->fn);
    return -1;
}

/* grad, and loss (reduction none only), in the shape of the input. */
static int require_outputs_like_input(const loss_call *l)
{
    const char *fn = l->entry->fn;
    if (require_same_shape(fn, &l->grad, "grad", &l->input, "input") < 0 ||
        require_same_shape(fn, &l->loss, "loss", &l->input, "input") < 0)
        return -1;
    return require_loss_output(l);
}

/* The element-wise losses (penalty focal, sigmoid focal, BCE, and MSE's elements): input
 * and target of one shape (each float32, bfloat16 or float16), the outputs in that shape
 * too. */
static int read_elementwise(loss_call *l)
{
    const char *fn = l->entry->fn;
    if (view_get(fn, l->arg.input, "input", LOSS_FLOAT, &l->input) < 0 ||
        view_get(fn, l->arg.target, "target", LOSS_FLOAT, &l->target) < 0 ||
        read_outputs(l) < 0 ||
        require_same_shape(fn, &l->target, "target", &l->input, "input") < 0)
        return -1;
    return require_outputs_like_input(l);
}

/* BCE: the element-wise arrays, and optional pos_weights (float32) per class or per image
 * and class, whose layout (channels, channel_stride) libdafl checks. */
static int read_bce(loss_call *l)
{
    const char *fn = l->entry->fn;
    if (read_elementwise(l) < 0 ||
        view_get_opt(fn, l->arg.weights, "pos_weights", FLOAT32, &l->weights) < 0)
        return -1;
    l->params.bce.pos_weights = l->weights.t ? l->weights.data : NULL;
    l->params.bce.pos_weights_count = l->weights.t ? l->weights.count : 0;
    return 0;
}

/* MSE: the element-wise arrays, read as (n, ..., c, ...) with the channels at channel_dim
 * (default 1: (n, c, *spatial); a 1-D input is one image of one channel): the dimensions
 * after it are the channel stride (dafl_mse_params::channel_stride; a channels_last
 * tensor is (n, h, w, c) in memory, channel_dim 3, stride 1), and optional weights per
 * channel (c) or per image and channel (n * c). */
static int read_mse(loss_call *l)
{
    const char *fn = l->entry->fn;
    if (read_elementwise(l) < 0)
        return -1;
    const DLTensor *t = l->input.t;
    const int cdim = l->arg.channel_dim;
    if (t->ndim >= 2 ? cdim < 1 || cdim >= t->ndim : cdim != 1) {
        PyErr_Format(PyExc_ValueError, "%s: 'channel_dim' must be in [1, %d], got %d", fn,
                     t->ndim >= 2 ? t->ndim - 1 : 1, cdim);
        return -1;
    }
    l->n = t->ndim >= 2 ? (size_t)t->shape[0] : 1;
    l->c = t->ndim >= 2 ? (size_t)t->shape[cdim] : 1;
    l->hw = (l->n && l->c) ? l->input.count / l->n / l->c : 0;
    size_t stride = 1;
    for (int d = cdim + 1; d < t->ndim; d++)
        stride *= (size_t)t->shape[d];
    l->params.mse.channel_stride = t->ndim >= 2 && cdim > 1 ? stride : 0;
    if (view_get_opt(fn, l->arg.weights, "weights", FLOAT32, &l->weights) < 0)
        return -1;
    const view *w = &l->weights;
    if (w->t && w->count != l->c && w->count != l->n * l->c) {
        PyErr_Format(PyExc_ValueError, "%s: 'weights' has %zu elements, expected %zu (one per "
                     "channel) or %zu (one per image and channel)", fn, w->count, l->c,
                     l->n * l->c);
        return -1;
    }
    l->params.mse.weights = w->data;
    l->params.mse.weights_count = w->t ? w->count : 0;
    return 0;
}

/* Softmax focal: logits (n, c, *spatial) or, channels last, (n, *spatial, c), float32,
 * bfloat16 or float16; int32 labels (n, *spatial); a per-pixel loss (n * hw elements);
 * class weights (c). */
static int read_softmax_focal(loss_call *l)
{
    const char *fn = l->entry->fn;
    dafl_softmax_focal_params *p = &l->params.softmax_focal;
    p->layout = l->arg.channels_last ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
    if (view_get(fn, l->arg.input, "logits", LOSS_FLOAT, &l->input) < 0)
        return -1;
    const DLTensor *x = l->input.t;
    if (x->ndim < 2) {
        PyErr_Format(PyExc_ValueError, "%s: 'logits' must have a batch and a class "
                     "dimension ((N, C) or (N, C, ...))", fn);
        return -1;
    }
    const int cdim = l->arg.channels_last ? x->ndim - 1 : 1;
    l->n = (size_t)x->shape[0];
    l->c = (size_t)x->shape[cdim];
    l->hw = (l->n && l->c) ? l->input.count / l->n / l->c : 0;
    if (view_get(fn, l->arg.target, "labels", INT32, &l->target) < 0 || read_outputs(l) < 0 ||
        view_get_opt(fn, l->arg.weights, "class_weights", FLOAT32, &l->weights) < 0 ||
        require_same_shape(fn, &l->grad, "grad", &l->input, "logits") < 0)
        return -1;
    const DLTensor *t = l->target.t;
    int labels_ok = t->ndim == x->ndim - 1 && t->shape[0] == x->shape[0];
    for (int d = 1, s = 1; labels_ok && d < x->ndim; d++)
        if (d != cdim)
            labels_ok = t->shape[s++] == x->shape[d];
    if (!labels_ok) {
        PyObject *a = shape_repr(t), *b = shape_repr(x);
        if (a && b)
            PyErr_Format(PyExc_ValueError, "%s: 'labels' has shape %U, expected the shape of "
                         "'logits' %U without its class dimension", fn, a, b);
        Py_XDECREF(a);
        Py_XDECREF(b);
        return -1;
    }
    if (require_count(fn, &l->loss, "loss", l->n * l->hw) < 0 ||
        require_count(fn, &l->weights, "class_weights", l->c) < 0 ||
        require_loss_output(l) < 0)
        return -1;
    p->class_weights = l->weights.data;
    return 0;
}

/* A 4-D (N, C, H, W) array of dtype `want`: the heatmaps of a keypoint batch (float32),
 * or the logits of its loss (LOSS_FLOAT). */
static int view_get_nchw(const char *fn, PyObject *obj, const char *what, DLDataType want,
                         view *v)
{
    if (view_get(fn, obj, what, want, v) < 0)
        return -1;
    if (v->t->ndim == 4)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s: '%s' must be 4-D (N, C, H, W), got %d dimensions", fn,
                 what, v->t->ndim);
    view_release(v);
    return -1;
}

/* The keypoint loss: input (N, C, H, W) float32, bfloat16 or float16, the outputs in its
 * shape, a keypoint batch of N images and C classes. */
static int read_keypoint_loss(loss_call *l)
{
    const char *fn = l->entry->fn;
    if (view_get_nchw(fn, l->arg.input, "input", LOSS_FLOAT, &l->input) < 0 ||
        read_outputs(l) < 0 ||
        require_outputs_like_input(l) < 0)
        return -1;
    const int64_t *shape = l->input.t->shape;
    l->n = (size_t)shape[0];
    l->c = (size_t)shape[1];
    l->h = (size_t)shape[2];
    l->w = (size_t)shape[3];
    return keypoint_list_get(fn, l->arg.keypoints, l->arg.counts, l->n, l->c, l->arg.style,
                             &l->keypoints);
}

/* The table.  ARG: an argument that is no parameter (its keyword the loss_call member's
 * name, or `keyword`); PARAM: a member of the loss's dafl_*_params; REDUCTION_PARAMS: the
 * parameters every loss ends with (format units "iffI"); PENALTY_FOCAL_PARAMS: those of
 * penalty focal, of the grid and of the keypoint batch alike ("ffffiffiffI"). */
#define ARG(name) {#name, offsetof(loss_call, arg.name)}
#define ARG_AS(keyword, name) {keyword, offsetof(loss_call, arg.name)}
#define PARAM(loss, name) {#name, offsetof(loss_call, params.loss.name)}
#define REDUCTION_PARAMS(loss)                                                           \
    PARAM(loss, reduction), PARAM(loss, normalizer), PARAM(loss, grad_scale),            \
        PARAM(loss, flags)
#define PENALTY_FOCAL_PARAMS                                                             \
    PARAM(penalty_focal, alpha), PARAM(penalty_focal, beta),                             \
        PARAM(penalty_focal, pos_weight), PARAM(penalty_focal, neg_weight),              \
        PARAM(penalty_focal, input_mode), PARAM(penalty_focal, clamp_eps),               \
        PARAM(penalty_focal, log_eps), REDUCTION_PARAMS(penalty_focal)

static const loss_entry penalty_focal_entry = {
    "dafl.penalty_focal", LOSS_PENALTY_FOCAL, read_elementwise,
    "OO|OOffffiffiffI:penalty_focal", {.penalty_focal = DAFL_PENALTY_FOCAL_PARAMS_INIT},
    {ARG(input), ARG(target), ARG(loss), ARG(grad), PENALTY_FOCAL_PARAMS}};

static const loss_entry sigmoid_focal_entry = {
    "dafl.sigmoid_focal", LOSS_SIGMOID_FOCAL, read_elementwise, "OO|OOffiffI:sigmoid_focal",
    {.sigmoid_focal = DAFL_SIGMOID_FOCAL_PARAMS_INIT},
    {ARG(input), ARG(target), ARG(loss), ARG(grad), PARAM(sigmoid_focal, gamma),
     PARAM(sigmoid_focal, alpha), REDUCTION_PARAMS(sigmoid_focal)}};

/* channels and channel_stride are size_t, parsed with "n" (a Py_ssize_t; libdafl refuses
 * what a negative one becomes) */
_Static_assert(sizeof(size_t) == sizeof(Py_ssize_t), "size_t parsed as Py_ssize_t");

static const loss_entry bce_with_logits_entry = {
    "dafl.bce_with_logits", LOSS_BCE_WITH_LOGITS, read_bce,
    "OO|OOfiffIOnn:bce_with_logits", {.bce = DAFL_BCE_PARAMS_INIT},
    {ARG(input), ARG(target), ARG(loss), ARG(grad), PARAM(bce, pos_weight),
     REDUCTION_PARAMS(bce), ARG_AS("pos_weights", weights), PARAM(bce, channels),
     PARAM(bce, channel_stride)}};

static const loss_entry mse_entry = {
    "dafl.mse", LOSS_MSE, read_mse, "OO|OOOiffIi:mse", {.mse = DAFL_MSE_PARAMS_INIT},
    {ARG(input), ARG(target), ARG(loss), ARG(grad), ARG(weights), REDUCTION_PARAMS(mse),
     ARG(channel_dim)}};

static const loss_entry softmax_focal_entry = {
    "dafl.softmax_focal", LOSS_SOFTMAX_FOCAL, read_softmax_focal,
    "OO|OOpfiOiffI:softmax_focal", {.softmax_focal = DAFL_SOFTMAX_FOCAL_PARAMS_INIT},
    {ARG_AS("logits", input), ARG_AS("labels", target), ARG(loss), ARG(grad),
     ARG(channels_last), PARAM(softmax_focal, gamma), PARAM(softmax_focal, ignore_index),
     ARG_AS("class_weights", weights), REDUCTION_PARAMS(softmax_focal)}};

static const loss_entry penalty_focal_keypoints_entry = {
    "dafl.penalty_focal_keypoints", LOSS_PENALTY_FOCAL_KEYPOINTS, read_keypoint_loss,
    "OOO|OOiffffiffiffI:penalty_focal_keypoints",
    {.penalty_focal = DAFL_PENALTY_FOCAL_PARAMS_INIT},
    {ARG(input), ARG(keypoints), ARG(counts), ARG(loss), ARG(grad), ARG(style),
     PENALTY_FOCAL_PARAMS}};

#undef ARG
#undef ARG_AS
#undef PARAM
#undef REDUCTION_PARAMS
#undef PENALTY_FOCAL_PARAMS

/* The C functions of the method table: run_loss with the entry point's row. */
#define LOSS_ENTRY_POINT(name)                                                           \
    static PyObject *py_##name(PyObject *self, PyObject *args, PyObject *kw)             \
    {                                                                                    \
        (void)self;                                                                      \
        return run_loss(&name##_entry, args, kw);                                        \
    }
LOSS_ENTRY_POINT(penalty_focal)
LOSS_ENTRY_POINT(sigmoid_focal)
LOSS_ENTRY_POINT(bce_with_logits)
LOSS_ENTRY_POINT(mse)
LOSS_ENTRY_POINT(softmax_focal)
LOSS_ENTRY_POINT(penalty_focal_keypoints)
#undef LOSS_ENTRY_POINT

/* ---- targets ------------------------------------------------------------------------ */

static PyObject *py_count_positives(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"target", "flags", NULL};
    PyObject *target_o;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|I:count_positives", names, &target_o,
                                     &flags))
        return NULL;
    view target;
    if (view_get("dafl.count_positives", target_o, "target", FLOAT32, &target) < 0)
        return NULL;
    uint64_t positives = 0;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_count_positives(target.data, target.count, flags, &positives);
    Py_END_ALLOW_THREADS
    view_release(&target);
    return st == DAFL_OK ? PyLong_FromUnsignedLongLong(positives) : raise_status(st);
}

static PyObject *py_gaussian_radius(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"height", "width", "min_overlap", "variant", NULL};
    double h, w, o = 0.7;
    int variant = DAFL_RADIUS_CORNERNET;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "dd|di:gaussian_radius", names, &h, &w, &o,
                                     &variant))
        return NULL;
    double r = 0.0;
    dafl_status st = dafl_gaussian_radius(h, w, o, (dafl_radius_variant)variant, &r);
    return st == DAFL_OK ? PyFloat_FromDouble(r) : raise_status(st);
}

/* A Gaussian peak to draw into a heatmap: draw_gaussian's or draw_gaussian_sigma's. */
typedef struct gaussian {
    int by_sigma;        /* draw_gaussian_sigma's (x, y, sigma), else draw_gaussian's */
    long cx, cy, radius; /* draw_gaussian: the integer centre and radius, */
    float k;             /* and the peak's value */
    double x, y, sigma;  /* draw_gaussian_sigma: the real centre and sigma */
} gaussian;

/* Draws g into `heatmap`, a writable 2-D float32 array (h, w), in place. */
static PyObject *draw(const char *fn, PyObject *heatmap, const gaussian *g)
{
    view v;
    if (view_get(fn, heatmap, "heatmap", FLOAT32, &v) < 0)
        return NULL;
    if (v.t->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "%s: 'heatmap' must be 2-D (h, w), got %d dimensions",
                     fn, v.t->ndim);
        view_release(&v);
        return NULL;
    }
    const size_t h = (size_t)v.t->shape[0], w = (size_t)v.t->shape[1];
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = g->by_sigma ? dafl_draw_gaussian_sigma(v.data, h, w, g->x, g->y, g->sigma)
                     : dafl_draw_gaussian(v.data, h, w, g->cx, g->cy, g->radius, g->k);
    Py_END_ALLOW_THREADS
    view_release(&v);
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
}

static PyObject *py_draw_gaussian(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"heatmap", "cx", "cy", "radius", "k", NULL};
    PyObject *heatmap;
    gaussian g = {.by_sigma = 0, .k = 1.0f};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Olll|f:draw_gaussian", names, &heatmap, &g.cx,
                                     &g.cy, &g.radius, &g.k))
        return NULL;
    return draw("dafl.draw_gaussian", heatmap, &g);
}

static PyObject *py_draw_gaussian_sigma(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"heatmap", "cx", "cy", "sigma", NULL};
    PyObject *heatmap;
    gaussian g = {.by_sigma = 1};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oddd:draw_gaussian_sigma", names, &heatmap,
                                     &g.x, &g.y, &g.sigma))
        return NULL;
    return draw("dafl.draw_gaussian_sigma", heatmap, &g);
}

static PyObject *py_distance_targets(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"mask", "sigma", "out", NULL};
    PyObject *mask_o, *out_o;
    double sigma;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OdO:distance_targets", names, &mask_o, &sigma,
                                     &out_o))
        return NULL;
    const char *fn = "dafl.distance_targets";
    view mask, out;
    memset(&out, 0, sizeof out);
    PyObject *result = NULL;
    if (view_get(fn, mask_o, "mask", UINT8, &mask) < 0)
        return NULL;
    if (mask.t->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "%s: 'mask' must be 2-D (h, w)", fn);
        goto done;
    }
    if (view_get(fn, out_o, "out", FLOAT32, &out) < 0 ||
        require_same_shape(fn, &out, "out", &mask, "mask") < 0)
        goto done;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_distance_targets(mask.data, (size_t)mask.t->shape[0], (size_t)mask.t->shape[1],
                               sigma, out.data);
    Py_END_ALLOW_THREADS
    result = st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
done:
    view_release(&mask);
    view_release(&out);
    return result;
}

static PyObject *py_render_heatmaps(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"keypoints", "counts", "out", "style", NULL};
    PyObject *keypoints, *counts, *out_o;
    int style = DAFL_KEYPOINT_UMICH;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|i:render_heatmaps", names, &keypoints,
                                     &counts, &out_o, &style))
        return NULL;
    const char *fn = "dafl.render_heatmaps";
    view out;
    keypoint_list l;
    if (view_get_nchw(fn, out_o, "out", FLOAT32, &out) < 0)
        return NULL;
    const int64_t *shape = out.t->shape;
    const size_t n = (size_t)shape[0], c = (size_t)shape[1];
    const size_t h = (size_t)shape[2], w = (size_t)shape[3];
    PyObject *result = NULL;
    if (keypoint_list_get(fn, keypoints, counts, n, c, style, &l) == 0) {
        dafl_status st;
        Py_BEGIN_ALLOW_THREADS
        st = dafl_render_heatmaps(l.points, l.count, n, c, h, w, out.data);
        Py_END_ALLOW_THREADS
        result = st == DAFL_OK ? Py_NewRef(Py_None) : raise_keypoint_status(fn, st, &l, n, c);
        keypoint_list_release(&l);
    }
    view_release(&out);
    return result;
}

/* ---- ISA, threads, version ----------------------------------------------------------- */

/* The int argument of a one-argument entry point (a dafl_isa or dafl_status code, taken
 * as C takes an int), or -1 with the exception set. */
static int int_arg(PyObject *arg, int *value)
{
    long v = PyLong_AsLong(arg);
    *value = (int)v;
    return v == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    int isa;
    if (int_arg(arg, &isa) < 0)
        return NULL;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_set_isa((dafl_isa)isa);
    Py_END_ALLOW_THREADS
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
}

static PyObject *py_set_threads(PyObject *self, PyObject *arg)
{
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || n > DAFL_MAX_THREADS) /* never truncated to an int */
        return PyErr_Format(PyExc_ValueError, "set_threads: 'threads' must be in [0, %d], "
                            "got %ld", DAFL_MAX_THREADS, n);
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS /* may wait for the pool's threads */
    st = dafl_set_threads((int)n);
    Py_END_ALLOW_THREADS
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
}

static PyObject *py_stop_threads(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS /* waits for a call that is using the pool */
    dafl_stop_threads();
    Py_END_ALLOW_THREADS
    return Py_NewRef(Py_None);
}

/* The entry points that only report a value, one line each: those without an argument */
#define REPORT(name, value)                                                              \
    static PyObject *py_##name(PyObject *self, PyObject *unused)                         \
    {                                                                                    \
        (void)self;                                                                      \
        (void)unused;                                                                    \
        return value;                                                                    \
    }
REPORT(active_isa, PyLong_FromLong(dafl_active_isa()))
REPORT(threads, PyLong_FromLong(dafl_threads()))
REPORT(version, PyUnicode_FromString(dafl_version()))
REPORT(version_number, PyLong_FromLong(dafl_version_number()))
#undef REPORT

/* and those of one int argument (an ISA or status code), which `value` reads as `code`. */
#define REPORT_OF_CODE(name, value)                                                      \
    static PyObject *py_##name(PyObject *self, PyObject *arg)                            \
    {                                                                                    \
        (void)self;                                                                      \
        int code;                                                                        \
        return int_arg(arg, &code) < 0 ? NULL : (value);                                 \
    }
REPORT_OF_CODE(isa_available, PyBool_FromLong(dafl_isa_available((dafl_isa)code)))
REPORT_OF_CODE(isa_name, PyUnicode_FromString(dafl_isa_name((dafl_isa)code)))
REPORT_OF_CODE(status_string, PyUnicode_FromString(dafl_status_string((dafl_status)code)))
#undef REPORT_OF_CODE

#define KW(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS, doc}
static PyMethodDef methods[] = {
    KW(penalty_focal, "dafl_penalty_focal on C-contiguous CPU arrays: input, target and grad "
       "float32, bfloat16 or float16 (each its own), a per-element loss float32"),
    KW(sigmoid_focal, "dafl_sigmoid_focal on C-contiguous CPU arrays (dtypes as "
       "penalty_focal)"),
    KW(bce_with_logits, "dafl_bce_with_logits on C-contiguous CPU arrays (dtypes as "
       "penalty_focal); pos_weights (float32, per class or per image and class), channels "
       "and channel_stride as in dafl_bce_params"),
    KW(softmax_focal, "dafl_softmax_focal: logits (N, C, ...) or channels last, float32, "
       "bfloat16 or float16 (grad likewise), int32 labels"),
    KW(mse, "dafl_mse on (N, C, ...) arrays (dtypes as penalty_focal), float32 weights per "
       "channel or image-channel; channel_dim: where the channels are (default 1; a "
       "channels_last tensor's memory order (N, H, W, C) is 3)"),
    KW(count_positives, "dafl_count_positives"),
    KW(gaussian_radius, "dafl_gaussian_radius"),
    KW(draw_gaussian, "dafl_draw_gaussian into a 2-D float32 heatmap, in place"),
    KW(draw_gaussian_sigma, "dafl_draw_gaussian_sigma into a 2-D float32 heatmap, in place"),
    KW(distance_targets, "dafl_distance_targets of a 2-D uint8 mask into a float32 array"),
    KW(render_heatmaps, "dafl_render_heatmaps: keypoints (N, K, 4|5) float64, counts (N,) "
       "int64 or None, into out (N, C, H, W) float32"),
    KW(penalty_focal_keypoints, "dafl_penalty_focal_keypoints: input (N, C, H, W) float32, "
       "bfloat16 or float16 (grad likewise), "
       "keypoints (N, K, 4|5) float64, counts (N,) int64 or None"),
    {"stop_threads", py_stop_threads, METH_NOARGS, "dafl_stop_threads"},
    {"set_isa", py_set_isa, METH_O, "dafl_set_isa"},
    {"active_isa", py_active_isa, METH_NOARGS, "dafl_active_isa"},
    {"isa_available", py_isa_available, METH_O, "dafl_isa_available"},
    {"isa_name", py_isa_name, METH_O, "dafl_isa_name"},
    {"set_threads", py_set_threads, METH_O, "dafl_set_threads"},
    {"threads", py_threads, METH_NOARGS, "dafl_threads"},
    {"version", py_version, METH_NOARGS, "dafl_version"},
    {"version_number", py_version_number, METH_NOARGS, "dafl_version_number"},
    {"status_string", py_status_string, METH_O, "dafl_status_string"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dafl._dafl",
    "libdafl's entry points on DLPack arrays (see the dafl package for the friendly API)",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__dafl(void)
{
    if (!StatsType && !(StatsType = (PyTypeObject *)PyType_FromSpec(&Stats_spec)))
        return NULL;
    if (!dlpack_method && !(dlpack_method = PyUnicode_InternFromString("__dlpack__")))
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    DaflError = PyErr_NewExceptionWithDoc(
        "dafl.DaflError", "A libdafl call failed: the message is dafl_status_string(); "
        ".status is the dafl_status code, .status_name its name.",
        PyExc_ValueError, NULL);
    if (!DaflError || PyModule_AddObjectRef(m, "DaflError", DaflError) < 0 ||
        PyModule_AddObjectRef(m, "Stats", (PyObject *)StatsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    struct { const char *name; long value; } constants[] = {
        {"REDUCTION_NONE", DAFL_REDUCTION_NONE}, {"REDUCTION_SUM", DAFL_REDUCTION_SUM},
        {"REDUCTION_MEAN", DAFL_REDUCTION_MEAN}, {"REDUCTION_POSITIVES", DAFL_REDUCTION_POSITIVES},
        {"REDUCTION_NORMALIZER", DAFL_REDUCTION_NORMALIZER},
        {"INPUT_LOGITS", DAFL_INPUT_LOGITS}, {"INPUT_PROBABILITIES", DAFL_INPUT_PROBABILITIES},
        {"INPUT_CLAMPED_LOGITS", DAFL_INPUT_CLAMPED_LOGITS},
        {"RADIUS_CORNERNET", DAFL_RADIUS_CORNERNET}, {"RADIUS_EXACT", DAFL_RADIUS_EXACT},
        {"ISA_AUTO", DAFL_ISA_AUTO}, {"ISA_SCALAR", DAFL_ISA_SCALAR}, {"ISA_AVX2", DAFL_ISA_AVX2},
        {"ISA_AVX512", DAFL_ISA_AVX512}, {"ISA_NEON", DAFL_ISA_NEON},
        {"FLAG_TRUST_TARGETS", DAFL_FLAG_TRUST_TARGETS},
        {"BLOCK_ELEMENTS", DAFL_BLOCK_ELEMENTS}, {"MAX_THREADS", DAFL_MAX_THREADS},
        {"MIN_PARALLEL_ELEMENTS", DAFL_MIN_PARALLEL_ELEMENTS},
        {"KEYPOINT_UMICH", DAFL_KEYPOINT_UMICH}, {"KEYPOINT_MSRA", DAFL_KEYPOINT_MSRA},
        {"KEYPOINT_DISTANCE", DAFL_KEYPOINT_DISTANCE},
        {"VERSION_NUMBER", DAFL_VERSION_NUMBER},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
