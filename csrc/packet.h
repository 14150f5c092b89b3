/* Packets: serialized values in memory that no interpreter owns, and who frees it.
 *
 * A packet is a marshal stream (simple values) or a pickle (protocol 5) stream plus
 * out-of-band segments (wire.h makes and reads them). The stream is one piece of
 * memory (`data`, `size`), or a sequence of pieces (`pieces`, `npieces`; see stream.h):
 * the pickler's frames, and each bytes or bytearray of 64 KiB or more anywhere in the
 * value, by itself.
 *
 * STORAGE. A packet's memory is of one of four modes, its `store` field:
 *
 *   XI_STORE_NONE      nothing to free: a zeroed packet (XI_PACKET_INIT), an
 *                      exception packet that could not be described, an XI_PKT_LOST
 *                      one, one whose lent storage went back to its lender.
 *   XI_STORE_BORROWED  `data`, `pieces` and `segs` point into live objects of the
 *                      interpreter that encoded it: `keep` holds them and `views` their
 *                      buffer exports; `block` holds the arrays of segments, pieces
 *                      and views. The encoders (wire.h) make it.
 *   XI_STORE_OWNED     everything lives in one raw block (`block`). xi_packet_own
 *                      makes it of a borrowed packet; wire.c makes exception packets so.
 *   XI_STORE_LENT      a borrowed packet's storage, now a lender's loan (loan.h):
 *                      `lender` and `loan` are set. xi_lend_large makes it of a borrowed
 *                      packet; the lender's close makes it OWNED (NONE with kind
 *                      XI_PKT_LOST when there is no memory for the copy), under the
 *                      lender's mutex.
 *
 * RELEASE. xi_packet_release frees a packet of every mode, choosing by `store`; nothing
 * else frees a packet's storage. Where it runs follows from the mode:
 *   BORROWED  in the encoding interpreter, with its GIL held: the caller of a call
 *             switches back into the target, or hands the packet to the target's owner
 *             thread (interp.c);
 *   OWNED, NONE  anywhere;
 *   LENT      anywhere, without the lender's GIL: the storage goes back to the lender
 *             through the hook below, and the lender frees it in its own interpreter
 *             (xi_lender_collect, or its close).
 * The holder of a packet releases it once: a call's request its caller (the target's
 * owner thread when the caller left while it was decoded), a call's result the side
 * that interp.c's job gives it to (a borrowed one the owner thread, in the target; an
 * owned one the caller), a queue item the queue (owned or lent), a barrier its action
 * (owned). A packet that has a `lender` goes to the lender first even when the lender's
 * close copied it (OWNED, or NONE and lost): it holds a reference to the lender until
 * it is released. */
#ifndef XI_PACKET_H
#define XI_PACKET_H

#include "compat.h"
#include "registry.h"

#define XI_MV_MAXDIM 8

typedef enum {
    XI_SEG_BYTES = 0,
    XI_SEG_BYTEARRAY = 1,
    XI_SEG_MEMORYVIEW = 2,
    XI_SEG_OTHER = 3,       /* a PickleBuffer from a user object */
    XI_SEG_ARRAY = 4,       /* an array.array; `format` is its typecode */
    XI_SEG_PIECE = 5,       /* a piece of a stream (pieces only) */
    XI_SEG_STR = 6,         /* an exact str's storage; `format[0]` says which: 'a' ASCII,
                               '1' latin-1 (1 byte a character, not all ASCII), '2' UCS-2,
                               '4' UCS-4 */
} xi_seg_kind;

typedef struct xi_seg {
    const char *ptr;
    Py_ssize_t len;
    uint8_t kind;
    uint8_t readonly;
    uint8_t ndim;            /* memoryview only: 0 means a 1-D view of format "B" */
    char format[13];         /* memoryview: its format; array: its typecode; str: its
                                storage */
    Py_ssize_t shape[XI_MV_MAXDIM];
} xi_seg;

typedef enum {
    XI_PKT_VALUE = 0,
    XI_PKT_EXCEPTION = 1,    /* the stream describes an exception raised remotely */
    XI_PKT_LOST = 2,         /* a lent item that could not be copied (loan.h) */
} xi_pkt_kind;

typedef enum {
    XI_STORE_NONE = 0,
    XI_STORE_BORROWED = 1,
    XI_STORE_OWNED = 2,
    XI_STORE_LENT = 3,
} xi_pkt_store;

struct xi_lender;
struct xi_loan;

typedef struct xi_packet {
    int kind;
    uint8_t store;           /* xi_pkt_store: what the memory below is (see above) */
    uint8_t marshal;         /* `data` is a marshal stream (simple values) */
    uint8_t fname;           /* fdata is the callable's marshalled (module, qualname) */
    uint8_t unshareable;     /* exception packets of calls: XI_UNSHAREABLE_* (wire.h) */
    const char *data;        /* the stream, in one piece; NULL when it is in pieces */
    Py_ssize_t size;         /* the stream's length, in one piece or not */
    Py_ssize_t npieces;      /* borrowed and lent packets only: the stream in pieces */
    xi_seg *pieces;
    const char *fdata;       /* call packets: the callable, by name or pickled */
    Py_ssize_t fsize;
    Py_ssize_t nsegs;
    xi_seg *segs;
    Py_buffer *views;        /* borrowed and lent: the exports behind the segments, then
                                behind the pieces (nsegs + npieces of them) */
    void *block;             /* PyMem_RawMalloc'ed: the storage (owned), or the arrays
                                of segments, pieces and views (borrowed, lent), or NULL */
    PyObject *keep;          /* borrowed and lent: objects of the encoding interpreter */
    xi_refs refs;            /* the shared objects the stream names (references) */
    struct xi_lender *lender; /* lent (and then copied) packets: the lender, referenced;
                                 set once, before the packet is published */
    struct xi_loan *loan;    /* ... and the loan while out, guarded by the lender */
} xi_packet;

#define XI_PACKET_INIT {0}

/* Payloads whose out-of-band segments total more than this stay borrowed when a
 * result is handed back; smaller ones are copied into an owned block at once. */
#define XI_OWN_MAX (256 * 1024)

/* Bytes of the packet held in place: its out-of-band segments and, for a stream in
 * pieces, the whole stream. */
Py_ssize_t xi_packet_oob_bytes(const xi_packet *pkt);

/* Copies a borrowed packet into an owned block and drops its references; must run in
 * the encoding interpreter. A packet of another mode is left as it is. 0, or -1 with
 * MemoryError set (the packet is unchanged). */
int xi_packet_own(xi_packet *pkt);

/* Frees the packet's storage as its mode says (see RELEASE above) and drops its
 * references; the packet is then empty (XI_STORE_NONE). */
void xi_packet_release(xi_packet *pkt);

static inline int
xi_packet_is_borrowed(const xi_packet *pkt)
{
    return pkt->store == XI_STORE_BORROWED;
}

/* The hook through which xi_packet_release hands a packet that has a lender to it
 * (packet.c calls nothing of loan.c): under the lender's mutex it moves a LENT packet's
 * storage to its loan (the packet becomes NONE), leaves a packet its lender copied as
 * it is, and drops the packet's reference to the lender. loan.c installs it before it
 * lends a packet; any thread, no GIL of the lender needed. */
typedef void (*xi_packet_lent_hook)(xi_packet *pkt);
void xi_packet_set_lent_hook(xi_packet_lent_hook hook);

#endif /* XI_PACKET_H */
