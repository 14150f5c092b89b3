"""multiprocessing.managers proxies crossing into other interpreters.

A proxy pickles without its authentication key (multiprocessing sends the key only while
it spawns a child process) and is rebuilt with the key of the process it lands in. Every
interpreter of a process gets a key of its own when it first imports multiprocessing, so
a proxy rebuilt in another interpreter would be refused by its manager
(AuthenticationError). The library's picklers reduce proxies here instead: the same
rebuild, with the proxy's own key, which stays inside this process.
"""


def reduce(proxy):
    rebuild, (cls, token, serializer, kwds) = proxy.__reduce__()[:2]
    if "authkey" not in kwds:
        kwds = dict(kwds, authkey=bytes(proxy._authkey))
    return rebuild, (cls, token, serializer, kwds)
