"""0.3.0's tests/test_queue.py: its pipes (internals), then SingleQueue and Queue
shared with other interpreters by pickling them into run_string() code."""
import pickle
import threading
import time
from textwrap import dedent as D

import pytest

import extrainterpreters as ei
from extrainterpreters import Interpreter, Queue, SingleQueue


def _internal(name):
    """0.3.0's private modules: extrainterpreters.queue (its pipes), .resources."""
    import importlib

    return importlib.import_module(f"extrainterpreters.{name}")


def test_simplexpipe_works():
    pipe = _internal("queue")._SimplexPipe()
    other = pickle.loads(pickle.dumps(pipe))
    pipe.write(b"\x01\x02")
    assert other.read(2) == b"\x01\x02"


def test_simplexpipe_unpickles_with_same_memory_buffer_main_intrepreter():
    pipe = _internal("queue")._SimplexPipe()
    assert pickle.loads(pickle.dumps(pipe)) is pipe


def test_simplexpipe_unpickles_with_same_memory_buffer_child_intrepreter():
    pipe = _internal("queue")._SimplexPipe()
    with ei.Interpreter() as interp:
        interp.run_string(f"xx = pickle.loads({pickle.dumps(pipe)})")
        interp.run_string("assert pickle.loads(pickle.dumps(xx)) is xx")


def test_simplexpipe_file_registers_unregister_from_global_selector():
    pipe = _internal("queue")._SimplexPipe()
    assert (pipe.reader_fd, pipe.writer_fd) in _internal("resources").PIPE_REGISTRY


def test_simplexpipe_closes_fds_on_exit():
    pipe = _internal("queue")._SimplexPipe()
    pipe.__del__()


def test_simplexpipe_doesnotclose_when_open_in_other_interpreter():
    pipe = _internal("queue")._SimplexPipe()
    assert pipe.active.counter == 1


def test_duplexpipe_is_unpickled_as_counterpart_and_comunicates(lowlevel):
    pipe = _internal("queue")._DuplexPipe()
    with Interpreter() as interp:
        interp.run_string(f"bb = pickle.loads({pickle.dumps(pipe)})")
        pipe.send(b"01234")
        interp.run_string("bb.send(bytes(i + 1 for i in bb.read()))")
        assert pipe.read() == b"12345"


def test_locackle_duplexpipe_locks(lowlevel):
    pipe = _internal("queue")._DuplexPipe()
    with Interpreter() as interp:
        interp.run_string(f"bb = pickle.loads({pickle.dumps(pipe)})")
        interp.run_string("bb.lock.__enter__()")
        with pytest.raises(ei.ResourceBusyError):
            pipe.lock.timeout(None).__enter__()


def test_singlequeue_is_unpickled_as_counterpart_and_comunicates(lowlevel):
    interp = Interpreter().start()
    interp.run_string("import pickle")
    aa = SingleQueue()
    interp.run_string("import extrainterpreters; extrainterpreters.DEBUG = True")
    interp.run_string(f"bb = pickle.loads({pickle.dumps(aa)})")
    obj = {"1": "1234", None: ...}
    aa.put(obj)
    interp.run_string("cc = bb.get()")
    interp.run_string(f"assert cc == {obj}")
    interp.close()


def test_queue_send_object():
    q = Queue()
    q.put((1, 2))
    # 0.3.0's test passed (1, 2) as get()'s `block`
    assert q.get((1, 2))


def test_queue_sent_to_other_interpreter():
    queue = Queue()
    q_pickle = pickle.dumps(queue)
    with ei.Interpreter() as interp:
        interp.run_string(D(f"""\
            import extrainterpreters
            extrainterpreters.DEBUG = True
            import pickle
            queue = pickle.loads({q_pickle})
            """))
        queue.put((1, 2))
        interp.run_string("values = queue.get()\ndata = sum(values)")
        interp.run_string("queue.put(data)")
        assert queue.get() == 3


@pytest.mark.skip("skipped in 0.3.0: not deterministic")
def test_queue_each_value_is_read_in_a_single_interpreter():
    pass


