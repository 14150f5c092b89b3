/* The state accessors (see state.h). */
#include "state.h"

#include <string.h>

xi_state *
xi_current_state(void)
{
    PyObject *dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
    if (dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no interpreter dict");
        return NULL;
    }
    PyObject *mod = PyDict_GetItemString(dict, XI_MODULE_KEY); /* borrowed */
    if (mod == NULL) {
        PyObject *m = PyImport_ImportModule(XI_MODULE_KEY);
        if (m == NULL) {
            return NULL;
        }
        Py_DECREF(m);
        mod = PyDict_GetItemString(dict, XI_MODULE_KEY);
        if (mod == NULL) {
            PyErr_SetString(PyExc_RuntimeError, XI_MODULE_KEY " is not initialised");
            return NULL;
        }
    }
    return xi_state_of(mod);
}

xi_state *
xi_loaded_state(void)
{
    PyObject *dict = PyInterpreterState_GetDict(PyInterpreterState_Get());
    PyObject *mod = dict ? PyDict_GetItemString(dict, XI_MODULE_KEY) : NULL;
    return mod ? xi_state_of(mod) : NULL;
}

PyObject *
xi_execution_failed(xi_state *st)
{
    if (st->ExecutionFailed == NULL) {
        /* the call imports, so another thread of this interpreter may get here too
         * meanwhile: the first class stored is the one every caller gets */
        PyObject *cls = PyObject_CallNoArgs(st->make_execution_failed);
        if (cls == NULL) {
            return NULL;
        }
        if (st->ExecutionFailed == NULL) {
            st->ExecutionFailed = cls;
        }
        else {
            Py_DECREF(cls);
        }
    }
    return st->ExecutionFailed;
}

/* The call xi_call_in_main() prepared for _call_pending (this thread only). */
static _Thread_local PyObject *pending_func, *pending_args, *pending_kwargs;

int
xi_take_pending_call(PyObject **func, PyObject **args, PyObject **kwargs)
{
    *func = pending_func;
    *args = pending_args;
    *kwargs = pending_kwargs;
    if (*func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no call is pending");
        return -1;
    }
    pending_func = pending_args = pending_kwargs = NULL;
    return 0;
}

/* Whether value, bound to key in __main__, is one of the names every interpreter of this
 * library starts with (__init__.py, _bind_main): sys, or pickle (the module or its
 * stand-in). */
static int
is_default_main_name(PyObject *key, PyObject *value)
{
    int is_sys = PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, "sys") == 0;
    int is_pickle = PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, "pickle") == 0;
    if (!is_sys && !is_pickle) {
        return 0;
    }
    if (is_pickle && strcmp(Py_TYPE(value)->tp_name, "_PickleOnFirstUse") == 0) {
        return 1;
    }
    PyObject *mod = PyImport_GetModule(key); /* new reference, or NULL */
    if (mod == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(mod);
    return mod == value;
}

/* A copy of a function defined in another interpreter's __main__ (sent by value) whose
 * globals are this interpreter's __main__. The names the function brought that __main__
 * lacks are added to it; the names __main__ has already win, except the default names
 * sys and pickle (is_default_main_name), which give way to the function's own. */
