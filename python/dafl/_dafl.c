/*
 * dafl._dafl — the C face of libdafl for Python.
 *
 * Every array crosses through DLPack: the extension calls the object's __dlpack__(),
 * reads the DLManagedTensor it gets (device, dtype, shape, strides) and uses the data
 * pointer in place, so a C-contiguous float32 CPU tensor (torch) or array (numpy) is
 * never copied.  This layer converts nothing: anything but the exact dtype, a CPU
 * device and a C-contiguous layout is refused with TypeError / ValueError naming the
 * argument.  The documented one-copy conversions (other strides, other float dtypes)
 * live in the pure-Python layer above (dafl/_convert.py).
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
#include <stdint.h>
#include <string.h>

#include <dafl.h>

static PyObject *DaflError;

/* ---- DLPack views ---------------------------------------------------------------- */

typedef struct view {
    PyObject *capsule; /* owns the DLManagedTensor while the view is used */
    DLTensor *t;
    void *data;        /* t->data + t->byte_offset */
    size_t count;      /* number of elements */
} view;

static void view_release(view *v)
{
    Py_CLEAR(v->capsule);
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

/* Borrow obj's memory through DLPack.  `what` names the argument in errors; `code` /
 * `bits` the one dtype accepted.  Refuses (with the view left empty) a non-CPU device,
 * another dtype, and any layout but C-contiguous (strides NULL, or the compact ones;
 * dimensions of extent 1 may carry any stride). */
static int view_get(PyObject *fn, PyObject *obj, const char *what, uint8_t code,
                    uint8_t bits, view *v)
{
    memset(v, 0, sizeof *v);
    PyObject *capsule = PyObject_CallMethod(obj, "__dlpack__", NULL);
    if (!capsule) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            /* (the type's __name__: its tp_name is outside the limited API) */
            PyObject *type_name = PyObject_GetAttrString((PyObject *)Py_TYPE(obj), "__name__");
            if (!type_name)
                PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%U: '%s' must be an array or tensor with "
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
        PyErr_Format(PyExc_TypeError, "%U: '%s' gave no unversioned DLPack capsule",
                     fn, what);
        return -1;
    }
    DLTensor *t = &m->dl_tensor;
    v->capsule = capsule;
    v->t = t;
    if (t->device.device_type != kDLCPU) {
        PyErr_Format(PyExc_ValueError, "%U: '%s' is on the %s device; dafl computes on the "
                     "CPU (move it with .cpu())", fn, what, device_name(t->device.device_type));
        goto fail;
    }
    if (t->dtype.code != code || t->dtype.bits != bits || t->dtype.lanes != 1) {
        DLDataType want = {code, bits, 1};
        PyErr_Format(PyExc_TypeError, "%U: '%s' must be %s, got %s", fn, what,
                     dtype_name(want), dtype_name(t->dtype));
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
            PyErr_Format(PyExc_ValueError, "%U: '%s' has an invalid size", fn, what);
            goto fail;
        }
        if (t->strides && !empty && n > 1 && t->strides[d] != expect) {
            PyErr_Format(PyExc_ValueError, "%U: '%s' must be C-contiguous", fn, what);
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
static int view_get_opt(PyObject *fn, PyObject *obj, const char *what, uint8_t code,
                        uint8_t bits, view *v)
{
    if (obj == Py_None) {
        memset(v, 0, sizeof *v);
        return 0;
    }
    return view_get(fn, obj, what, code, bits, v);
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
static int require_same_shape(PyObject *fn, const view *v, const char *what,
                              const view *ref, const char *ref_name)
{
    if (!v->t || same_shape(v->t, ref->t))
        return 0;
    PyObject *a = shape_repr(v->t), *b = shape_repr(ref->t);
    if (a && b)
        PyErr_Format(PyExc_ValueError, "%U: '%s' has shape %U, expected the shape of "
                     "'%s' %U", fn, what, a, ref_name, b);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return -1;
}

static int require_count(PyObject *fn, const view *v, const char *what, size_t count)
{
    if (!v->t || v->count == count)
        return 0;
    PyErr_Format(PyExc_ValueError, "%U: '%s' has %zu elements, expected %zu", fn, what,
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

static PyObject *Stats_get_loss_sum(StatsObject *self, void *c)
{
    (void)c;
    return PyFloat_FromDouble(dafl_stats_loss_sum(&self->s));
}
static PyObject *Stats_get_positives(StatsObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(dafl_stats_positives(&self->s));
}
static PyObject *Stats_get_elements(StatsObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(dafl_stats_elements(&self->s));
}
static PyObject *Stats_get_weight_sum(StatsObject *self, void *c)
{
    (void)c;
    return PyFloat_FromDouble(dafl_stats_weight_sum(&self->s));
}

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

/* ---- element-wise losses --------------------------------------------------------- */

/* The buffers of an element-wise loss: input and target of one shape, optional
 * per-element loss (reduction none) and gradient of that shape. */
typedef struct elementwise {
    view input, target, loss, grad;
} elementwise;

static void elementwise_release(elementwise *e)
{
    view_release(&e->input);
    view_release(&e->target);
    view_release(&e->loss);
    view_release(&e->grad);
}

static int elementwise_get(PyObject *fn, PyObject *input, PyObject *target, PyObject *loss,
                           PyObject *grad, int reduction, elementwise *e)
{
    memset(e, 0, sizeof *e);
    if (view_get(fn, input, "input", kDLFloat, 32, &e->input) < 0 ||
        view_get(fn, target, "target", kDLFloat, 32, &e->target) < 0 ||
        view_get_opt(fn, loss, "loss", kDLFloat, 32, &e->loss) < 0 ||
        view_get_opt(fn, grad, "grad", kDLFloat, 32, &e->grad) < 0 ||
        require_same_shape(fn, &e->target, "target", &e->input, "input") < 0 ||
        require_same_shape(fn, &e->grad, "grad", &e->input, "input") < 0 ||
        require_same_shape(fn, &e->loss, "loss", &e->input, "input") < 0)
        goto fail;
    if ((reduction == DAFL_REDUCTION_NONE) != (e->loss.t != NULL)) {
        PyErr_Format(PyExc_ValueError, "%U: 'loss' must be an output array exactly when the "
                     "reduction is none", fn);
        goto fail;
    }
    return 0;
fail:
    elementwise_release(e);
    return -1;
}

/* The reduced loss (None for reduction none) and the call's Stats. */
static PyObject *loss_result(dafl_status st, int reduction, float loss, StatsObject *stats)
{
    if (st != DAFL_OK) {
        Py_DECREF(stats);
        return raise_status(st);
    }
    PyObject *l = reduction == DAFL_REDUCTION_NONE ? Py_NewRef(Py_None)
                                                   : PyFloat_FromDouble(loss);
    return l ? Py_BuildValue("(NN)", l, (PyObject *)stats) : NULL;
}

#define FN_NAME(s) PyUnicode_FromString("dafl." s)

/* The three element-wise losses with a sigmoid take the same buffers and differ only in
 * their parameter struct: one adapter each, so that reading the tensors, the call with
 * the GIL released and the result are written once (run_elementwise). */
typedef dafl_status (*elementwise_call)(const float *input, const float *target, size_t count,
                                        const void *params, float *loss, float *grad,
                                        dafl_stats *stats);

static dafl_status call_penalty_focal(const float *x, const float *y, size_t n, const void *p,
                                      float *loss, float *grad, dafl_stats *stats)
{
    return dafl_penalty_focal(x, y, n, p, loss, grad, stats);
}

static dafl_status call_sigmoid_focal(const float *x, const float *y, size_t n, const void *p,
                                      float *loss, float *grad, dafl_stats *stats)
{
    return dafl_sigmoid_focal(x, y, n, p, loss, grad, stats);
}

static dafl_status call_bce_with_logits(const float *x, const float *y, size_t n,
                                        const void *p, float *loss, float *grad,
                                        dafl_stats *stats)
{
    return dafl_bce_with_logits(x, y, n, p, loss, grad, stats);
}

static PyObject *run_elementwise(const char *name, PyObject *input, PyObject *target,
                                 PyObject *loss_o, PyObject *grad_o, int reduction,
                                 elementwise_call call, const void *params)
{
    PyObject *fn = PyUnicode_FromFormat("dafl.%s", name);
    elementwise e;
    int bad = !fn || elementwise_get(fn, input, target, loss_o, grad_o, reduction, &e) < 0;
    Py_XDECREF(fn);
    if (bad)
        return NULL;
    StatsObject *stats = stats_new_empty();
    if (!stats) {
        elementwise_release(&e);
        return NULL;
    }
    float loss = 0.0f;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = call(e.input.data, e.target.data, e.input.count, params,
              e.loss.t ? e.loss.data : &loss, e.grad.data, &stats->s);
    Py_END_ALLOW_THREADS
    elementwise_release(&e);
    return loss_result(st, reduction, loss, stats);
}

static PyObject *py_penalty_focal(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "target", "loss", "grad", "alpha", "beta", "pos_weight",
                            "neg_weight", "input_mode", "clamp_eps", "log_eps", "reduction",
                            "normalizer", "grad_scale", "flags", NULL};
    PyObject *input, *target, *loss_o = Py_None, *grad_o = Py_None;
    dafl_penalty_focal_params p = DAFL_PENALTY_FOCAL_PARAMS_INIT;
    int mode = p.input_mode, reduction = p.reduction;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOffffiffiffI:penalty_focal", names,
                                     &input, &target, &loss_o, &grad_o, &p.alpha, &p.beta,
                                     &p.pos_weight, &p.neg_weight, &mode, &p.clamp_eps,
                                     &p.log_eps, &reduction, &p.normalizer, &p.grad_scale,
                                     &flags))
        return NULL;
    p.input_mode = (dafl_input_mode)mode;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    return run_elementwise("penalty_focal", input, target, loss_o, grad_o, reduction,
                           call_penalty_focal, &p);
}

static PyObject *py_sigmoid_focal(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "target", "loss", "grad", "gamma", "alpha", "reduction",
                            "normalizer", "grad_scale", "flags", NULL};
    PyObject *input, *target, *loss_o = Py_None, *grad_o = Py_None;
    dafl_sigmoid_focal_params p = DAFL_SIGMOID_FOCAL_PARAMS_INIT;
    int reduction = p.reduction;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOffiffI:sigmoid_focal", names, &input,
                                     &target, &loss_o, &grad_o, &p.gamma, &p.alpha,
                                     &reduction, &p.normalizer, &p.grad_scale, &flags))
        return NULL;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    return run_elementwise("sigmoid_focal", input, target, loss_o, grad_o, reduction,
                           call_sigmoid_focal, &p);
}

