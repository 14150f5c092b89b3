/* Loans (see loan.h). */
#include "loan.h"

#include <errno.h>

typedef struct xi_loan {
    struct xi_loan *prev, *next;  /* out: doubly linked; returned: `next` only */
    xi_packet *pkt;               /* while out: the packet reading the storage */
    Py_ssize_t bytes;
    int pinned;                   /* a getter is reading it */
    /* the storage, moved here from the packet when it is returned */
    PyObject *keep;
    Py_buffer *views;
    Py_ssize_t nviews;
    void *block;
} xi_loan;

enum {
    XI_LENDING = 0,
    XI_CLOSING = 1,   /* its interpreter is ending: lends no more, copies its loans */
    XI_CLOSED = 2,    /* every loan was copied or released; lends no more */
    XI_ABANDONED = 3, /* the main interpreter ended with a loan being read */
};

typedef struct xi_lender {
    _Atomic Py_ssize_t refcnt;    /* the module state, and every lent packet */
    xi_mutex mu;
    xi_cond changed;              /* a loan was unpinned */
    xi_loan *out;
    xi_loan *returned;
    _Atomic int pending;          /* returned != NULL, readable without the lock */
    Py_ssize_t bytes;             /* out and returned */
    int readers;                  /* pinned loans */
    int state;
} xi_lender;

static void
lender_decref(xi_lender *L)
{
    if (atomic_fetch_sub(&L->refcnt, 1) == 1) {
        /* nothing is lent any more: every loan holds its packet's reference, and the
         * last returned loans were released by xi_lender_close */
        xi_cond_fini(&L->changed);
        xi_mutex_fini(&L->mu);
        PyMem_RawFree(L);
    }
}

static void return_lent(xi_packet *pkt);

static xi_lender *
lender_of(xi_state *st)
{
    if (st->lender == NULL) {
        xi_packet_set_lent_hook(return_lent); /* before any packet is lent */
        xi_lender *L = PyMem_RawCalloc(1, sizeof(xi_lender));
        if (L == NULL) {
            return NULL;
        }
        atomic_init(&L->refcnt, 1);
        atomic_init(&L->pending, 0);
        xi_mutex_init(&L->mu);
        xi_cond_init(&L->changed);
        st->lender = L;
    }
    return st->lender;
}

int
xi_lend_large(xi_state *st, xi_packet *pkt)
{
    if (st->lending_closed || !xi_packet_is_borrowed(pkt) || pkt->kind != XI_PKT_VALUE ||
        pkt->fdata != NULL || pkt->lender != NULL) {
        return 0;
    }
    Py_ssize_t bytes = pkt->size;
    for (Py_ssize_t i = 0; i < pkt->nsegs; i++) {
        if (pkt->segs[i].kind != XI_SEG_BYTES && pkt->segs[i].kind != XI_SEG_STR) {
            return 0; /* mutable: the item is what it was at put() time */
        }
        bytes += pkt->segs[i].len;
    }
    for (Py_ssize_t i = 0; i < pkt->npieces; i++) {
        if (!pkt->pieces[i].readonly) {
            return 0; /* a bytearray in the stream */
        }
    }
    if (bytes < XI_LEND_MIN || bytes > XI_LEND_MAX) {
        return 0;
    }
    xi_lender *L = lender_of(st);
    xi_loan *loan = L ? PyMem_RawCalloc(1, sizeof(xi_loan)) : NULL;
    if (loan == NULL) {
        return 0; /* copying needs memory too, and reports its lack */
    }
    xi_lock(&L->mu);
    if (L->state != XI_LENDING || L->bytes + bytes > XI_LEND_MAX) {
        xi_unlock(&L->mu);
        PyMem_RawFree(loan);
        return 0;
    }
    L->bytes += bytes;
    loan->bytes = bytes;
    loan->pkt = pkt;
    loan->next = L->out;
    if (L->out != NULL) {
        L->out->prev = loan;
    }
    L->out = loan;
    pkt->loan = loan;
    pkt->lender = L;
    pkt->store = XI_STORE_LENT;
    atomic_fetch_add(&L->refcnt, 1);
    xi_unlock(&L->mu);
    return 1;
}

