/* What an extension module declares about subinterpreters (see extinfo.h). */
#include "extinfo.h"

PyObject *
xi_mod_extension_kind(PyObject *Py_UNUSED(self), PyObject *module)
{
    if (!PyModule_Check(module)) {
        return PyErr_Format(PyExc_TypeError, "expected a module, not %.200s",
                            Py_TYPE(module)->tp_name);
    }
    PyModuleDef *def = PyModule_GetDef(module);
    if (def == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return Py_BuildValue("(OOO)", Py_None, Py_None, Py_None);
    }
    if (def->m_slots == NULL) {
        return Py_BuildValue("(sOO)", "single-phase", Py_None, Py_None);
    }
    PyObject *multi = Py_NewRef(Py_None), *gil = Py_NewRef(Py_None);
    for (PyModuleDef_Slot *slot = def->m_slots; slot->slot != 0; slot++) {
        PyObject **target = NULL;
        if (slot->slot == Py_mod_multiple_interpreters) {
            target = &multi;
        }
#ifdef Py_mod_gil
        else if (slot->slot == Py_mod_gil) {
            target = &gil;
        }
#endif
        if (target != NULL) {
            PyObject *value = PyLong_FromVoidPtr(slot->value);
            if (value == NULL) {
                Py_DECREF(multi);
                Py_DECREF(gil);
                return NULL;
            }
            Py_SETREF(*target, value);
        }
    }
    PyObject *result = Py_BuildValue("(sNN)", "multi-phase", multi, gil);
    return result;
}