static PyObject *py_bce_with_logits(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "target", "loss", "grad", "pos_weight", "reduction",
                            "normalizer", "grad_scale", "flags", NULL};
    PyObject *input, *target, *loss_o = Py_None, *grad_o = Py_None;
    dafl_bce_params p = DAFL_BCE_PARAMS_INIT;
    int reduction = p.reduction;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOfiffI:bce_with_logits", names, &input,
                                     &target, &loss_o, &grad_o, &p.pos_weight, &reduction,
                                     &p.normalizer, &p.grad_scale, &flags))
        return NULL;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    return run_elementwise("bce_with_logits", input, target, loss_o, grad_o, reduction,
                           call_bce_with_logits, &p);
}

/* ---- NCHW losses: softmax focal and MSE ------------------------------------------ */

static PyObject *py_softmax_focal(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"logits", "labels", "loss", "grad", "channels_last", "gamma",
                            "ignore_index", "class_weights", "reduction", "normalizer",
                            "grad_scale", "flags", NULL};
    PyObject *logits_o, *labels_o, *loss_o = Py_None, *grad_o = Py_None, *w_o = Py_None;
    dafl_softmax_focal_params p = DAFL_SOFTMAX_FOCAL_PARAMS_INIT;
    int channels_last = 0, reduction = p.reduction, ignore_index = p.ignore_index;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOpfiOiffI:softmax_focal", names,
                                     &logits_o, &labels_o, &loss_o, &grad_o, &channels_last,
                                     &p.gamma, &ignore_index, &w_o, &reduction,
                                     &p.normalizer, &p.grad_scale, &flags))
        return NULL;
    p.layout = channels_last ? DAFL_LAYOUT_NHWC : DAFL_LAYOUT_NCHW;
    p.ignore_index = ignore_index;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    PyObject *fn = FN_NAME("softmax_focal");
    if (!fn)
        return NULL;
    view x, lab, loss, grad, w;
    memset(&lab, 0, sizeof lab);
    memset(&loss, 0, sizeof loss);
    memset(&grad, 0, sizeof grad);
    memset(&w, 0, sizeof w);
    PyObject *result = NULL;
    if (view_get(fn, logits_o, "logits", kDLFloat, 32, &x) < 0)
        goto done;
    if (x.t->ndim < 2) {
        PyErr_Format(PyExc_ValueError, "%U: 'logits' must have a batch and a class "
                     "dimension ((N, C) or (N, C, ...))", fn);
        goto done;
    }
    /* n images, c classes, hw pixels: (n, c, *spatial) or, channels last,
     * (n, *spatial, c); labels are (n, *spatial). */
    const DLTensor *xt = x.t;
    int cdim = channels_last ? xt->ndim - 1 : 1;
    size_t n = (size_t)xt->shape[0], c = (size_t)xt->shape[cdim];
    size_t hw = (n && c) ? x.count / n / c : 0;
    if (view_get(fn, labels_o, "labels", kDLInt, 32, &lab) < 0 ||
        view_get_opt(fn, loss_o, "loss", kDLFloat, 32, &loss) < 0 ||
        view_get_opt(fn, grad_o, "grad", kDLFloat, 32, &grad) < 0 ||
        view_get_opt(fn, w_o, "class_weights", kDLFloat, 32, &w) < 0 ||
        require_same_shape(fn, &grad, "grad", &x, "logits") < 0)
        goto done;
    int labels_ok = lab.t->ndim == xt->ndim - 1 && lab.t->shape[0] == xt->shape[0];
    for (int d = 1, s = 1; labels_ok && d < xt->ndim; d++)
        if (d != cdim)
            labels_ok = lab.t->shape[s++] == xt->shape[d];
    if (!labels_ok) {
        PyObject *a = shape_repr(lab.t), *b = shape_repr(xt);
        if (a && b)
            PyErr_Format(PyExc_ValueError, "%U: 'labels' has shape %U, expected the shape of "
                         "'logits' %U without its class dimension", fn, a, b);
        Py_XDECREF(a);
        Py_XDECREF(b);
        goto done;
    }
    if (require_count(fn, &loss, "loss", n * hw) < 0 ||
        require_count(fn, &w, "class_weights", c) < 0)
        goto done;
    if ((reduction == DAFL_REDUCTION_NONE) != (loss.t != NULL)) {
        PyErr_Format(PyExc_ValueError, "%U: 'loss' must be an output array exactly when the "
                     "reduction is none", fn);
        goto done;
    }
    p.class_weights = w.data;
    StatsObject *stats = stats_new_empty();
    if (!stats)
        goto done;
    float l = 0.0f;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_softmax_focal(x.data, lab.data, n, c, hw, &p, loss.t ? loss.data : &l,
                            grad.data, &stats->s);
    Py_END_ALLOW_THREADS
    result = loss_result(st, reduction, l, stats);