static void
unlink_out(xi_lender *L, xi_loan *loan)
{
    if (loan->prev != NULL) {
        loan->prev->next = loan->next;
    }
    else {
        L->out = loan->next;
    }
    if (loan->next != NULL) {
        loan->next->prev = loan->prev;
    }
    loan->prev = loan->next = NULL;
}

/* xi_packet_release's hook (packet.h): hands a lent packet's storage back to its
 * lender and drops the packet's reference to it. Needs no GIL of the lender. */
static void
return_lent(xi_packet *pkt)
{
    xi_lender *L = pkt->lender;
    if (L == NULL) {
        return;
    }
    xi_lock(&L->mu);
    xi_loan *loan = pkt->loan;
    if (loan != NULL) {
        unlink_out(L, loan);
        loan->pkt = NULL;
        loan->keep = pkt->keep;
        loan->views = pkt->views;
        loan->nviews = pkt->nsegs + pkt->npieces;
        loan->block = pkt->block;
        pkt->keep = NULL;
        pkt->views = NULL;
        pkt->block = NULL;
        pkt->segs = NULL;
        pkt->nsegs = 0;
        pkt->pieces = NULL;
        pkt->npieces = 0;
        pkt->loan = NULL;
        pkt->store = XI_STORE_NONE;
        loan->next = L->returned;
        L->returned = loan;
        atomic_store_explicit(&L->pending, 1, memory_order_release);
    }
    /* else: copied when its lender ended; the packet owns its storage now (OWNED, or
     * NONE when lost) */
    xi_unlock(&L->mu);
    pkt->lender = NULL;
    lender_decref(L);
}

/* Releases returned loans; with the lender's GIL held, without its mutex. */
static void
release_loans(xi_loan *loan)
{
    while (loan != NULL) {
        xi_loan *next = loan->next;
        for (Py_ssize_t i = 0; loan->views != NULL && i < loan->nviews; i++) {
            PyBuffer_Release(&loan->views[i]);
        }
        Py_XDECREF(loan->keep);
        PyMem_RawFree(loan->block);
        PyMem_RawFree(loan);
        loan = next;
    }
}

static xi_loan *
take_returned_locked(xi_lender *L)
{
    xi_loan *list = L->returned;
    for (xi_loan *l = list; l != NULL; l = l->next) {
        L->bytes -= l->bytes;
    }
    L->returned = NULL;
    atomic_store_explicit(&L->pending, 0, memory_order_relaxed);
    return list;
}

void
xi_lender_collect_returned(xi_state *st)
{
    xi_lender *L = st->lender;
    if (L == NULL || !atomic_load_explicit(&L->pending, memory_order_acquire)) {
        return;
    }
    xi_lock(&L->mu);
    xi_loan *list = take_returned_locked(L);
    xi_unlock(&L->mu);
    release_loans(list);
}

/* Turns a lent packet into an owned one, or into an XI_PKT_LOST packet when there is
 * no memory for the copy. Under the lender's mutex, with its GIL held. The packet's
 * `lender` and `refs` stay as they are: getters read `lender` without the mutex. */
static void
own_or_lose(xi_packet *pkt)
{
    pkt->loan = NULL;
    pkt->store = XI_STORE_BORROWED; /* the loan's storage, ours again: copied here */
    if (xi_packet_own(pkt) == 0) {
        return;
    }
    PyErr_Clear();
    xi_packet storage = *pkt; /* the borrowed storage alone, released here */
    storage.lender = NULL;
    storage.loan = NULL;
    storage.refs = (xi_refs){0};
    xi_packet_release(&storage);
    pkt->kind = XI_PKT_LOST;
    pkt->marshal = 0;
    pkt->data = NULL;
    pkt->size = 0;
    pkt->nsegs = 0;
    pkt->segs = NULL;
    pkt->npieces = 0;
    pkt->pieces = NULL;
    pkt->views = NULL;
    pkt->block = NULL;
    pkt->keep = NULL;
    pkt->store = XI_STORE_NONE;
}

/* Copies the loans still out that nobody reads, and unlinks them; returns how many
 * are being read. Under the mutex, with the lender's GIL held. */
