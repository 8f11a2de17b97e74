"""Local files another user could have written: a path is trusted when it is safe from them."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

#: Who else may change a file: its group, or anyone. A file or folder with either bit is
#: not trusted (a sticky folder above it is: others can add names there, not replace ours).
WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def why_not_private(path: Path, only_mine: bool = False, sticky_ok: bool = False) -> str | None:
    """Why another local user could have written or replaced `path`; None when nobody could.

    Trusted: `path` is there, belongs to this user or root, and is not writable by its group
    or others; every folder above it, up to /, belongs to this user or root and is not
    writable by group or others either, unless it is sticky (like /tmp: another user may add
    names there but not rename or remove ours). A symbolic link on the way is checked as a
    link (its owner) and the path it leads to is checked as well. The standard library only:
    flows/local_api.py calls this before the run's Prefect API starts.

    Args:
        path: a file or a folder.
        only_mine: `path` itself must belong to this user (root's is not enough).
        sticky_ok: `path` may be a sticky folder, as the folders above it may (this user
            is about to make a folder of its own in it).
    """
    if os.name != "posix":
        return None  # no owners and modes of this kind to check
    absolute = path if path.is_absolute() else Path.cwd() / path
    mine = os.getuid()
    # The path as given, then where its links lead (once when there are none).
    for chain in dict.fromkeys((absolute, absolute.resolve())):
        for place in (chain, *chain.parents):
            try:
                found = os.lstat(place)
            except OSError as exc:
                return f"cannot be checked: '{place}' {exc.strerror or type(exc).__name__}"
            itself = place == chain
            named = "it" if itself else f"its folder '{place}'"
            if found.st_uid not in ({mine} if itself and only_mine else {mine, 0}):
                return f"{named} belongs to another user (uid {found.st_uid})"
            if stat.S_ISLNK(found.st_mode):
                continue  # a link's own mode means nothing; where it leads is the second chain
            sticky = stat.S_ISDIR(found.st_mode) and found.st_mode & stat.S_ISVTX
            if found.st_mode & WRITABLE_BY_OTHERS and not (sticky and (sticky_ok or not itself)):
                return f"{named} is writable by {_who(found.st_mode)} (mode {_mode(found)})"
    return None


def private_folder(folder: Path) -> None:
    """Make sure nobody but this user can change what is written in `folder`: the folders
    missing on the way are created for this user only (0700), once the folder that will hold
    them is checked (`why_not_private`; a sticky one, like /tmp, may hold them).

    Raises:
        SafetyRefusal: guard plan_file; the folder, or the one that would hold it, is not
            private: nothing was created or written in it.
        OSError: a folder could not be created.
    """
    absolute = Path(os.path.abspath(folder))
    missing = [place for place in (absolute, *absolute.parents) if not os.path.lexists(place)]
    holder = absolute.parents[len(missing) - 1] if missing else absolute
    if reason := why_not_private(holder, sticky_ok=bool(missing)):
        raise _refusal(f"the folder '{holder}' where plans are written cannot be trusted: {reason}")
    for place in reversed(missing):
        # One made meanwhile by someone else is found by the check below.
        with contextlib.suppress(FileExistsError):
            place.mkdir(mode=0o700)
    if missing and (reason := why_not_private(absolute)):
        raise _refusal(
            f"the folder '{absolute}' where plans are written cannot be trusted: {reason}"
        )


def check_plan_file(path: Path) -> None:
    """Refuse a plan, a part of one or a journal that another user could have written.

    Raises:
        SafetyRefusal: guard plan_file, naming the file and the reason; nothing was deleted.
    """
    if reason := why_not_private(path):
        raise _refusal(f"the plan file '{path}' cannot be trusted: {reason}")


def check_input_file(path: Path, what: str) -> None:
    """Reject an input file of the operator's (`what`: e.g. "targets file") that another user
    could have written.

    Raises:
        ConfigError: naming the file and the reason.
    """
    if reason := why_not_private(path):
        # Loaded when needed: the project's errors import botocore, too slow for local_api.
        from tasks.errors import ConfigError

        raise ConfigError(f"{what} '{path}' cannot be trusted", [f"{path}: {reason}"])


def _refusal(reason: str) -> Exception:
    from tasks.errors import SafetyRefusal  # see check_input_file

    return SafetyRefusal("plan_file", 0, 0, reason=reason)


def _who(mode: int) -> str:
    group, others = mode & stat.S_IWGRP, mode & stat.S_IWOTH
    return "its group and others" if group and others else "its group" if group else "others"


def _mode(found: os.stat_result) -> str:
    return f"{stat.S_IMODE(found.st_mode):04o}"