done:
    view_release(&x);
    view_release(&lab);
    view_release(&loss);
    view_release(&grad);
    view_release(&w);
    Py_DECREF(fn);
    return result;
}

static PyObject *py_mse(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "target", "loss", "grad", "weights", "reduction",
                            "normalizer", "grad_scale", "flags", NULL};
    PyObject *input, *target, *loss_o = Py_None, *grad_o = Py_None, *w_o = Py_None;
    dafl_mse_params p = DAFL_MSE_PARAMS_INIT;
    int reduction = p.reduction;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOiffI:mse", names, &input, &target,
                                     &loss_o, &grad_o, &w_o, &reduction, &p.normalizer,
                                     &p.grad_scale, &flags))
        return NULL;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    PyObject *fn = FN_NAME("mse");
    if (!fn)
        return NULL;
    elementwise e;
    view w;
    memset(&w, 0, sizeof w);
    PyObject *result = NULL;
    if (elementwise_get(fn, input, target, loss_o, grad_o, reduction, &e) < 0) {
        Py_DECREF(fn);
        return NULL;
    }
    /* (n, c, *spatial); a 1-D input is one image of one channel */
    const DLTensor *t = e.input.t;
    size_t n = t->ndim >= 2 ? (size_t)t->shape[0] : 1;
    size_t c = t->ndim >= 2 ? (size_t)t->shape[1] : 1;
    size_t hw = (n && c) ? e.input.count / n / c : 0;
    if (view_get_opt(fn, w_o, "weights", kDLFloat, 32, &w) < 0)
        goto done;
    if (w.t && w.count != c && w.count != n * c) {
        PyErr_Format(PyExc_ValueError, "%U: 'weights' has %zu elements, expected %zu (one per "
                     "channel) or %zu (one per image and channel)", fn, w.count, c, n * c);
        goto done;
    }
    p.weights = w.data;
    p.weights_count = w.t ? w.count : 0;
    StatsObject *stats = stats_new_empty();
    if (!stats)
        goto done;
    float l = 0.0f;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_mse(e.input.data, e.target.data, n, c, hw, &p, e.loss.t ? e.loss.data : &l,
                  e.grad.data, &stats->s);
    Py_END_ALLOW_THREADS
    result = loss_result(st, reduction, l, stats);
