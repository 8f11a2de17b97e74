"""The targets file of a fleet: buckets, accounts and regions, read and validated whole."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from tasks.aws_names import CONTROL_CHARACTERS
from tasks.errors import ConfigError, shown_text
from tasks.s3.private_files import check_input_file
from tasks.settings import RunSettings, load_settings, parameters

#: The settings a fleet run decides for all its targets: a targets file may not set them.
FLEET_DECIDES = ("dry_run", "plan", "as_of")
#: Keys of a target's entry that are not settings of its run.
TARGET_ONLY = ("name", "group")
SECTIONS = ("defaults", "targets")
#: Settings the file itself must give every target: the environment never picks the bucket.
REQUIRED = ("bucket", "prefix")
GROUP = re.compile(r"[A-Za-z0-9_-]+")
#: A key shown back in a problem looks like a name, not like a value pasted in the wrong place.
NAME_SHAPED = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
#: Quoted text in PyYAML's messages: a token (kept), or a piece of the file (dropped).
QUOTED = re.compile(r"\s*'([^']*)'|\s*\"([^\"]*)\"")
YAML_TOKEN = re.compile(r"<[a-z ]+>")
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"
#: How deep a targets file may nest lists and mappings, aliases followed (it needs four:
#: the file, its targets, a target, a value). Reading deeper ones recurses past Python's limit.
MAX_DEPTH = 20
#: How many targets a problem of the defaults names before it counts the rest.
TARGETS_NAMED = 3
OVERLAP = (
    "the same bucket, prefix within it; two runs would contend for one bucket lock and plan "
    "the same objects"
)

#: A problem before its line is written in: (line, text).
Problem = tuple[int, str]


@dataclass(frozen=True)
class Target:
    """One target of a fleet: the flow parameters of its child run."""

    name: str
    #: The line of the target's entry in the file, from 1.
    line: int
    group: str | None
    #: The defaults merged with the entry, without `name` and `group`.
    parameters: dict[str, Any]

    @property
    def bucket(self) -> str:
        return str(self.parameters["bucket"])

    @property
    def prefix(self) -> str:
        return str(self.parameters["prefix"])


@dataclass(frozen=True)
class Targets:
    """A fleet's targets, in the file's order."""

    #: The file's name as given.
    source: str
    targets: tuple[Target, ...]

    def in_group(self, group: str | None) -> tuple[Target, ...]:
        """The targets of one schedule group; None: every target."""
        if group is None:
            return self.targets
        return tuple(target for target in self.targets if target.group == group)


def allowed_settings() -> tuple[str, ...]:
    """The settings a targets file may set, in its defaults or a target: the flow parameters
    the fleet does not decide."""
    return tuple(name for name in parameters() if name not in FLEET_DECIDES)


def load_targets(path: Path) -> Targets:
    """Read and validate a fleet's targets file.

    Args:
        path: the file; its name is the `source` of the result and of every error.

    Raises:
        ConfigError: the file cannot be read, or (naming every problem) is not a valid one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror
        shown = shown_text(str(path))
        raise ConfigError(
            f"cannot read targets file '{shown}'", [f"{shown}: {reason or type(exc).__name__}"]
        ) from None
    check_input_file(path, "targets file")  # read first: a missing file is said as such
    return read_targets(text, str(path))


def read_targets(text: str, source: str = "targets file") -> Targets:
    """Validate the text of a fleet's targets file, every target as a run would be validated.

    Args:
        text: the file's YAML.
        source: what to call the file in the error.

    Raises:
        ConfigError: "invalid targets file 'SOURCE'", listing every problem by its line; what
            the file or its name hold is shown escaped where it would not print.
    """
    reader = _Reader()
    targets = reader.read(text)
    if reader.problems:
        ordered = sorted(reader.problems, key=lambda problem: problem[0])
        raise ConfigError(
            f"invalid targets file '{shown_text(source)}'",
            [shown_text(f"line {line}: {message}") for line, message in ordered],
        )
    return Targets(source, targets)


@dataclass(frozen=True)
class _Value:
    """A key of the file with its line, and its value built from YAML."""

    line: int
    value: Any


@dataclass(frozen=True)
class _Entry:
    """A target's entry as read, before the fleet-wide checks."""

    index: int
    line: int
    label: str
    name: str | None
    named_in_file: bool
    group: str | None
    parameters: dict[str, Any]


