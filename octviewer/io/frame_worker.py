"""A decoding process for ``progressive``: JPEG 2000 frames in on stdin, pixels out on stdout.

OpenJPEG (pylibjpeg-openjpeg) holds the GIL while it decodes, so threads do not run frames in
parallel; processes do. This is a plain ``python -m octviewer.io.frame_worker`` child rather than
a ``multiprocessing`` pool because multiprocessing's spawn re-imports the caller's ``__main__``
(a user's unguarded script would run again) and fork is unsafe in a Qt process with threads.
It imports only NumPy and OpenJPEG, so it starts in a fraction of a second.

Protocol (little-endian): request ``<II`` (frame index, length) + codestream; index 0xFFFFFFFF
ends the process. Reply ``<IBIIcI`` (index, status, rows, cols, dtype char, length) + payload:
the pixels in C order when status is 0, a UTF-8 reason otherwise.
"""

from __future__ import annotations

import struct
import sys

REQUEST = struct.Struct("<II")
REPLY = struct.Struct("<IBIIcI")
QUIT = 0xFFFFFFFF


def _read_exactly(stream, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def serve(stdin, stdout) -> None:
    import numpy as np
    from openjpeg import decode

    while True:
        head = _read_exactly(stdin, REQUEST.size)
        if head is None:
            return
        index, length = REQUEST.unpack(head)
        if index == QUIT:
            return
        frame = _read_exactly(stdin, length)
        if frame is None:
            return
        try:
            pixels = np.ascontiguousarray(decode(frame))
            if pixels.ndim == 3 and pixels.shape[-1] == 1:
                pixels = pixels[..., 0]
            if pixels.ndim != 2:
                raise ValueError(f"the frame decodes to shape {pixels.shape}, not one grey image")
            payload = memoryview(pixels).cast("B")
            stdout.write(REPLY.pack(index, 0, pixels.shape[0], pixels.shape[1], pixels.dtype.char.encode(),
                                    len(payload)))
            stdout.write(payload)
        except Exception as exc:  # reported to the parent, which names the file and the B-scan
            reason = (" ".join(str(exc).split()) or f"{type(exc).__name__} without a message")[:300].encode()
            stdout.write(REPLY.pack(index, 1, 0, 0, b"?", len(reason)))
            stdout.write(reason)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
