"""A bounded memo for what the server works out once per query text and reuses for every
request that sends the same text: the cost of an operation, the plans that complete its lists,
whether a resolver's selection asks for a field.

Keys must hold everything the value depends on (the text, the operation name, the shape of the
variables that matter); a full memo forgets its least recently used entry, so clients sending
ever new texts only evict old ones. Keys name a text by its digest (:func:`text_key`), never by
the text: a body may be megabytes, and thousands of them kept would be gigabytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Memo", "text_key"]

V = TypeVar("V")


def text_key(text: str) -> bytes:
    """A 16-byte digest naming ``text`` in a memo's key.

    >>> text_key("{ me { role } }") == text_key("{ me { role } }") != text_key("{ me { user } }")
    True
    """
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class Memo(Generic[V]):
    """``memo.get(key, compute)``: the value kept for ``key``, computed on a miss (thread-safe;
    two threads missing at once may both compute, one result is kept).

    >>> memo: Memo[int] = Memo(2)
    >>> memo.get("a", lambda: 1), memo.get("a", lambda: 2)
    (1, 1)
    >>> memo.get("b", lambda: 3), memo.get("c", lambda: 4), memo.get("a", lambda: 5)
    (3, 4, 5)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        with self._lock:
            try:
                value = self._items[key]
            except KeyError:
                pass
            else:
                self._items.move_to_end(key)
                return value
        value = compute()
        with self._lock:
            self._items[key] = value
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)