class _Reader:
    """One reading of a targets file: its nodes, their values and the problems found."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # Problems of the defaults, once each, with the targets they spoil.
        self.in_defaults: dict[Problem, list[str]] = defaultdict(list)
        # Keys of the defaults whose values could not be built (their problem is reported).
        self.unreadable_defaults: set[str] = set()
        self.loader: Any = None

    def read(self, text: str) -> tuple[Target, ...]:
        """The file's targets, valid or not (yaml.compose's steps, then safe construction)."""
        too_deep = _too_deep(text)
        if too_deep is not None:
            self.problems.append(too_deep)
            return ()
        try:
            self.loader = yaml.SafeLoader(text)
        except yaml.YAMLError as exc:
            self.problems.append(_syntax_problem(exc, text))
            return ()
        try:
            root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            self.problems.append(_syntax_problem(exc, text))
            return ()
        else:
            return self._fleet(root)
        finally:
            self.loader.dispose()

    def _fleet(self, root: Any) -> tuple[Target, ...]:
        if not isinstance(root, MappingNode):
            line = _line(root) if root is not None else 1
            self.problems.append((line, "the file must be a mapping of defaults and targets"))
            return ()
        sections = self._keys(root, self.problems.append)
        for key, (line, _) in sections.items():
            if key not in SECTIONS:
                hint = _closest(key, SECTIONS)
                message = f"{_shown(key)}: not a section of a targets file (defaults, targets)"
                self.problems.append((line, message + hint))
        defaults = self._defaults(sections.get("defaults"))
        if "targets" not in sections:
            self.problems.append((_line(root), "targets: required: the list of targets"))
            return ()
        line, node = sections["targets"]
        if not isinstance(node, SequenceNode) or not node.value:
            self.problems.append((line, "targets: must be a list of at least one target"))
            return ()
        entries = [self._entry(index, item, defaults) for index, item in enumerate(node.value, 1)]
        read = [entry for entry in entries if entry is not None]
        self._report_defaults(total=len(read))
        self._duplicates(read)
        self._overlaps(read)
        return tuple(
            Target(entry.name or "", entry.line, entry.group, entry.parameters) for entry in read
        )

    def _defaults(self, section: tuple[int, Any] | None) -> dict[str, _Value]:
        if section is None:
            return {}
        line, node = section
        if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
            return {}
        if not isinstance(node, MappingNode):
            self.problems.append((line, "defaults: must be a mapping of settings"))
            return {}

        def problem(found: Problem) -> None:
            self.problems.append((found[0], f"defaults: {found[1]}"))

        values: dict[str, _Value] = {}
        for key, (key_line, value_node) in self._keys(node, problem).items():
            refusal = _refusal(key, in_target=False)
            if refusal:
                problem((key_line, refusal))
            elif (value := self._value(key, key_line, value_node, problem)) is not None:
                values[key] = value
            else:
                self.unreadable_defaults.add(key)
        return values

    def _entry(self, index: int, node: Any, defaults: dict[str, _Value]) -> _Entry | None:
        found: list[Problem] = []
        if not isinstance(node, MappingNode):
            where = f"targets[{index}]"
            self.problems.append((_line(node), f"{where}: must be a mapping of settings"))
            return None
        given: dict[str, _Value] = {}
        unreadable: set[str] = set()
        for key, (key_line, value_node) in self._keys(node, found.append).items():
            refusal = _refusal(key, in_target=True)
            if refusal:
                found.append((key_line, refusal))
            elif (value := self._value(key, key_line, value_node, found.append)) is not None:
                given[key] = value
            else:
                unreadable.add(key)
        unreadable |= self.unreadable_defaults - given.keys()
        settings = {key: value.value for key, value in given.items() if key not in TARGET_ONLY}
        merged = {key: value.value for key, value in defaults.items()} | settings
        missing = [key for key in REQUIRED if merged.get(key) is None and key not in unreadable]
        known = "name" in unreadable
        name, named = _name(given.get("name"), merged, found, known)
        group = _group(given.get("group"), found)
        label = _label(index, name, given.get("name"), merged, known)
        found += [(_line(node), f"{key}: required in every target") for key in missing]
        # What the file left out or could not give, the environment may have filled in.
        incomplete = [key for key in REQUIRED if merged.get(key) is None]
        skipped = unreadable | set(REQUIRED if incomplete else ())
        for problem in _settings_problems(merged, skipped):
            setting = _setting_named(problem)
            if setting in given:
                found.append((given[setting].line, problem))
            elif setting in defaults:
                self.in_defaults[(defaults[setting].line, problem)].append(label)
            else:
                found.append((_line(node), problem))
        self.problems += [(line, f"{label}: {problem}") for line, problem in found]
        return _Entry(index, _line(node), label, name, named, group, merged)

    def _report_defaults(self, total: int) -> None:
        for (line, problem), labels in self.in_defaults.items():
            if len(labels) == total:
                spoiled = "every target"
            elif len(labels) > TARGETS_NAMED:
                shown = ", ".join(labels[:TARGETS_NAMED])
                spoiled = f"{shown} and {len(labels) - TARGETS_NAMED} more"
            else:
                spoiled = ", ".join(labels)
            self.problems.append((line, f"defaults, in {spoiled}: {problem}"))

    def _duplicates(self, entries: list[_Entry]) -> None:
        first: dict[str, _Entry] = {}
        for entry in entries:
            if entry.name is None:
                continue
            earlier = first.setdefault(entry.name, entry)
            # Two names that both default to BUCKET/PREFIX are one overlap, reported as such.
            if earlier is not entry and (entry.named_in_file or earlier.named_in_file):
                self.problems.append(
                    (
                        entry.line,
                        f"{entry.label}: name: the same as targets[{earlier.index}]'s "
                        f"(line {earlier.line}); every target needs its own",
                    )
                )

    def _overlaps(self, entries: list[_Entry]) -> None:
        by_bucket: dict[str, list[_Entry]] = defaultdict(list)
        for entry in entries:
            bucket, prefix = entry.parameters.get("bucket"), entry.parameters.get("prefix")
            if not (isinstance(bucket, str) and isinstance(prefix, str)):
                continue
            for earlier in by_bucket[bucket]:
                other = str(earlier.parameters["prefix"])
                if prefix.startswith(other) or other.startswith(prefix):
                    self.problems.append(
                        (
                            entry.line,
                            f"{entry.label} overlaps targets[{earlier.index}] "
                            f"(line {earlier.line}): {OVERLAP}",
                        )
                    )
            by_bucket[bucket].append(entry)

    def _keys(self, node: Any, problem: Callable[[Problem], None]) -> dict[str, tuple[int, Any]]:
        """A mapping's keys, each with its line and its value's node.

        Merge keys (`<<: *anchor`) are followed as yaml.safe_load follows them, the mapping's
        own keys overriding merged ones; a key that is not a name, or is given twice, is a
        problem.
        """
        own = sum(1 for key, _ in node.value if key.tag != MERGE_TAG)
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            problem(_syntax_problem(exc, ""))
            return {}
        merged = len(node.value) - own
        keys: dict[str, tuple[int, Any]] = {}
        own_lines: dict[str, int] = {}
        for position, (key_node, value_node) in enumerate(node.value):
            line = _line(key_node)
            key = self._built(key_node)
            if not isinstance(key, str):
                problem((line, "a key must be a setting's name"))
                continue
            if position >= merged:
                if key in own_lines:
                    problem((line, f"{_shown(key)}: given twice (first on line {own_lines[key]})"))
                    continue
                own_lines[key] = line
            keys[key] = (line, value_node)
        return keys

    def _value(
        self, key: str, key_line: int, node: Any, problem: Callable[[Problem], None]
    ) -> _Value | None:
        """A key's value, built as yaml.safe_load builds it; None (and a problem) when it
        cannot be."""
        try:
            return _Value(key_line, self.loader.construct_object(node, deep=True))
        except yaml.YAMLError as exc:
            line, message = _syntax_problem(exc, "")
            problem((line, f"{key}: {message}"))
        except (ValueError, TypeError, OverflowError):
            # A value of a YAML type that does not hold together, e.g. the date 2024-13-45.
            problem((_line(node), f"{key}: a YAML value that cannot be read"))
        return None

    def _built(self, node: Any) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            return None


def _refusal(key: str, in_target: bool) -> str | None:
    """Why a key may not be set where it is, or None when it may."""
    if key in allowed_settings() or (in_target and key in TARGET_ONLY):
        return None
    if key in TARGET_ONLY:
        return f"{key}: set in each target, not in defaults"
    if key in FLEET_DECIDES:
        return f"{key}: decided by the fleet's run, not by the targets file"
    if key in RunSettings.model_fields:
        return f"{key}: set by the worker's environment, not by the targets file"
    allowed = (*allowed_settings(), *TARGET_ONLY) if in_target else allowed_settings()
    where = "a target" if in_target else "defaults"
    return f"{_shown(key)}: not a setting {where} may set{_closest(key, allowed)}"


def _name(
    given: _Value | None, merged: dict[str, Any], found: list[Problem], known: bool
) -> tuple[str | None, bool]:
    """The target's name and whether the file gave one (`known`: one it could not read);
    None when neither it nor the bucket and prefix make a name that can be shown."""
    if known:
        return None, True
    if given is not None:
        if isinstance(given.value, str) and given.value.strip() and _printable(given.value):
            return given.value, True
        found.append((given.line, "name: must be a non-empty line of text"))
        return None, True
    bucket, prefix = merged.get("bucket"), merged.get("prefix")
    if isinstance(bucket, str) and isinstance(prefix, str):
        name = f"{bucket}/{prefix}"
        return (name if _printable(name) else None), False
    return None, False


def _label(
    index: int, name: str | None, given: _Value | None, merged: dict[str, Any], known: bool
) -> str:
    """How problems call a target: its place, and its name, or the one it was given or would
    have had when that is not a valid one, shown escaped where it would not print."""
    shown = name
    if shown is None and given is not None and isinstance(given.value, str):
        shown = given.value.strip()
    elif shown is None and given is None and not known:
        bucket, prefix = merged.get("bucket"), merged.get("prefix")
        if isinstance(bucket, str) and isinstance(prefix, str):
            shown = f"{bucket}/{prefix}"
    return f"targets[{index}]" + (f" ({shown_text(shown)})" if shown else "")


def _group(given: _Value | None, found: list[Problem]) -> str | None:
    if given is None:
        return None
    if isinstance(given.value, str) and GROUP.fullmatch(given.value):
        return given.value
    found.append((given.line, "group: must be letters, digits, '-' and '_' (at least one)"))
    return None


def _settings_problems(merged: dict[str, Any], skipped: Iterable[str]) -> list[str]:
    """What `load_settings` finds wrong with a target's settings, but for those about the
    skipped settings: ones the file left out or gave unreadably, which the environment may
    have filled in."""
    try:
        load_settings(merged)
    except ConfigError as exc:
        return [problem for problem in exc.problems if _setting_named(problem) not in skipped]
    return []


def _setting_named(problem: str) -> str:
    """The setting a problem of `load_settings` names: 'setting (from SOURCE): message'."""
    return problem.split(":", 1)[0].split(" (from ", 1)[0].split(".", 1)[0]


def _syntax_problem(exc: yaml.YAMLError, text: str) -> Problem:
    """A YAML error as one problem at its line, without the lines of the file PyYAML quotes."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return line, "not valid YAML: a character YAML does not allow"
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = _unquoted(str(getattr(exc, "problem", None) or "cannot be read"))
    return line, f"not valid YAML: {problem}"


