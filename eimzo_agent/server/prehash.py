"""A create_pkcs7 request's document hashed while its frame is still arriving (issue 14).

Why: a 10 MB document's O'zDSt hash takes ≈ 90 ms, and it used to start only after the 13 MB frame had arrived
and been parsed and decoded. The session (server/listener.py) hands each unmasked piece of a large frame to
`DocumentPrehash`, which passes the document's Base64 text on to a digester in a worker thread; by the time the
request is answered the digests are (nearly) ready, and the signature uses them instead of hashing again.

Speculative, so cheap to be wrong: only a frame that starts like a create_pkcs7 request is looked at
(`protocol.large_request.document_start`), only when the agent says the caller could sign (it gives the digester),
and the result is only a hint — a digest is used only for the very string the request's parser finds there, and
a digester that sees anything but strict Base64 gives nothing. One worker thread serves every connection, so the
pieces of one document are hashed in order and a burst of large uploads cannot take more than one core; the pieces
waiting for it are bounded (`MAX_QUEUED_BYTES`), past which a document is simply not hashed ahead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from eimzo_agent.caller import Caller
from eimzo_agent.protocol.large_request import PreparedDocument, document_start

T = TypeVar("T")
log = logging.getLogger(__name__)


class Digester(Protocol):
    """What the agent gives for a document it may be asked to sign (crypto.base64_digests.Base64Digests)."""

    def feed(self, text: bytes | memoryview) -> None: ...
    def finish(self) -> dict[str, bytes] | None: ...


DigesterFactory = Callable[[Caller], Digester | None]

#: Bytes of documents waiting in the worker's queue, all connections together, beyond which a document is not hashed
#: ahead (its request is then answered the ordinary way): the pieces are copies of the frames' bytes, so without a
#: bound a burst of large uploads faster than the hash could hold as much again as the frames themselves.
MAX_QUEUED_BYTES = 64 * 1024 * 1024

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()
_queued = 0  # bytes submitted to the worker and not yet fed; changed under _queued_lock
_queued_lock = threading.Lock()


def queued_bytes() -> int:
    """Bytes of documents waiting for the worker now (tests)."""
    return _queued


def _take_queue(count: int) -> bool:
    global _queued
    with _queued_lock:
        if _queued + count > MAX_QUEUED_BYTES:
            return False
        _queued += count
        return True


def _give_queue(count: int) -> None:
    global _queued
    with _queued_lock:
        _queued -= count


def _submit(fn: Callable[..., T], *args: object) -> Future[T]:
    global _worker
    if _worker is None:
        with _worker_lock:
            if _worker is None:
                _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eimzo-prehash")
    return _worker.submit(fn, *args)


class DocumentPrehash:
    """One large frame's document text, handed to a digester in the worker thread as the frame arrives."""

    def __init__(self, digester: Digester, start: int) -> None:
        self.start = start  # where the document's Base64 begins in the frame's payload
        self._digester = digester
        self._future: Future[dict[str, bytes] | None] | None = None
        self._ended = False
        self._cancelled = False

    @classmethod
    def begin(cls, first: bytes, digester_for: DigesterFactory, caller: Caller) -> DocumentPrehash | None:
        """A DocumentPrehash when the frame's first bytes are a create_pkcs7 request's and the agent gives a
        digester for this caller; None otherwise."""
        start = document_start(first)
        if start is None:
            return None
        digester = digester_for(caller)
        if digester is None:
            return None
        log.debug("prehash: a create_pkcs7 document from %s is hashed as it arrives", caller.label)
        return cls(digester, start)

    def observe(self, chunk: bytes, offset: int) -> None:
        """The frame's payload bytes from `offset` on, unmasked (immutable: the worker reads them later)."""
        if self._ended or self._cancelled:
            return
        begin = max(0, self.start - offset)
        if begin >= len(chunk):
            return
        end = chunk.find(b'"', begin)  # Base64 has no quotes: the first one ends the string
        piece = memoryview(chunk)[begin:end if end >= 0 else len(chunk)]
        if not _take_queue(len(piece)):
            self.cancel()  # the worker is too far behind: this document is hashed when it is signed
            return
        _submit(self._feed, piece)
        if end >= 0:
            self._ended = True
            self._future = _submit(self._finish)

    def prepared(self) -> PreparedDocument | None:
        """What the request's parser needs to hand the digests on; None when the document's end was not seen or the
        work was given up."""
        if self._future is None or self._cancelled:
            return None
        return PreparedDocument(self.start, self._future)

    def cancel(self) -> None:
        """The frame will not be answered (the page went away): pieces still queued are skipped."""
        self._cancelled = True

    def _feed(self, piece: memoryview) -> None:
        try:
            if not self._cancelled:
                self._digester.feed(piece)
        finally:
            _give_queue(len(piece))

    def _finish(self) -> dict[str, bytes] | None:
        return None if self._cancelled else self._digester.finish()
