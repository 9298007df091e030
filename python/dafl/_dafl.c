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
#include <Python.h>

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
            PyErr_Format(PyExc_TypeError, "%U: '%s' must be an array or tensor with "
                         "__dlpack__ (numpy >= 1.22, torch), not %.100s", fn, what,
                         Py_TYPE(obj)->tp_name);
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
    size_t count = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        if (n < 0 || (n && count > SIZE_MAX / (size_t)n)) {
            PyErr_Format(PyExc_ValueError, "%U: '%s' has an invalid size", fn, what);
            goto fail;
        }
        if (t->strides && n > 1 && t->strides[d] != expect) {
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
    for (int d = 0; d < t->ndim; d++)
        PyTuple_SET_ITEM(dims, d, PyLong_FromLongLong(t->shape[d]));
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

/* DaflError(dafl_status_string(st)) with .status = st and .status_name. */
static PyObject *raise_status(dafl_status st)
{
    const char *text = dafl_status_string(st);
    PyObject *e = PyObject_CallFunction(DaflError, "s", text);
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

/* ---- Stats: an exact dafl_stats ---------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    dafl_stats s;
} StatsObject;

static PyTypeObject StatsType;

static StatsObject *stats_new_empty(void)
{
    StatsObject *o = PyObject_New(StatsObject, &StatsType);
    if (o)
        dafl_stats_init(&o->s);
    return o;
}

static PyObject *Stats_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    (void)args;
    (void)kw;
    StatsObject *o = (StatsObject *)type->tp_alloc(type, 0);
    if (o)
        dafl_stats_init(&o->s);
    return (PyObject *)o;
}

static PyObject *Stats_combine(StatsObject *self, PyObject *other)
{
    if (!PyObject_TypeCheck(other, &StatsType))
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
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if ((size_t)b.len != sizeof(dafl_stats)) {
        PyBuffer_Release(&b);
        return PyErr_Format(PyExc_ValueError, "Stats.from_bytes: 'data' must be %zu bytes, "
                            "got %zd", sizeof(dafl_stats), b.len);
    }
    StatsObject *o = stats_new_empty();
    if (o)
        memcpy(&o->s, b.buf, sizeof o->s);
    PyBuffer_Release(&b);
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

static PyTypeObject StatsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dafl.Stats",
    .tp_basicsize = sizeof(StatsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Exact partial statistics of a loss call (dafl_stats): combine shards with "
              "combine(), get the loss with reduce().",
    .tp_new = Stats_new,
    .tp_methods = Stats_methods,
    .tp_getset = Stats_getset,
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
    int n = (int)PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    dafl_status st;
    Py_BEGIN_ALLOW_THREADS /* may wait for the pool's threads */
    st = dafl_set_threads(n);
    Py_END_ALLOW_THREADS
    return st == DAFL_OK ? Py_NewRef(Py_None) : raise_status(st);
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
    if (PyType_Ready(&StatsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    DaflError = PyErr_NewExceptionWithDoc(
        "dafl.DaflError", "A libdafl call failed: the message is dafl_status_string(); "
        ".status is the dafl_status code, .status_name its name.",
        PyExc_ValueError, NULL);
    if (!DaflError || PyModule_AddObjectRef(m, "DaflError", DaflError) < 0 ||
        PyModule_AddObjectRef(m, "Stats", (PyObject *)&StatsType) < 0) {
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
        {"VERSION_NUMBER", DAFL_VERSION_NUMBER},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
