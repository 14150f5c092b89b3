/* The wire format: values serialized into memory that no interpreter owns.
 *
 * A packet is a marshal stream (simple values) or a pickle (protocol 5) stream plus
 * out-of-band segments. The stream is one piece of memory (`data`, `size`), or a
 * sequence of pieces (`pieces`, `npieces`; see stream.h): the pickler's frames, and
 * each bytes or bytearray of 64 KiB or more anywhere in the value, by itself. Large
 * bytes, bytearray and str values and memoryviews at the top level of a payload or
 * inside its tuples, lists and dicts down to three levels (wire.c: substitution),
 * pickle.PickleBuffer objects, and memoryviews and array.array objects anywhere in it
 * travel as out-of-band segments. Either way a large buffer is not copied by the sender: it is copied
 * exactly once, when the receiver rebuilds it.
 *
 * A packet is either
 *   lent:     a borrowed packet whose storage is released by a lender (loan.h);
 *   borrowed: `data` and the segments point into live objects of the interpreter that
 *             encoded it; `keep` holds them, and the packet must be released (or
 *             owned) in that interpreter, with its GIL held, once the receiver is done;
 *   owned:    everything lives in one raw block (`block`), freed from anywhere.
 *
 * Callables that pickle cannot name (lambdas, closures, anything of __main__) travel by
 * value through cloudpickle; everything else goes through the C pickler. */
#ifndef XI_WIRE_H
#define XI_WIRE_H

#include "compat.h"
#include "registry.h"
#include "state.h"

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

/* What of a call could not be unpickled in the target (its exception packet says it,
 * and the caller raises NotShareableError("func/args not shareable") from it). */
enum {
    XI_UNSHAREABLE_NONE = 0,
    XI_UNSHAREABLE_FUNC = 1,
    XI_UNSHAREABLE_ARGS = 2,
};

struct xi_lender;
struct xi_loan;

typedef struct {
    int kind;
    uint8_t marshal;         /* `data` is a marshal stream (simple values) */
    uint8_t fname;           /* fdata is the callable's marshalled (module, qualname) */
    uint8_t unshareable;     /* exception packets of calls: XI_UNSHAREABLE_* */
    const char *data;        /* the stream, in one piece; NULL when it is in pieces */
    Py_ssize_t size;         /* the stream's length, in one piece or not */
    Py_ssize_t npieces;      /* borrowed packets only: the stream in pieces */
    xi_seg *pieces;
    const char *fdata;       /* call packets: the callable, by name or pickled */
    Py_ssize_t fsize;
    Py_ssize_t nsegs;
    xi_seg *segs;
    Py_buffer *views;        /* borrowed storage: the exports behind the segments, then
                                behind the pieces (nsegs + npieces of them) */
    void *block;             /* owned storage, PyMem_RawMalloc'ed, or NULL */
    PyObject *keep;          /* borrowed storage: objects of the encoding interpreter */
    xi_refs refs;            /* the shared objects the stream names (references) */
    struct xi_lender *lender; /* lent packets (loan.h): the lender, referenced */
    struct xi_loan *loan;    /* ... and the loan while out, guarded by the lender */
} xi_packet;

#define XI_PACKET_INIT {0}

/* The type of the objects that export a str's storage to a PickleBuffer (wire.c),
 * made at module exec (st->StrExportType). */
extern PyType_Spec xi_str_export_spec;

/* Payloads whose out-of-band segments total more than this stay borrowed when a
 * result is handed back; smaller ones are copied into an owned block at once. */
#define XI_OWN_MAX (256 * 1024)

/* Imports what the pickle path needs, once per interpreter (a new interpreter that
 * only ever sees simple values and named callables never imports it). */
int xi_wire_load_pickle(xi_state *st);

/* Encoders: 0 on success, -1 with an exception set (NotShareableError when the value
 * cannot be serialized). The packet is borrowed on success. */
int xi_encode_value(xi_state *st, PyObject *obj, xi_packet *pkt);
int xi_encode_call(xi_state *st, PyObject *func, PyObject *args, PyObject *kwargs,
                   xi_packet *pkt);

/* Turns the exception being raised into an owned XI_PKT_EXCEPTION packet and clears it.
 * Never fails: when the exception cannot be described, a generic one is. `interp_id`
 * is recorded in the description. */
void xi_encode_exception(xi_state *st, int64_t interp_id, xi_packet *pkt);

/* The picklable description of an exception (type's module, qualname and name, message,
 * formatted traceback, pickled args and __dict__, interpreter id) that
 * xi_raise_described() turns back into the same exception, with an ExecutionFailed
 * as its __cause__, in any interpreter. New reference, or NULL with an exception set. */
PyObject *xi_describe_exception(xi_state *st, PyObject *exc, int64_t interp_id);
void xi_raise_described(xi_state *st, PyObject *desc);

/* In the target of a call whose callable or arguments could not be unpickled: the error
 * being raised becomes NotShareableError("object could not be unpickled") raised from
 * it (not an interruption or MemoryError). 1 when it did, 0 when the error stays. */
int xi_replace_unpickling_error(void);

/* Rebuilds a value in the current interpreter. For an exception packet, raises the
 * rebuilt exception (its __cause__ an ExecutionFailed) and returns NULL; when the packet
 * says that a call could not be unpickled, NotShareableError("func not shareable" or
 * "args not shareable") from that exception. */
PyObject *xi_decode(xi_state *st, const xi_packet *pkt);

/* Rebuilds a call packet's parts (new references; *kwargs may be NULL): 0, or -1 with
 * an exception set and, when `what` is not NULL, *what set to what could not be rebuilt
 * (XI_UNSHAREABLE_FUNC or _ARGS; XI_UNSHAREABLE_NONE for a malformed packet). */
int xi_decode_call(xi_state *st, const xi_packet *pkt, PyObject **func, PyObject **args,
                   PyObject **kwargs, uint8_t *what);

/* Bytes of the packet held in place: its out-of-band segments and, for a stream in
 * pieces, the whole stream. */
Py_ssize_t xi_packet_oob_bytes(const xi_packet *pkt);

/* Copies a borrowed packet into an owned block and drops its references; must run in
 * the encoding interpreter. 0, or -1 with MemoryError set (the packet is unchanged). */
int xi_packet_own(xi_packet *pkt);

/* Frees the packet. A borrowed packet must be released in its encoding interpreter. */
void xi_packet_release(xi_packet *pkt);

static inline int
xi_packet_is_borrowed(const xi_packet *pkt)
{
    return pkt->keep != NULL;
}

#endif /* XI_WIRE_H */
