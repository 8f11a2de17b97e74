"""A versions plan checked against a fresh listing: only versions its rule still selects go."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import groupby
from operator import attrgetter

from tasks.s3.listing import ListedObject
from tasks.s3.manifest import PlannedObject
from tasks.s3.selection import is_selected


def still_selected(
    planned: Iterable[PlannedObject],
    fresh: Iterable[ListedObject],
    prefix: str,
    cutoff: datetime,
    versions: str,
    changed: Callable[[PlannedObject], None],
) -> Iterator[PlannedObject]:
    """The planned versions that the plan's own rule still selects in a fresh listing.

    A version is deleted by id, with no condition a server could check. In a plan of
    noncurrent versions, a key undeleted (its delete marker removed) since the plan was made
    is current again, and deleting its version would destroy the object for good. In a plan
    from a file (a saved plan, an inventory), a line may name a version written today with an
    old date. So before a version goes, the prefix is listed again and joined with the plan: a
    version gone, current again, noncurrent only since the cutoff, or (all versions) last
    modified since the cutoff is handed to `changed` instead. The listing's facts decide, never
    the plan's.

    Both sides are in ListObjectVersions order, keys ascending (a versions plan is written in
    that order, and a saved one is refused otherwise). Memory holds one key's versions. A key
    the two orders disagree on is found nowhere in the listing: its versions count as changed
    and are kept, never deleted.
    """
    listing = iter(fresh)
    pending = next(listing, None)
    for key, group in groupby(planned, key=attrgetter("key")):
        while pending is not None and pending.key < key:
            pending = next(listing, None)
        now_listed: dict[str | None, ListedObject] = {}
        while pending is not None and pending.key == key:
            now_listed[pending.version_id] = pending
            pending = next(listing, None)
        for entry in group:
            now = now_listed.get(entry.version_id)
            if now is not None and is_selected(now, prefix, cutoff, versions):
                yield entry
            else:
                changed(entry)
