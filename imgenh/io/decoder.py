"""What the decoders print: fd 2 captured around each decode, and the messages cleaned up.

libjpeg, libpng and libtiff (through OpenCV's log) write warnings straight to file
descriptor 2, with no file name and past any logging setup. Each decode runs with fd 2
pointed at an in-memory file; what lands there becomes a note or a refusal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import tempfile
import threading

# fd 2 is process-wide: captures in one process take turns.
_CAPTURE_LOCK = threading.Lock()
# "[ WARN:0@0.032] global grfmt_tiff.cpp:123 TIFF_Warning " before OpenCV's log messages.
_CV_LOG_PREFIX = re.compile(r"^\[\s*[A-Z]+:[^\]]*\]\s+(?:\S+\s+)?\S+:\d+\s+(?:\S+\s+)?")
# "OpenCV(5.0.0) /io/opencv/modules/imgcodecs/src/bitstrm.cpp:59: error: (-2:Unspecified error) "
_CV_ERROR_PREFIX = re.compile(r"OpenCV\([^)]*\)\s+\S+:\d+:\s+error:\s+\([^)]*\)\s+")
_CV_FUNCTION_SUFFIX = re.compile(r"\s+in function '[^']*'$")
# Messages that say nothing about the file's health. OpenCV's own TIFF writer labels an
# alpha channel in a way its reader then warns about, for every RGBA TIFF it writes.
_HARMLESS = ("Sum of Photometric type-related color channels and ExtraSamples doesn't match",)
_MESSAGE_MAX = 300


def _new_capture_fd() -> int:
    """A readable, writable fd with no name: a memfd on Linux, else an unlinked temp file."""
    try:
        return os.memfd_create("imgenh-decoder-messages", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd, name = tempfile.mkstemp(prefix="imgenh-decoder-")
        os.unlink(name)
        return fd


class DecoderMessages:
    """Context manager: file descriptor 2 goes to an in-memory file while the block runs.

    After the block ``text`` holds what was written there. The real fd 2 is restored in
    every case (exceptions included); a closed fd 2 is closed again. Captures in one
    process take turns (a lock): fd 2 is process-wide, so threads decoding at the same
    time would otherwise read each other's messages.
    """

    def __init__(self) -> None:
        self.text = ""

    def __enter__(self) -> DecoderMessages:
        _CAPTURE_LOCK.acquire()
        self._held = _HeldSignals()
        self._saved, self._fd = None, None
        try:
            self._held.start()  # a Ctrl-C now waits until fd 2 is back (the decode is C anyway)
            if sys.stderr is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()  # what Python buffered goes out first
            try:
                self._saved: int | None = os.dup(2)
            except OSError:  # fd 2 closed: capture anyway (it may be the capture fd itself)
                self._saved = None
            self._fd = _new_capture_fd()
            if self._fd != 2:
                os.dup2(self._fd, 2)
        except BaseException:
            self._restore()
            raise
        return self

    def _restore(self) -> None:
        """Put fd 2 back, release the lock, then let held signals through (they may raise)."""
        try:
            if self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
            if self._fd is not None:
                os.close(self._fd)
        finally:
            _CAPTURE_LOCK.release()
            self._held.release()

    def __exit__(self, *exc_info) -> None:
        try:
            if self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = None
            elif self._fd != 2:
                os.close(2)
            size = os.lseek(self._fd, 0, os.SEEK_END)
            self.text = os.pread(self._fd, min(size, 1 << 16), 0).decode("utf-8", "replace")
        finally:
            self._restore()


class _HeldSignals:
    """SIGINT and SIGTERM held back while fd 2 is redirected, then delivered to their handlers.

    An interrupt in the middle of the redirection would otherwise leave fd 2 pointing at the
    capture file, and everything printed after it (the run's summary) would vanish. Only
    Python-level handlers on the main thread are held; ignored or default signals are left alone.
    """

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._caught: list[tuple[int, object]] = []

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            if callable(handler):
                self._previous[sig] = handler
                signal.signal(sig, lambda signum, frame: self._caught.append((signum, frame)))

    def release(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        for signum, frame in self._caught:
            self._previous[signum](signum, frame)  # e.g. raises KeyboardInterrupt


def decoder_messages(text: str) -> list[str]:
    """The distinct messages in what a decoder printed, without OpenCV's log prefixes.

    Known-harmless messages (see ``_HARMLESS``) are left out.
    """
    messages: list[str] = []
    for line in text.splitlines():
        line = _CV_ERROR_PREFIX.sub("", _CV_LOG_PREFIX.sub("", line.strip()))
        line = _CV_FUNCTION_SUFFIX.sub("", line).strip()
        line = line.removeprefix("imdecode_(''): ")
        if line and line not in messages and not any(h in line for h in _HARMLESS):
            messages.append(line)
    return messages


def one_line(messages: list[str]) -> str:
    """The messages joined on one line, cut to a length a log line can carry."""
    text = "; ".join(messages)
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3].rstrip() + "..."
