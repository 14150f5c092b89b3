/* Loans: large immutable Queue items that stay where they were put until read.
 *
 * Serializing an item into raw memory at put() and rebuilding it at get() copies a
 * large item twice. When everything a borrowed packet points into is immutable (its
 * stream and `bytes` segments), put() lends the packet instead: it keeps pointing into
 * objects of the putting interpreter (the lender), and get() copies once. Those
 * objects may only be touched by their own interpreter, hence:
 *
 *   - A getter pins the packet while it reads it (xi_loan_pin/xi_loan_unpin); it
 *     never waits for anything but the lender's mutex.
 *   - Once read, the packet's storage is returned to the lender (any thread, no GIL
 *     needed) and released there on its next put() or get() (xi_lender_collect), or
 *     when it ends.
 *   - When the lending interpreter ends (xi_lender_close), it copies every loan still
 *     out into an owned packet, each once nobody reads it: an item outlives the
 *     interpreter that put it, lent or not.
 *   - An interpreter has at most XI_LEND_MAX bytes lent (out or not yet released) at a
 *     time; beyond that, put() copies.
 *
 * A lent packet's `store` is XI_STORE_LENT (packet.h); its `lender` is set once,
 * before the packet is published, and holds a reference; its `loan` is guarded by the
 * lender's mutex. xi_packet_release hands it back through the hook that loan.c
 * installs (xi_packet_set_lent_hook). */
#ifndef XI_LOAN_H
#define XI_LOAN_H

#include "packet.h"

/* Packets smaller than this are copied: a loan is worth its bookkeeping only for
 * large items. */
#define XI_LEND_MIN (64 * 1024)
#define XI_LEND_MAX ((Py_ssize_t)64 * 1024 * 1024)

/* In the interpreter of `st`, with its GIL held. */

/* Lends a borrowed value packet if it is large, immutable and within the budget:
 * returns 1 (the packet is lent), or 0 (unchanged: the caller copies it). */
int xi_lend_large(xi_state *st, xi_packet *pkt);

static inline int
xi_lend(xi_state *st, xi_packet *pkt)
{
    if (pkt->nsegs == 0 && pkt->size < XI_LEND_MIN) {
        return 0; /* the common case: a small item */
    }
    return xi_lend_large(st, pkt);
}

/* Releases the storage of loans that came back. Cheap when none did. */
void xi_lender_collect_returned(xi_state *st);

static inline void
xi_lender_collect(xi_state *st)
{
    if (st->lender != NULL) {
        xi_lender_collect_returned(st);
    }
}

/* At the end of the interpreter: turns the loans still out into owned packets (a
 * loan being read, once it is unpinned), releases the rest and lends no more.
 * Idempotent. At the end of the main interpreter (`at_exit`) it waits at most a second
 * for readers, since a daemon thread may be reading: loans still read then are left as
 * they are (the main interpreter's objects are not freed). */
void xi_lender_close(xi_state *st, int at_exit);

/* Drops the module state's reference (after xi_lender_close). */
void xi_lender_forget(xi_state *st);

/* Anywhere, with the GIL of some interpreter held. */

/* Before reading a packet that may be lent: keeps its lender from ending meanwhile. */
void xi_loan_pin_lent(xi_packet *pkt);
void xi_loan_unpin_lent(xi_packet *pkt);

static inline void
xi_loan_pin(xi_packet *pkt)
{
    if (pkt->lender != NULL) {
        xi_loan_pin_lent(pkt);
    }
}

static inline void
xi_loan_unpin(xi_packet *pkt)
{
    if (pkt->lender != NULL) {
        xi_loan_unpin_lent(pkt);
    }
}

/* (loans out, loans returned and not yet released, bytes lent) of the current
 * interpreter, for tests. */
PyObject *xi_lender_stats(xi_state *st);

#endif /* XI_LOAN_H */