def test_queue_get_value_from_subinterpreter():
    queue = Queue()
    q_pickle = pickle.dumps(queue)
    # no `import pickle`: 0.3.0 bound it in every interpreter's __main__
    code = D("""\
        import extrainterpreters; extrainterpreters.DEBUG = 1
        from extrainterpreters import get_current
        queue = pickle.loads({q_pickle})
        queue.put({value})
        """)
    with ei.Interpreter() as interp1:
        interp1.run_string(code.format(q_pickle=q_pickle, value=(1, 2)))
        assert queue.get() == (1, 2)


def test_queue_trying_to_get_value_from_closed_interpreter_doesnot_break_queue():
    queue = Queue()
    q_pickle = pickle.dumps(queue)
    queue._signal_pipe._ttl = 3600
    code = D(f"""\
        queue = pickle.loads({q_pickle})
        queue.put((1, 2))
        queue.put((1, 2))
        """)
    with ei.Interpreter() as interp1:
        interp1.run_string(code)
        assert queue.get() == (1, 2)
    with pytest.raises(ei.QueueEmpty):
        queue.get(block=False)


def test_queue_subinterpreters_can_exchange_data():
    queue = Queue()
    q_pickle = pickle.dumps(queue)
    code = D("""\
        import extrainterpreters; extrainterpreters.DEBUG = 1
        from extrainterpreters import get_current
        queue = pickle.loads({q_pickle})
        """)
    with ei.Interpreter() as interp1, ei.Interpreter() as interp2:
        for interp in (interp1, interp2):
            interp.run_string(code.format(q_pickle=q_pickle))
        interp1.run_string("queue.put((1,2))")
        interp2.run_string("assert queue.get() == (1,2)")
        interp2.run_string("queue.put((3,4))")
        interp1.run_string("assert queue.get() == (3,4)")
        interp1.run_string("queue.put((5,6))")
        interp1.run_string("assert queue.get() == (5,6)")


@pytest.mark.serial
def test_queue_get_is_blocking_by_default_same_interpreter():
    delay = 0.05
    q = Queue()
    failed = False
    ready = threading.Event()

    def source():
        time.sleep(delay)
        q.put("element")

    def sink():
        nonlocal failed
        start_time = time.monotonic()
        ready.set()
        try:
            assert q.get() == "element"
            assert (time.monotonic() - start_time) > delay * 0.95
        except Exception as error:
            failed = error

    # the source starts once the sink has taken its start time (0.3.0 started both
    # at once, so a sink that started late measured less than the delay)
    threads = [threading.Thread(target=sink), threading.Thread(target=source)]
    threads[0].start()
    ready.wait()
    threads[1].start()
    for t in threads:
        t.join()
    assert not failed, failed


@pytest.mark.serial
def test_queue_get_is_blocking_by_default_other_interpreter():
    delay = 0.05
    q_send, q_response = Queue(), Queue()
    q_send_pickle, q_response_pickle = pickle.dumps(q_send), pickle.dumps(q_response)
    interp1, interp2 = ei.Interpreter(), ei.Interpreter()
    with interp1, interp2:
        for interp in (interp1, interp2):
            interp.run_string(D(f"""\
                import time, threading, pickle
                q_send = pickle.loads({q_send_pickle})
                q_response = pickle.loads({q_response_pickle})
                """))
        # the sink starts first (see the test above)
        interp2.run_string(D(f"""\
            ready = threading.Event()
            def sink():
                failed = ""
                start_time = time.monotonic()
                ready.set()
                try:
                    assert q_send.get() == "element"
                    assert (time.monotonic() - start_time) > {delay} * 0.95
                except Exception as error:
                    failed = error
                q_response.put(str(failed))
            t = threading.Thread(target=sink)
            t.start()
            ready.wait()
            """))
        interp1.run_string(D(f"""\
            def source():
                time.sleep({delay})
                q_send.put("element")
            t = threading.Thread(target=source)
            t.start()
            """))
        failed = q_response.get()
        for interp in (interp1, interp2):
            interp.run_string("t.join()")
    assert not failed, failed


@pytest.mark.skip("skipped in 0.3.0: not deterministic")
def test_queue_each_value_is_read_in_a_single_interpreter_several_interpreters():
    pass
