/* Pickle streams in pieces, so that large buffers anywhere in a value are copied once,
 * by the interpreter that rebuilds it.
 *
 * Encoding: a pickler (a subclass of _pickle.Pickler) writes to a list. The C pickler
 * writes its stream in frames of about 64 KiB, and it writes every bytes or bytearray
 * object of 64 KiB or more by itself, as the object itself: the list ends up holding
 * the frames (new bytes objects) and those buffers (the caller's objects), in stream
 * order, and nothing large was copied. Out-of-band buffers (pickle.PickleBuffer, and
 * the memoryview and array.array objects that the pickler's reducer_override turns
 * into PickleBuffers) go to a second list.
 *
 * Decoding: an Unpickler reads the pieces through a reader object. Frames are read in
 * place; a large bytes or bytearray is created at its final size and the reader copies
 * its piece into it: one copy, in the receiving interpreter.
 *
 * The pickler also detects names of __main__ (a function or class defined there, or an
 * instance of such a class), which mean something else in every interpreter: pickling
 * then fails with st->MainReference, and the caller pickles by value instead. */
#ifndef XI_STREAM_H
#define XI_STREAM_H

#include "packet.h"

/* Pieces of 64 KiB or more are written by themselves (CPython's FRAME_SIZE_TARGET). */
#define XI_STREAM_PIECE_MIN (64 * 1024)

/* Creates the module's stream types (module exec). */
int xi_stream_init(PyObject *module, xi_state *st);

/* Pickles obj with protocol 5 into *chunks (a new list of bytes-like objects, in
 * stream order) and *oob (a new list of out-of-band buffers). 0, or -1 with the
 * pickler's exception set (st->MainReference when obj names something of __main__). */
int xi_stream_pickle(xi_state *st, PyObject *obj, PyObject **chunks, PyObject **oob);

/* The same with cloudpickle's pickler, which pickles by value what cannot be named
 * (lambdas, closures, anything of __main__). */
int xi_stream_pickle_by_value(xi_state *st, PyObject *obj, PyObject **chunks,
                              PyObject **oob);

/* A memoryview or an array.array as a PickleBuffer over C-contiguous memory (a
 * contiguous copy, of the same format and shape and as writable, of a memoryview that
 * is not). New reference. */
PyObject *xi_stream_picklebuffer(xi_state *st, PyObject *obj);

/* Unpickles the stream made of `n` pieces; `buffers` (or NULL) are its out-of-band
 * buffers. New reference, or NULL with an exception set. The pieces are only read
 * during the call. */
PyObject *xi_stream_unpickle(xi_state *st, const xi_seg *pieces, Py_ssize_t n,
                             PyObject *buffers);

/* How many pieces the readers of xi_stream_unpickle have looked at in all, process-wide
 * (for tests). */
int64_t xi_stream_reader_steps(void);

#endif /* XI_STREAM_H */
