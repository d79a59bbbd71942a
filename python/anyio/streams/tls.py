"""TLS over any byte stream, driven through :class:`ssl.SSLObject` and memory BIOs.

The SSL object never touches a socket: ciphertext it produces is read from the
outgoing BIO and sent over the transport stream, and whatever the transport
delivers is fed to the incoming BIO. That makes TLS work over anything with
``send``/``receive`` (sockets, pipes, memory streams) on every backend.
"""

from __future__ import annotations

import logging
import re
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial, wraps
from typing import Any, TypeVar

from .. import to_thread
from .._backend import get_cancelled_exc_class
from .._cancel import fail_after
from .._exceptions import BrokenResourceError, EndOfStream
from .._resources import aclose_forcefully
from .._typedattr import TypedAttributeSet, typed_attribute
from ..abc import (
    AnyByteStream,
    AnyByteStreamConnectable,
    ByteStream,
    ByteStreamConnectable,
    Listener,
    TaskGroup,
)

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")
_PCTRTT = tuple[tuple[str, str], ...]
_PCTRTTT = tuple[_PCTRTT, ...]

_logger = logging.getLogger(__name__)


class TLSAttribute(TypedAttributeSet):
    """The typed attributes a :class:`TLSStream` adds to its transport's."""

    #: the protocol agreed through ALPN (``None`` if none was)
    alpn_protocol: str | None = typed_attribute()
    #: the channel binding data of type ``tls-unique`` (RFC 5929)
    channel_binding_tls_unique: bytes = typed_attribute()
    #: ``(name, protocol version, secret bits)`` of the cipher in use
    cipher: tuple[str, str, int] = typed_attribute()
    #: the peer's certificate in the dictionary form of
    #: :meth:`ssl.SSLSocket.getpeercert` (``None`` if it sent none)
    peer_certificate: dict[str, str | _PCTRTTT | _PCTRTT] | None = typed_attribute()
    #: the peer's certificate in DER form (``None`` if it sent none)
    peer_certificate_binary: bytes | None = typed_attribute()
    #: ``True`` on the server side of the connection
    server_side: bool = typed_attribute()
    #: the ciphers both sides support (server side only, ``None`` elsewhere)
    shared_ciphers: list[tuple[str, str, int]] | None = typed_attribute()
    #: the :class:`ssl.SSLObject` doing the work
    ssl_object: ssl.SSLObject = typed_attribute()
    #: whether the closing handshake is required (see :meth:`TLSStream.wrap`)
    standard_compatible: bool = typed_attribute()
    #: the negotiated protocol version, e.g. ``TLSv1.3``
    tls_version: str = typed_attribute()


def _default_context(server_side: bool) -> ssl.SSLContext:
    purpose = ssl.Purpose.CLIENT_AUTH if server_side else ssl.Purpose.SERVER_AUTH
    context = ssl.create_default_context(purpose)
    # We detect truncation attacks ourselves (standard_compatible), so OpenSSL
    # must report an EOF without close_notify instead of hiding it
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF

    return context


def _ascii_hostname(hostname: str) -> str:
    """The standard library would encode an international name with IDNA
    2003; certificates are issued for the IDNA 2008 form."""
    try:
        hostname.encode("ascii")
    except UnicodeEncodeError:
        import idna

        return idna.encode(hostname, uts46=True).decode("ascii")

    return hostname


def _is_unexpected_eof(exc: ssl.SSLError) -> bool:
    return isinstance(exc, ssl.SSLEOFError) or (
        "UNEXPECTED_EOF_WHILE_READING" in (exc.strerror or "")
    )


