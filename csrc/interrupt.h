/* interrupt(): raises KeyboardInterrupt in the calls running in an interpreter,
 * delivered by a thread of its own (see interrupt.c and callctx.h). */
#ifndef XI_INTERRUPT_H
#define XI_INTERRUPT_H

#include "interp.h"

/* Raises KeyboardInterrupt in every call running in the interpreter. Does not wait. */
xi_err xi_interp_interrupt(xi_interp *rec);

/* The same, for the calls that the OS thread `ident` runs there only (0: every call). */
xi_err xi_interp_interrupt_thread(xi_interp *rec, unsigned long ident);

/* The class of the asynchronous exception that interrupt() arms (module state). */
extern PyType_Spec xi_interrupt_spec;

/* A call of `rec` has returned (xi_callctx_end), in rec's interpreter: watching for a
 * held interrupt ends once none is held. */
void xi_interrupt_call_ended(xi_interp *rec);

#endif /* XI_INTERRUPT_H */