static PyObject *
rebind_to_main(PyObject *func, PyObject *globals, int merge)
{
    PyObject *old = PyFunction_GetGlobals(func), *key, *value;
    Py_ssize_t pos = 0;
    while (merge && PyDict_Next(old, &pos, &key, &value)) {
        PyObject *has = PyDict_SetDefault(globals, key, value); /* borrowed */
        if (has == NULL) {
            return NULL;
        }
        if (has != value && is_default_main_name(key, has) &&
                PyDict_SetItem(globals, key, value) < 0) {
            return NULL;
        }
    }
    PyObject *qualname = PyObject_GetAttrString(func, "__qualname__");
    if (qualname == NULL) {
        return NULL;
    }
    PyObject *nf = PyFunction_NewWithQualName(PyFunction_GetCode(func), globals, qualname);
    Py_DECREF(qualname);
    if (nf == NULL) {
        return NULL;
    }
    PyObject *d = PyFunction_GetDefaults(func), *kwd = PyFunction_GetKwDefaults(func);
    PyObject *closure = PyFunction_GetClosure(func);
    if ((d && PyFunction_SetDefaults(nf, d) < 0) ||
        (kwd && PyFunction_SetKwDefaults(nf, kwd) < 0) ||
        (closure && PyFunction_SetClosure(nf, closure) < 0)) {
        Py_DECREF(nf);
        return NULL;
    }
    static const char *attrs[] = {"__name__", "__dict__", "__module__", "__doc__"};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        PyObject *v = PyObject_GetAttrString(func, attrs[i]);
        if (v == NULL || PyObject_SetAttrString(nf, attrs[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(nf);
            return NULL;
        }
        Py_DECREF(v);
    }
    return nf;
}

/* Whether (1) or not (0) a function is a copy sent by value (defined in a function of
 * another module, so not importable by name) that uses no global and no closure
 * variable: its globals hold only the names that cloudpickle gives every such copy. The
 * standard library runs these "stateless" functions in the target's __main__; so does a
 * call here. -1 with the exception set when interrupted. */
static int
is_stateless_copy(PyObject *func, PyObject *modname)
{
    if (PyFunction_GetClosure(func) != NULL) {
        return 0;
    }
    static const char *const base[] = {"__builtins__", "__file__", "__name__", "__package__",
                                       "__path__"};
    PyObject *g = PyFunction_GetGlobals(func), *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(g, &pos, &key, &value)) {
        int known = 0;
        for (size_t i = 0; PyUnicode_Check(key) && i < sizeof(base) / sizeof(base[0]); i++) {
            known |= PyUnicode_CompareWithASCIIString(key, base[i]) == 0;
        }
        if (!known) {
            return 0;
        }
    }
    PyObject *mod = PyImport_GetModule(modname); /* new reference, or NULL */
    if (mod == NULL) {
        if (PyErr_Occurred() && (PyErr_ExceptionMatches(PyExc_MemoryError) ||
                                 !PyErr_ExceptionMatches(PyExc_Exception))) {
            return -1; /* Ctrl-C, exit or no memory: it goes out */
        }
        PyErr_Clear();
        return 1;
    }
    int copy = !PyModule_Check(mod) || PyModule_GetDict(mod) != g;
    Py_DECREF(mod);
    return copy;
}

PyObject *
xi_call_in_main(xi_state *st, PyObject *func, PyObject *args, PyObject *kwargs)
{
    PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *globals = main ? PyModule_GetDict(main) : NULL;
    if (globals == NULL) {
        return NULL;
    }
    Py_INCREF(func);
    if (PyFunction_Check(func) && PyFunction_GetGlobals(func) != globals) {
        PyObject *modname = PyFunction_GetModule(func); /* borrowed */
        if (modname != NULL && PyUnicode_Check(modname)) {
            int from_main = PyUnicode_CompareWithASCIIString(modname, "__main__") == 0;
            int stateless = from_main ? 0 : is_stateless_copy(func, modname);
            if (stateless < 0) {
                Py_DECREF(func);
                return NULL;
            }
            if (from_main || stateless) {
                Py_SETREF(func, rebind_to_main(func, globals, from_main));
                if (func == NULL) {
                    return NULL;
                }
            }
        }
    }
    /* a profile or trace function may make a call of its own in between: restored */
    PyObject *saved_func = pending_func, *saved_args = pending_args;
    PyObject *saved_kwargs = pending_kwargs;
    pending_func = func;
    pending_args = args;
    pending_kwargs = kwargs;
    PyObject *result = PyEval_EvalCode(st->call_code, globals, globals);
    pending_func = saved_func;
    pending_args = saved_args;
    pending_kwargs = saved_kwargs;
    Py_DECREF(func);
    return result;
}
