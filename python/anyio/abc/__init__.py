"""Abstract interfaces of anyio: resources, streams, listeners, sockets,
processes and task groups."""

from ._eventloop import AsyncBackend as AsyncBackend
from ._resources import AsyncResource as AsyncResource
from ._sockets import ConnectedUDPSocket as ConnectedUDPSocket
from ._sockets import ConnectedUNIXDatagramSocket as ConnectedUNIXDatagramSocket
from ._sockets import IPAddressType as IPAddressType
from ._sockets import IPSockAddrType as IPSockAddrType
from ._sockets import SocketAttribute as SocketAttribute
from ._sockets import SocketListener as SocketListener
from ._sockets import SocketStream as SocketStream
from ._sockets import UDPPacketType as UDPPacketType
from ._sockets import UDPSocket as UDPSocket
from ._sockets import UNIXDatagramPacketType as UNIXDatagramPacketType
from ._sockets import UNIXDatagramSocket as UNIXDatagramSocket
from ._sockets import UNIXSocketStream as UNIXSocketStream
from ._streams import AnyByteReceiveStream as AnyByteReceiveStream
from ._streams import AnyByteSendStream as AnyByteSendStream
from ._streams import AnyByteStream as AnyByteStream
from ._streams import AnyByteStreamConnectable as AnyByteStreamConnectable
from ._streams import AnyUnreliableByteReceiveStream as AnyUnreliableByteReceiveStream
from ._streams import AnyUnreliableByteSendStream as AnyUnreliableByteSendStream
from ._streams import AnyUnreliableByteStream as AnyUnreliableByteStream
from ._streams import ByteReceiveStream as ByteReceiveStream
from ._streams import ByteSendStream as ByteSendStream
from ._streams import ByteStream as ByteStream
from ._streams import ByteStreamConnectable as ByteStreamConnectable
from ._streams import Listener as Listener
from ._streams import ObjectReceiveStream as ObjectReceiveStream
from ._streams import ObjectSendStream as ObjectSendStream
from ._streams import ObjectStream as ObjectStream
from ._streams import ObjectStreamConnectable as ObjectStreamConnectable
from ._streams import UnreliableObjectReceiveStream as UnreliableObjectReceiveStream
from ._streams import UnreliableObjectSendStream as UnreliableObjectSendStream
from ._streams import UnreliableObjectStream as UnreliableObjectStream
from ._subprocesses import Process as Process

# The lead's task interfaces (abc/_tasks.py).
from ._tasks import TaskGroup as TaskGroup
from ._tasks import TaskStatus as TaskStatus

# Report the public module in reprs and tracebacks, as upstream does.
for _value in list(globals().values()):
    if isinstance(_value, type) and _value.__module__.startswith("anyio.abc."):
        _value.__module__ = __name__

del _value


def __getattr__(name: str) -> object:
    if name == "TestRunner":
        # The pytest plugin's runner base, imported only when asked for.
        from .._testrunner import TestRunner

        globals()[name] = TestRunner
        return TestRunner

    # Deprecated aliases (anyio.abc.BlockingPortal) warn when used, not on import.
    from ._portal import deprecated_alias

    return deprecated_alias(name)


def __dir__() -> list[str]:
    return sorted({*(n for n in globals() if not n.startswith("_")), "TestRunner"})