done:
    elementwise_release(&e);
    view_release(&w);
    Py_DECREF(fn);
    return result;
}

/* ---- targets ------------------------------------------------------------------------ */

static PyObject *py_count_positives(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"target", "flags", NULL};
    PyObject *target;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|I:count_positives", names, &target, &flags))
        return NULL;
    PyObject *fn = FN_NAME("count_positives");
    view v;
    int bad = !fn || view_get(fn, target, "target", kDLFloat, 32, &v) < 0;
    Py_XDECREF(fn);
    if (bad)
        return NULL;
    uint64_t positives = 0;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_count_positives(v.data, v.count, flags, &positives);
    Py_END_ALLOW_THREADS
    view_release(&v);
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

/* A writable 2-D float32 heatmap (h, w). */
static int heatmap_get(PyObject *fn, PyObject *obj, view *v)
{
    if (view_get(fn, obj, "heatmap", kDLFloat, 32, v) < 0)
        return -1;
    if (v->t->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "%U: 'heatmap' must be 2-D (h, w), got %d dimensions",
                     fn, v->t->ndim);
        view_release(v);
        return -1;
    }
    return 0;
}

static PyObject *py_draw_gaussian(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"heatmap", "cx", "cy", "radius", "k", NULL};
    PyObject *hm;
    long cx, cy, radius;
    float k = 1.0f;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Olll|f:draw_gaussian", names, &hm, &cx, &cy,
                                     &radius, &k))
        return NULL;
    PyObject *fn = FN_NAME("draw_gaussian");
    view v;
    int bad = !fn || heatmap_get(fn, hm, &v) < 0;
    Py_XDECREF(fn);
    if (bad)
        return NULL;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_draw_gaussian(v.data, (size_t)v.t->shape[0], (size_t)v.t->shape[1], cx, cy,
                            radius, k);
    Py_END_ALLOW_THREADS
    view_release(&v);
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
}