def _unquoted(message: str) -> str:
    """PyYAML's message without the pieces of the file it quotes (an alias, a tag, a name);
    a quoted token or punctuation stays."""

    def kept(quoted: re.Match[str]) -> str:
        inner = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        return quoted.group(0) if len(inner) <= 2 or YAML_TOKEN.fullmatch(inner) else ""

    return QUOTED.sub(kept, message)


def _closest(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.7)
    return f"; did you mean {close[0]}?" if close else ""


def _shown(key: str) -> str:
    return key if NAME_SHAPED.fullmatch(key) else "a key"


def _printable(text: str) -> bool:
    """No control characters, no invisible format characters (a bidi control makes a name
    read as another), no lone surrogates (no UTF-8 output can carry them)."""
    if CONTROL_CHARACTERS.search(text):
        return False
    return not any(unicodedata.category(character) in ("Cf", "Cs") for character in text)


def _too_deep(text: str) -> Problem | None:
    """Where the file nests lists and mappings deeper than MAX_DEPTH, aliases followed (an
    alias holds as many levels as its anchor's node); None when it does not, or when it is
    not YAML (the reading reports that). PyYAML parses without recursion, but composes and
    constructs by recursion: this looks at the events first."""
    open_nodes: list[tuple[str | None, list[int]]] = []  # each one's anchor, deepest child
    anchored: dict[str, int] = {}  # an anchor's levels, 0 for a scalar
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, CollectionStartEvent):
                open_nodes.append((event.anchor, [0]))
                if len(open_nodes) > MAX_DEPTH:
                    return _line(event), f"nested deeper than {MAX_DEPTH} lists and mappings"
                continue
            if isinstance(event, CollectionEndEvent):
                anchor, deepest = open_nodes.pop()
                levels = deepest[0] + 1
            elif isinstance(event, AliasEvent):
                levels = anchored.get(str(event.anchor), 0)
                if len(open_nodes) + levels > MAX_DEPTH:
                    message = f"nested deeper than {MAX_DEPTH} lists and mappings (by aliases)"
                    return _line(event), message
                anchor = None
            elif isinstance(event, NodeEvent):  # a scalar
                anchor, levels = event.anchor, 0
            else:
                continue
            if anchor is not None:
                anchored[anchor] = levels
            if open_nodes:
                parent = open_nodes[-1][1]
                parent[0] = max(parent[0], levels)
    except yaml.YAMLError:
        return None
    return None
    return None


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1
