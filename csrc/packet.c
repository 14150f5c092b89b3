/* Packets: their storage modes and their release (see packet.h). */
#include "packet.h"

#include <string.h>

/* Installed by loan.c before it lends a packet (xi_packet_set_lent_hook). */
static _Atomic(xi_packet_lent_hook) lent_hook;

void
xi_packet_set_lent_hook(xi_packet_lent_hook hook)
{
    atomic_store_explicit(&lent_hook, hook, memory_order_release);
}

static void
release_views(xi_packet *pkt)
{
    for (Py_ssize_t i = 0; pkt->views != NULL && i < pkt->nsegs + pkt->npieces; i++) {
        PyBuffer_Release(&pkt->views[i]);
    }
    pkt->views = NULL;
}

Py_ssize_t
xi_packet_oob_bytes(const xi_packet *pkt)
{
    Py_ssize_t total = pkt->npieces > 0 ? pkt->size : 0;
    for (Py_ssize_t i = 0; i < pkt->nsegs; i++) {
        total += pkt->segs[i].len;
    }
    return total;
}

#define XI_ALIGN(n) (((n) + 15) & ~(size_t)15)

int
xi_packet_own(xi_packet *pkt)
{
    if (pkt->store != XI_STORE_BORROWED) {
        return 0;
    }
    size_t total = XI_ALIGN(sizeof(xi_seg) * (size_t)pkt->nsegs) +
                   XI_ALIGN((size_t)pkt->size) + XI_ALIGN((size_t)pkt->fsize);
    for (Py_ssize_t i = 0; i < pkt->nsegs; i++) {
        total += XI_ALIGN((size_t)pkt->segs[i].len);
    }
    char *block = PyMem_RawMalloc(total ? total : 1);
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    xi_seg *segs = (xi_seg *)block;
    char *p = block + XI_ALIGN(sizeof(xi_seg) * (size_t)pkt->nsegs);
    if (pkt->npieces > 0) {
        /* the stream in one piece again */
        char *q = p;
        for (Py_ssize_t i = 0; i < pkt->npieces; i++) {
            xi_copy_new(q, pkt->pieces[i].ptr, (size_t)pkt->pieces[i].len);
            q += pkt->pieces[i].len;
        }
    }
    else {
        memcpy(p, pkt->data, (size_t)pkt->size);
    }
    pkt->data = p;
    p += XI_ALIGN((size_t)pkt->size);
    if (pkt->fdata != NULL) {
        memcpy(p, pkt->fdata, (size_t)pkt->fsize);
        pkt->fdata = p;
        p += XI_ALIGN((size_t)pkt->fsize);
    }
    for (Py_ssize_t i = 0; i < pkt->nsegs; i++) {
        segs[i] = pkt->segs[i];
        xi_copy_new(p, pkt->segs[i].ptr, (size_t)pkt->segs[i].len);
        segs[i].ptr = p;
        p += XI_ALIGN((size_t)pkt->segs[i].len);
    }
    release_views(pkt);
    PyMem_RawFree(pkt->block);
    pkt->block = block;
    pkt->segs = segs;
    pkt->pieces = NULL;
    pkt->npieces = 0;
    Py_CLEAR(pkt->keep);
    pkt->store = XI_STORE_OWNED;
    return 0;
}

void
xi_packet_release(xi_packet *pkt)
{
    if (pkt->lender != NULL) {
        /* lent, or copied by its lender's close, which changes `store` under the
         * lender's mutex: the hook takes that mutex, so `store` is read after it */
        xi_packet_lent_hook hook = atomic_load_explicit(&lent_hook, memory_order_acquire);
        hook(pkt);
    }
    switch ((xi_pkt_store)pkt->store) {
    case XI_STORE_BORROWED:
        release_views(pkt);
        Py_CLEAR(pkt->keep);
        PyMem_RawFree(pkt->block); /* the arrays of segments, pieces and views */
        break;
    case XI_STORE_OWNED:
        PyMem_RawFree(pkt->block); /* everything */
        break;
    case XI_STORE_LENT: /* the hook gave the storage back: the packet is NONE now */
    case XI_STORE_NONE:
        break;
    }
    xi_refs_clear(&pkt->refs);
    pkt->store = XI_STORE_NONE;
    pkt->block = NULL;
    pkt->segs = NULL;
    pkt->nsegs = 0;
    pkt->pieces = NULL;
    pkt->npieces = 0;
    pkt->data = NULL;
    pkt->size = 0;
    pkt->fdata = NULL;
    pkt->fsize = 0;
}