static PyObject *py_draw_gaussian_sigma(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"heatmap", "cx", "cy", "sigma", NULL};
    PyObject *hm;
    double cx, cy, sigma;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oddd:draw_gaussian_sigma", names, &hm, &cx,
                                     &cy, &sigma))
        return NULL;
    PyObject *fn = FN_NAME("draw_gaussian_sigma");
    view v;
    int bad = !fn || heatmap_get(fn, hm, &v) < 0;
    Py_XDECREF(fn);
    if (bad)
        return NULL;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_draw_gaussian_sigma(v.data, (size_t)v.t->shape[0], (size_t)v.t->shape[1], cx,
                                  cy, sigma);
    Py_END_ALLOW_THREADS
    view_release(&v);
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
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
    PyObject *fn = FN_NAME("distance_targets");
    if (!fn)
        return NULL;
    view m, out;
    memset(&out, 0, sizeof out);
    PyObject *result = NULL;
    if (view_get(fn, mask_o, "mask", kDLUInt, 8, &m) < 0)
        goto done;
    if (m.t->ndim != 2) {
        PyErr_Format(PyExc_ValueError, "%U: 'mask' must be 2-D (h, w)", fn);
        goto done;
    }
    if (view_get(fn, out_o, "out", kDLFloat, 32, &out) < 0 ||
        require_same_shape(fn, &out, "out", &m, "mask") < 0)
        goto done;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_distance_targets(m.data, (size_t)m.t->shape[0], (size_t)m.t->shape[1], sigma,
                               out.data);
    Py_END_ALLOW_THREADS
    result = st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