@dataclass(eq=False)
class TLSStream(ByteStream):
    """A byte stream that encrypts what it sends and decrypts what it receives
    over another byte stream.

    Create one with :meth:`wrap`, which also performs the handshake.

    :var AnyByteStream transport_stream: the wrapped stream
    :var bool standard_compatible: see :meth:`wrap`
    """

    transport_stream: AnyByteStream
    standard_compatible: bool
    _ssl_object: ssl.SSLObject
    _read_bio: ssl.MemoryBIO
    _write_bio: ssl.MemoryBIO
    _broken: bool = field(default=False, init=False)

    @classmethod
    async def wrap(
        cls,
        transport_stream: AnyByteStream,
        *,
        server_side: bool | None = None,
        hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        standard_compatible: bool = True,
    ) -> TLSStream:
        """Wrap ``transport_stream`` in TLS and perform the handshake.

        :param server_side: act as the server (default: if no ``hostname``)
        :param hostname: the server name to send (SNI) and to check the
            server's certificate against; international names are encoded
            with IDNA 2008
        :param ssl_context: the context to use (default: a new one from
            :func:`ssl.create_default_context` for the right side)
        :param standard_compatible: exchange ``close_notify`` messages when
            closing, and treat a connection that ends without one as broken
            (a possible truncation attack). Turn it off for protocols that
            delimit their own messages (HTTP with Content-Length, say) and
            peers that just drop the connection.
        :raises ssl.SSLError: if the handshake fails
        """
        if server_side is None:
            server_side = not hostname

        if ssl_context is None:
            ssl_context = _default_context(server_side)

        read_bio = ssl.MemoryBIO()
        write_bio = ssl.MemoryBIO()
        make_ssl_object = partial(
            ssl_context.wrap_bio,
            read_bio,
            write_bio,
            server_side=server_side,
            server_hostname=(
                _ascii_hostname(hostname) if hostname and not server_side else None
            ),
        )
        if type(ssl_context) is ssl.SSLContext:
            ssl_object = make_ssl_object()
        else:
            # A context subclass (truststore's, say) may do blocking work here,
            # like probing the file system for CA paths, so keep it off the loop
            ssl_object = await to_thread.run_sync(make_ssl_object)

        stream = cls(
            transport_stream=transport_stream,
            standard_compatible=standard_compatible,
            _ssl_object=ssl_object,
            _read_bio=read_bio,
            _write_bio=write_bio,
        )
        await stream._call_sslobject_method(ssl_object.do_handshake)
        return stream

    async def _flush(self) -> None:
        """Send the ciphertext the SSL object has produced. If that fails
        part-way (cancellation included), a record is lost: the peer could not
        decrypt anything that follows, so the stream is broken for good."""
        data = self._write_bio.read()
        try:
            await self.transport_stream.send(data)
        except BaseException:
            self._broken = True
            raise

    async def _call_sslobject_method(
        self, func: Callable[[Unpack[PosArgsT]], T_Retval], *args: Unpack[PosArgsT]
    ) -> T_Retval:
        """Call ``func`` until the SSL object has all the input it needs,
        moving ciphertext between the BIOs and the transport stream."""
        if self._broken:
            raise BrokenResourceError

        while True:
            try:
                result = func(*args)
            except ssl.SSLWantReadError:
                if self._write_bio.pending:
                    await self._flush()

                try:
                    data = await self.transport_stream.receive()
                except EndOfStream:
                    self._read_bio.write_eof()
                else:
                    self._read_bio.write(data)
            except ssl.SSLWantWriteError:
                await self._flush()
            except ssl.SSLZeroReturnError:
                # The peer sent close_notify: a clean end of the TLS session
                if self._write_bio.pending:
                    await self._flush()

                raise
            except ssl.SSLSyscallError as exc:
                self._read_bio.write_eof()
                self._write_bio.write_eof()
                raise BrokenResourceError from exc
            except ssl.SSLError as exc:
                self._read_bio.write_eof()
                self._write_bio.write_eof()
                if _is_unexpected_eof(exc):
                    if self.standard_compatible:
                        raise BrokenResourceError from exc

                    raise EndOfStream from None

                raise
            else:
                if self._write_bio.pending:
                    await self._flush()

                return result

    async def unwrap(self) -> tuple[AnyByteStream, bytes]:
        """Perform the closing handshake and give the transport back.

        :return: the transport stream and any bytes that arrived after the
            peer's ``close_notify`` (already plaintext)
        """
        try:
            await self._call_sslobject_method(self._ssl_object.unwrap)
        except ssl.SSLZeroReturnError:
            pass

        self._read_bio.write_eof()
        self._write_bio.write_eof()
        return self.transport_stream, self._read_bio.read()

    async def aclose(self) -> None:
        if self.standard_compatible and not self._broken:
            try:
                await self.unwrap()
            except BaseException:
                await aclose_forcefully(self.transport_stream)
                raise

        await self.transport_stream.aclose()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")

        try:
            data = await self._call_sslobject_method(self._ssl_object.read, max_bytes)
        except ssl.SSLZeroReturnError:
            raise EndOfStream from None

        if not data:
            raise EndOfStream

        return data

    async def send(self, item: bytes) -> None:
        await self._call_sslobject_method(self._ssl_object.write, item)

    async def send_eof(self) -> None:
        tls_version = self.extra(TLSAttribute.tls_version)
        match = re.match(r"TLSv(\d+)(?:\.(\d+))?", tls_version)
        if match:
            major, minor = int(match.group(1)), int(match.group(2) or 0)
            if (major, minor) < (1, 3):
                raise NotImplementedError(
                    f"send_eof() requires at least TLSv1.3; current "
                    f"session uses {tls_version}"
                )

        raise NotImplementedError(
            "send_eof() has not yet been implemented for TLS streams"
        )

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        ssl_object = self._ssl_object
        return {
            **self.transport_stream.extra_attributes,
            TLSAttribute.alpn_protocol: ssl_object.selected_alpn_protocol,
            TLSAttribute.channel_binding_tls_unique: (ssl_object.get_channel_binding),
            TLSAttribute.cipher: ssl_object.cipher,
            TLSAttribute.peer_certificate: lambda: ssl_object.getpeercert(False),
            TLSAttribute.peer_certificate_binary: lambda: ssl_object.getpeercert(True),
            TLSAttribute.server_side: lambda: ssl_object.server_side,
            TLSAttribute.shared_ciphers: lambda: (
                ssl_object.shared_ciphers() if ssl_object.server_side else None
            ),
            TLSAttribute.standard_compatible: lambda: self.standard_compatible,
            TLSAttribute.ssl_object: lambda: ssl_object,
            TLSAttribute.tls_version: ssl_object.version,
        }


