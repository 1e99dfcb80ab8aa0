"""What kind of file a path is, in words, for the messages that refuse anything but a regular
file: data, model files, checkpoints and outputs are read and written as regular files only (a
named pipe blocks the open until a writer comes, a device such as ``/dev/zero`` never ends).

One table, so every refusal names the kind alike ("... is a named pipe (FIFO) ...").

>>> import stat
>>> kind_of(stat.S_IFIFO)
'a named pipe (FIFO)'
>>> kind_of(stat.S_IFREG)
'a regular file'
"""

from __future__ import annotations

import stat

__all__ = ["kind_of"]

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """The kind of file whose ``st_mode`` is ``mode``, with its article: 'a named pipe
    (FIFO)', 'a character device', ...; 'a special file' for any other."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")