done:
    view_release(&m);
    view_release(&out);
    Py_DECREF(fn);
    return result;
}

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

static int keypoint_list_get(PyObject *fn, PyObject *kp_o, PyObject *counts_o, size_t n,
                             size_t c, int style, keypoint_list *l)
{
    memset(l, 0, sizeof *l);
    if (style < DAFL_KEYPOINT_UMICH || style > DAFL_KEYPOINT_DISTANCE) {
        PyErr_Format(PyExc_ValueError, "%U: 'style' %d is not a dafl.KEYPOINT_* code", fn,
                     style);
        return -1;
    }
    if (view_get(fn, kp_o, "keypoints", kDLFloat, 64, &l->kp) < 0 ||
        view_get_opt(fn, counts_o, "counts", kDLInt, 64, &l->counts) < 0)
        goto fail;
    const DLTensor *t = l->kp.t;
    if (t->ndim != 3 || (size_t)t->shape[0] != n || (t->shape[2] != 4 && t->shape[2] != 5)) {
        PyObject *s = shape_repr(t);
        if (s)
            PyErr_Format(PyExc_ValueError, "%U: 'keypoints' has shape %U, expected (%zu, K, 4) "
                         "or (%zu, K, 5): per image K rows of (x, y, class, size[, k])", fn, s,
                         n, n);
        Py_XDECREF(s);
        goto fail;
    }
    if (l->counts.t && (l->counts.t->ndim != 1 || (size_t)l->counts.t->shape[0] != n)) {
        PyObject *s = shape_repr(l->counts.t);
        if (s)
            PyErr_Format(PyExc_ValueError, "%U: 'counts' has shape %U, expected (%zu,): the "
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
            PyErr_Format(PyExc_ValueError, "%U: 'counts'[%zu] is %lld, outside 0..%zu (the "
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
                    PyErr_Format(PyExc_ValueError, "%U: 'keypoints'[%zu, %zu, 2], the class, "
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
static PyObject *raise_keypoint_status(PyObject *fn, dafl_status st, const keypoint_list *l,
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
                  ? PyUnicode_FromFormat("%U: 'keypoints'[%zu, %zu] (x %R, y %R, size %R, "
                                         "k %R; %s): %s", fn, image, row, x, y, size, k,
                                         hints[p->style], text)
                  : NULL;
        Py_XDECREF(x);
        Py_XDECREF(y);
        Py_XDECREF(size);
        Py_XDECREF(k);
    } else {
        msg = PyUnicode_FromFormat("%U: %s", fn, text);
    }
    return raise_status_message(st, msg);
}

static PyObject *py_render_heatmaps(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"keypoints", "counts", "out", "style", NULL};
    PyObject *kp_o, *counts_o, *out_o;
    int style = DAFL_KEYPOINT_UMICH;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|i:render_heatmaps", names, &kp_o,
                                     &counts_o, &out_o, &style))
        return NULL;
    PyObject *fn = FN_NAME("render_heatmaps");
    if (!fn)
        return NULL;
    view out;
    keypoint_list l;
    memset(&l, 0, sizeof l);
    PyObject *result = NULL;
    if (view_get(fn, out_o, "out", kDLFloat, 32, &out) < 0)
        goto done;
    if (out.t->ndim != 4) {
        PyErr_Format(PyExc_ValueError, "%U: 'out' must be 4-D (N, C, H, W), got %d "
                     "dimensions", fn, out.t->ndim);
        goto done;
    }
    const size_t n = (size_t)out.t->shape[0], c = (size_t)out.t->shape[1];
    const size_t h = (size_t)out.t->shape[2], w = (size_t)out.t->shape[3];
    if (keypoint_list_get(fn, kp_o, counts_o, n, c, style, &l) < 0)
        goto done;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_render_heatmaps(l.points, l.count, n, c, h, w, out.data);
    Py_END_ALLOW_THREADS
    result = st == DAFL_OK ? Py_NewRef(Py_None) : raise_keypoint_status(fn, st, &l, n, c);
done:
    view_release(&out);
    keypoint_list_release(&l);
    Py_DECREF(fn);
    return result;
}

static PyObject *py_penalty_focal_keypoints(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"input", "keypoints", "counts", "loss", "grad", "style", "alpha",
                            "beta", "pos_weight", "neg_weight", "input_mode", "clamp_eps",
                            "log_eps", "reduction", "normalizer", "grad_scale", "flags", NULL};
    PyObject *x_o, *kp_o, *counts_o, *loss_o = Py_None, *grad_o = Py_None;
    dafl_penalty_focal_params p = DAFL_PENALTY_FOCAL_PARAMS_INIT;
    int style = DAFL_KEYPOINT_UMICH, mode = p.input_mode, reduction = p.reduction;
    unsigned int flags = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO|OOiffffiffiffI:penalty_focal_keypoints",
                                     names, &x_o, &kp_o, &counts_o, &loss_o, &grad_o, &style,
                                     &p.alpha, &p.beta, &p.pos_weight, &p.neg_weight, &mode,
                                     &p.clamp_eps, &p.log_eps, &reduction, &p.normalizer,
                                     &p.grad_scale, &flags))
        return NULL;
    p.input_mode = (dafl_input_mode)mode;
    p.reduction = (dafl_reduction)reduction;
    p.flags = flags;
    PyObject *fn = FN_NAME("penalty_focal_keypoints");
    if (!fn)
        return NULL;
    view x, loss, grad;
    memset(&loss, 0, sizeof loss);
    memset(&grad, 0, sizeof grad);
    keypoint_list l;
    memset(&l, 0, sizeof l);
    PyObject *result = NULL;
    if (view_get(fn, x_o, "input", kDLFloat, 32, &x) < 0)
        goto done;
    if (x.t->ndim != 4) {
        PyErr_Format(PyExc_ValueError, "%U: 'input' must be 4-D (N, C, H, W), got %d "
                     "dimensions", fn, x.t->ndim);
        goto done;
    }
    if (view_get_opt(fn, loss_o, "loss", kDLFloat, 32, &loss) < 0 ||
        view_get_opt(fn, grad_o, "grad", kDLFloat, 32, &grad) < 0 ||
        require_same_shape(fn, &grad, "grad", &x, "input") < 0 ||
        require_same_shape(fn, &loss, "loss", &x, "input") < 0)
        goto done;
    if ((reduction == DAFL_REDUCTION_NONE) != (loss.t != NULL)) {
        PyErr_Format(PyExc_ValueError, "%U: 'loss' must be an output array exactly when the "
                     "reduction is none", fn);
        goto done;
    }
    const size_t n = (size_t)x.t->shape[0], c = (size_t)x.t->shape[1];
    const size_t h = (size_t)x.t->shape[2], w = (size_t)x.t->shape[3];
    if (keypoint_list_get(fn, kp_o, counts_o, n, c, style, &l) < 0)
        goto done;
    StatsObject *stats = stats_new_empty();
    if (!stats)
        goto done;
    float value = 0.0f;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_penalty_focal_keypoints(x.data, n, c, h, w, l.points, l.count, &p,
                                      loss.t ? loss.data : &value, grad.data, &stats->s);
    Py_END_ALLOW_THREADS
    if (st != DAFL_OK) {
        Py_DECREF(stats);
        raise_keypoint_status(fn, st, &l, n, c);
    } else {
        result = loss_result(st, reduction, value, stats);
    }