static int
own_unpinned_locked(xi_lender *L, xi_loan **done)
{
    xi_loan *loan = L->out;
    while (loan != NULL) {
        xi_loan *next = loan->next;
        if (!loan->pinned) {
            own_or_lose(loan->pkt);
            unlink_out(L, loan);
            L->bytes -= loan->bytes;
            loan->next = *done;
            *done = loan;
        }
        loan = next;
    }
    return L->readers;
}

void
xi_lender_close(xi_state *st, int at_exit)
{
    st->lending_closed = 1; /* a late put() (atexit, finalizers) copies */
    xi_lender *L = st->lender;
    if (L == NULL) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException(); /* m_free may run with one set */
    xi_loan *done = NULL, *returned = NULL;
    int64_t deadline = xi_now_ns() + (int64_t)1000 * 1000 * 1000;
    /* Taking the mutex with the GIL held is fine: no holder of the mutex waits for a
     * GIL or runs Python code (freeing a loan's storage frees bytes, PickleBuffer,
     * list and tuple objects only). Getters never wait for the close: a loan being
     * read is copied once it is unpinned. */
    xi_lock(&L->mu);
    if (L->state == XI_LENDING) {
        L->state = XI_CLOSING;
    }
    while (L->state == XI_CLOSING && own_unpinned_locked(L, &done) > 0) {
        /* wait (without the GIL) for a loan to be unpinned, then copy again */
        int timed_out = 0;
        xi_unlock(&L->mu);
        Py_BEGIN_ALLOW_THREADS
        xi_lock(&L->mu);
        if (L->readers > 0) {
            if (!at_exit) {
                xi_wait(&L->changed, &L->mu);
            }
            else {
                timed_out = xi_wait_until(&L->changed, &L->mu, deadline) == ETIMEDOUT;
            }
        }
        xi_unlock(&L->mu);
        Py_END_ALLOW_THREADS
        xi_lock(&L->mu);
        if (timed_out && L->readers > 0) {
            /* A reader in a daemon thread of the finalizing main interpreter never
             * finishes. The main interpreter's objects are not freed: leave the loans
             * being read as they are. */
            L->state = XI_ABANDONED;
        }
    }
    if (L->state == XI_CLOSING) {
        L->state = XI_CLOSED;
    }
    if (L->state == XI_CLOSED) {
        returned = take_returned_locked(L);
        L->bytes = 0;
    }
    xi_unlock(&L->mu);
    while (done != NULL) {
        xi_loan *next = done->next;
        PyMem_RawFree(done);
        done = next;
    }
    release_loans(returned);
    PyErr_SetRaisedException(exc);
}

void
xi_lender_forget(xi_state *st)
{
    if (st->lender != NULL) {
        xi_lender *L = st->lender;
        st->lender = NULL;
        lender_decref(L);
    }
}

void
xi_loan_pin_lent(xi_packet *pkt)
{
    xi_lender *L = pkt->lender;
    xi_lock(&L->mu);
    if (pkt->loan != NULL) {
        pkt->loan->pinned = 1;
        L->readers++;
    }
    xi_unlock(&L->mu);
}

void
xi_loan_unpin_lent(xi_packet *pkt)
{
    xi_lender *L = pkt->lender;
    xi_lock(&L->mu);
    if (pkt->loan != NULL) {
        pkt->loan->pinned = 0;
        L->readers--;
        xi_broadcast(&L->changed);
    }
    xi_unlock(&L->mu);
}

PyObject *
xi_lender_stats(xi_state *st)
{
    xi_lender *L = st->lender;
    if (L == NULL) {
        return Py_BuildValue("(nnn)", (Py_ssize_t)0, (Py_ssize_t)0, (Py_ssize_t)0);
    }
    xi_lock(&L->mu);
    Py_ssize_t nout = 0, nret = 0, bytes = L->bytes;
    for (xi_loan *l = L->out; l != NULL; l = l->next) {
        nout++;
    }
    for (xi_loan *l = L->returned; l != NULL; l = l->next) {
        nret++;
    }
    xi_unlock(&L->mu);
    return Py_BuildValue("(nnn)", nout, nret, bytes);
}