@dataclass(eq=False)
class TLSListener(Listener[TLSStream]):
    """Wraps every connection another listener accepts in TLS (server side).

    A failed handshake goes to :meth:`handle_handshake_error` rather than to
    the handler; the listener keeps serving.

    :param listener: the listener to wrap
    :param ssl_context: the server-side SSL context
    :param standard_compatible: passed on to :meth:`TLSStream.wrap`
    :param handshake_timeout: seconds a client gets to finish the handshake
    """

    listener: Listener[Any]
    ssl_context: ssl.SSLContext
    standard_compatible: bool = True
    handshake_timeout: float = 30

    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: AnyByteStream) -> None:
        """Called when the handshake with a new client fails.

        Closes the stream and logs the error (cancellation excepted), then
        re-raises ``exc`` if it is not an :class:`Exception`. Override it to
        handle these failures differently.
        """
        await aclose_forcefully(stream)
        if not isinstance(exc, get_cancelled_exc_class()):
            # exc_info given explicitly: this may run outside the except block
            _logger.exception("Error during TLS handshake", exc_info=exc)

        if not isinstance(exc, Exception):
            raise exc

    async def serve(
        self,
        handler: Callable[[TLSStream], Any],
        task_group: TaskGroup | None = None,
    ) -> None:
        @wraps(handler)
        async def handler_wrapper(stream: AnyByteStream) -> None:
            try:
                with fail_after(self.handshake_timeout):
                    wrapped = await TLSStream.wrap(
                        stream,
                        ssl_context=self.ssl_context,
                        standard_compatible=self.standard_compatible,
                    )
            except BaseException as exc:
                await self.handle_handshake_error(exc, stream)
            else:
                await handler(wrapped)

        await self.listener.serve(handler_wrapper, task_group)

    async def aclose(self) -> None:
        await self.listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            **self.listener.extra_attributes,
            TLSAttribute.standard_compatible: lambda: self.standard_compatible,
        }


class TLSConnectable(ByteStreamConnectable):
    """Connects with another connectable and wraps the connection in TLS.

    :param connectable: the connectable giving the transport stream
    :param hostname: the server name to send and verify (see
        :meth:`TLSStream.wrap`)
    :param ssl_context: the client-side context (default: the system's)
    :param standard_compatible: passed on to :meth:`TLSStream.wrap`
    """

    def __init__(
        self,
        connectable: AnyByteStreamConnectable,
        *,
        hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        standard_compatible: bool = True,
    ) -> None:
        if ssl_context is None:
            ssl_context = _default_context(False)
        elif not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError(
                f"ssl_context must be an instance of ssl.SSLContext, not "
                f"{type(ssl_context).__qualname__}"
            )

        self.connectable = connectable
        self.ssl_context: ssl.SSLContext = ssl_context
        self.hostname = hostname
        self.standard_compatible = standard_compatible

    async def connect(self) -> TLSStream:
        stream = await self.connectable.connect()
        try:
            return await TLSStream.wrap(
                stream,
                hostname=self.hostname,
                ssl_context=self.ssl_context,
                standard_compatible=self.standard_compatible,
            )
        except BaseException:
            await aclose_forcefully(stream)
            raise


__all__ = (
    "TLSAttribute",
    "TLSConnectable",
    "TLSListener",
    "TLSStream",
)
