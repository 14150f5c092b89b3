/* The wire format: values serialized into packets (packet.h), and rebuilt from them.
 *
 * Simple values travel as a marshal stream; everything else as a pickle (protocol 5)
 * stream, in one piece or in pieces (stream.h), plus out-of-band segments: large bytes,
 * bytearray and str values and memoryviews at the top level of a payload, inside its
 * tuples down to three levels or among a call's keyword arguments (wire.c:
 * substitution), pickle.PickleBuffer
 * objects, and memoryviews and array.array objects anywhere in it. Either way a large
 * buffer is not copied by the sender: it is copied exactly once, when the receiver
 * rebuilds it. The encoders make borrowed packets (packet.h: XI_STORE_BORROWED).
 *
 * Callables that pickle cannot name (lambdas, closures, anything of __main__) travel by
 * value through cloudpickle; everything else goes through the C pickler. */
#ifndef XI_WIRE_H
#define XI_WIRE_H

#include "packet.h"
#include "state.h"

/* What of a call could not be unpickled in the target (its exception packet says it,
 * and the caller raises NotShareableError("func/args not shareable") from it). */
enum {
    XI_UNSHAREABLE_NONE = 0,
    XI_UNSHAREABLE_FUNC = 1,
    XI_UNSHAREABLE_ARGS = 2,
};

/* The type of the objects that export a str's storage to a PickleBuffer (wire.c),
 * made at module exec (st->StrExportType). */
extern PyType_Spec xi_str_export_spec;

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

#endif /* XI_WIRE_H */
