"""``--shard K/N``: a deterministic slice of a run, so N runs share one batch without a cluster.

A job belongs to shard K when a stable hash (SHA-1) of its output key, taken modulo N, is
K - 1. The key is the output path relative to the output root, so every machine that
plans the same inputs into the same layout cuts the batch the same way, and the N shards
together hold every job exactly once. Skips and planning failures are sharded too: each
shard's report lists only its own images.
"""

from __future__ import annotations

import dataclasses
import hashlib

from imgenh.plan import Plan


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises
    ------
    ValueError
        Saying what is wrong (Click turns it into a usage error naming ``--shard``).

    Examples
    --------
    >>> parse_shard("2/4")
    (2, 4)
    """
    k, slash, n = text.strip().partition("/")
    try:
        shard = int(k), int(n)
    except ValueError:
        shard = None
    if not slash or shard is None:
        raise ValueError(f"{text!r} is not K/N (e.g. 1/4: the first of four shards)")
    if shard[1] < 1 or not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"{text!r}: K must be between 1 and N (N >= 1)")
    return shard


def shard_of(key: str, count: int) -> int:
    """The shard (1 to ``count``) an output key belongs to; the same on every machine and run.

    Examples
    --------
    >>> shard_of("a/b.jpg", 1)
    1
    """
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(plan: Plan, shard: tuple[int, int] | None) -> Plan:
    """The part of ``plan`` in shard ``(K, N)``; the plan itself when ``shard`` is None."""
    if shard is None:
        return plan
    k, n = shard
    return dataclasses.replace(plan, jobs=[j for j in plan.jobs if shard_of(j.key, n) == k])