done:
    view_release(&x);
    view_release(&loss);
    view_release(&grad);
    keypoint_list_release(&l);
    Py_DECREF(fn);
    return result;
}

/* ---- ISA, threads, version ----------------------------------------------------------- */

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    int isa = (int)PyLong_AsLong(arg);
    if (isa == -1 && PyErr_Occurred())
        return NULL;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS
    st = dafl_set_isa((dafl_isa)isa);
    Py_END_ALLOW_THREADS
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
}

static PyObject *py_active_isa(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(dafl_active_isa());
}

static PyObject *py_isa_available(PyObject *self, PyObject *arg)
{
    (void)self;
    int isa = (int)PyLong_AsLong(arg);
    if (isa == -1 && PyErr_Occurred())
        return NULL;
    return PyBool_FromLong(dafl_isa_available((dafl_isa)isa));
}

static PyObject *py_isa_name(PyObject *self, PyObject *arg)
{
    (void)self;
    int isa = (int)PyLong_AsLong(arg);
    if (isa == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(dafl_isa_name((dafl_isa)isa));
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

static PyObject *py_threads(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(dafl_threads());
}

static PyObject *py_version(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(dafl_version());
}

static PyObject *py_version_number(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(dafl_version_number());
}

static PyObject *py_status_string(PyObject *self, PyObject *arg)
{
    (void)self;
    int st = (int)PyLong_AsLong(arg);
    if (st == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(dafl_status_string((dafl_status)st));
}

#define KW(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_VARARGS | METH_KEYWORDS, doc}
static PyMethodDef methods[] = {
    KW(penalty_focal, "dafl_penalty_focal on float32 C-contiguous CPU arrays"),
    KW(sigmoid_focal, "dafl_sigmoid_focal on float32 C-contiguous CPU arrays"),
    KW(bce_with_logits, "dafl_bce_with_logits on float32 C-contiguous CPU arrays"),
    KW(softmax_focal, "dafl_softmax_focal: logits (N, C, ...) or channels last, int32 labels"),
    KW(mse, "dafl_mse on (N, C, ...) float32 arrays, weights per channel or image-channel"),
    KW(count_positives, "dafl_count_positives"),
    KW(gaussian_radius, "dafl_gaussian_radius"),
    KW(draw_gaussian, "dafl_draw_gaussian into a 2-D float32 heatmap, in place"),
    KW(draw_gaussian_sigma, "dafl_draw_gaussian_sigma into a 2-D float32 heatmap, in place"),
    KW(distance_targets, "dafl_distance_targets of a 2-D uint8 mask into a float32 array"),
    KW(render_heatmaps, "dafl_render_heatmaps: keypoints (N, K, 4|5) float64, counts (N,) "
       "int64 or None, into out (N, C, H, W) float32"),
    KW(penalty_focal_keypoints, "dafl_penalty_focal_keypoints: input (N, C, H, W) float32, "
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
