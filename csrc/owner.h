/* Creating and closing interpreters; each has an owner thread (see owner.c). */
#ifndef XI_OWNER_H
#define XI_OWNER_H

#include "interp.h"

/* Creates an interpreter whose sys.path is `sys_path` (a list; its str items are
 * copied), with `config` (NULL: the isolated configuration, its own GIL); with
 * bind_main, its __main__ starts with sys and pickle (as in extrainterpreters 0.3.0).
 * On success *out holds a new reference to the record. */
xi_err xi_interp_create(xi_state *st, PyObject *sys_path, const PyInterpreterConfig *config,
                        int bind_main, xi_interp **out);

/* Ends the interpreter and waits for it. XI_OK when it is closed (or was already). */
xi_err xi_interp_close(xi_interp *rec);

/* The owning handle is gone: close the interpreter as soon as it is idle, without
 * waiting. */
void xi_interp_orphan(xi_interp *rec);

/* Closes every interpreter made by this library, waiting for running calls to finish;
 * no interpreter can be created afterwards. Run once, at exit. Calls running on the OS
 * threads `daemons` (n of them: the main interpreter's threads that exit does not
 * join) are interrupted instead, again while they keep the interpreter busy. Ctrl-C
 * while it waits interrupts the calls still running and every wait on a shared object
 * (xi_interrupt_waits), so that the threads the closing interpreters join can end. */
void xi_interp_close_all(const unsigned long *daemons, Py_ssize_t n);

#endif /* XI_OWNER_H */
