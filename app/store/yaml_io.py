"""``cameras.yaml`` import and export.

The whole file is read, checked against the schema (pydantic) and the domain
rules, and only then applied in one transaction; any problem leaves the
database as it was. Every error names the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from app.domain import Camera, MotionSettings, has_secret, mask_secrets
from app.store.uow import Store

FORMAT_VERSION = 1
#: the ``import.max_bytes`` setting's default: a cameras file is a few KB per camera
DEFAULT_MAX_FILE_BYTES = 1_000_000
SETTING_MAX_FILE_BYTES = "import.max_bytes"
MAX_DEPTH = 32  # a cameras file nests 4 levels; anything far deeper is not one
MAX_VALUES = 100_000  # values after aliases are expanded (an alias chain grows exponentially)
Number = Annotated[float, Field(strict=True)]  # ints accepted, strings and booleans not


class ConfigFileError(Exception):
    """A problem with a config file; ``problems`` lists each one as "file:line: field: message"."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems in {path}:"
        body = "" if len(problems) == 1 else "\n  " + "\n  ".join(problems)
        super().__init__(head + body)


class _Motion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = True
    threshold: Number = 0.02
    warmup_frames: StrictInt = 10


class _CameraIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    source: str
    active: StrictBool = True
    max_fps: Number | None = None
    loop: StrictBool = False
    stall_timeout: Number = 10.0
    location: str = ""
    tags: list[str] = Field(default_factory=list)
    motion: _Motion = Field(default_factory=_Motion)


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: StrictBool | None = None
    max_fps: Number | None = None
    loop: StrictBool | None = None
    stall_timeout: Number | None = None
    motion: _Motion | None = None


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[int, Field(strict=True)] = FORMAT_VERSION
    defaults: _Defaults | None = None
    cameras: list[_CameraIn] = Field(default_factory=list)


@dataclass(frozen=True)
class ImportReport:
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged, {len(self.removed)} removed")


# ------------------------------------------------------------------ reading


class _Budget:
    """Counts the values an alias-expanding walk produces; refuses beyond MAX_VALUES."""

    def __init__(self) -> None:
        self.left = MAX_VALUES

    def take(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise ConfigFileError("", [f"line {node.start_mark.line + 1}: (file): aliases expand to more "
                                       f"than {MAX_VALUES:,} values; write the values out instead"])


def _line_of(event: yaml.Event) -> int:
    """The 1-based line a parse event starts on."""
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _check_shape(text: str) -> None:
    """Refuse deep nesting and alias bombs before anything recursive reads the file.

    One pass over PyYAML's parse events (its parser is iterative, so this pass is safe
    at any depth): the nesting depth, and how many values the file holds once every
    alias is expanded (each anchor's expanded size is known when its node ends).
    """
    stack: list[list[Any]] = []  # per open collection: [anchor, values so far]
    sizes: dict[str, int] = {}
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            n = sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            n = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH:
                raise ConfigFileError("", [f"line {_line_of(event)}: (file): nested more than "
                                           f"{MAX_DEPTH} levels deep"])
            continue
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, n = stack.pop()
            if anchor:
                sizes[anchor] = n
        else:
            continue
        if stack:
            stack[-1][1] += n
        total += n if isinstance(event, yaml.AliasEvent) else 0
        if stack and stack[-1][1] > MAX_VALUES or total > MAX_VALUES:
            raise ConfigFileError("", [f"line {_line_of(event)}: (file): aliases expand to more "
                                       f"than {MAX_VALUES:,} values; write the values out instead"])


def _plain(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], budget: _Budget | None = None) -> Any:
    """Turn a composed YAML node into Python data, remembering each path's line."""
    budget = budget or _Budget()
    budget.take(node)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node)) if not isinstance(key_node, yaml.ScalarNode) else key_node.value
            if key in out:
                raise ConfigFileError("", [f"line {key_node.start_mark.line + 1}: {_field_name(path + (key,))}: duplicate key"])
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, path + (key,), lines, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, path + (i,), lines, budget) for i, v in enumerate(node.value)]
    # A scalar: let the safe loader resolve its type (int, float, bool, null, str).
    return yaml.SafeLoader("").construct_object(node)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _field_name(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_cameras_file(path: Path | str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> list[Camera]:
    """Read and check a cameras file; return the cameras or raise :class:`ConfigFileError`.

    A file over ``max_bytes`` (the ``import.max_bytes`` setting) is refused before it is read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ConfigFileError(path, [f"{path}:1: the file is larger than {max_bytes:,} bytes "
                                         f"(setting {SETTING_MAX_FILE_BYTES})"])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigFileError(path, [f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigFileError(path, [f"{path}: cannot read: {e}"]) from None
    return parse_cameras_text(text, str(path))


def parse_cameras_text(text: str, filename: str = "<text>") -> list[Camera]:
    lines: dict[tuple[Any, ...], int] = {}
    try:
        _check_shape(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except ConfigFileError as e:
        raise ConfigFileError(filename, [f"{filename}:{p.removeprefix('line ')}" for p in e.problems]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise ConfigFileError(filename, [f"{where}: not valid YAML: {getattr(e, 'problem', e)}"]) from None
    if node is None:
        raise ConfigFileError(filename, [f"{filename}:1: the file is empty (expected a 'cameras:' list)"])
    try:
        data = _plain(node, (), lines)
    except ConfigFileError as e:
        raise ConfigFileError(filename, [f"{filename}:{p.removeprefix('line ')}" for p in e.problems]) from None
    if not isinstance(data, dict):
        raise ConfigFileError(filename, [f"{filename}:1: expected a mapping with a 'cameras:' list"])

    try:
        model = _FileIn.model_validate(data)
    except ValidationError as e:
        found: list[str] = []
        for err in e.errors():
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            found.append(f"{filename}:{_line_for(loc, lines)}: {_field_name(loc)}: {msg}")
        raise ConfigFileError(filename, found) from None

    problems: list[str] = []
    if model.version != FORMAT_VERSION:
        problems.append(f"{filename}:{_line_for(('version',), lines)}: version: this app reads version {FORMAT_VERSION}, not {model.version}")
    cams: list[Camera] = []
    seen: dict[str, int] = {}
    defaults = model.defaults.model_dump(exclude_none=True) if model.defaults else {}
    raw_cams = data.get("cameras") or []
    for i, c in enumerate(model.cameras):
        given = raw_cams[i] if isinstance(raw_cams[i], dict) else {}
        values = c.model_dump()
        for key, value in defaults.items():
            if key not in given:
                values[key] = value
        motion = values["motion"]
        cam = Camera(
            name=values["name"], source=values["source"], active=values["active"],
            max_fps=None if values["max_fps"] is None else float(values["max_fps"]),
            loop=values["loop"], stall_timeout=float(values["stall_timeout"]),
            location=values["location"], tags=tuple(values["tags"]),
            motion=MotionSettings(motion["enabled"], float(motion["threshold"]), motion["warmup_frames"]),
        )
        for fe in cam.problems():
            field_loc = ("cameras", i, *fe.field.split("."))
            problems.append(f"{filename}:{_line_for(field_loc, lines)}: {_field_name(('cameras', i, *fe.field.split('.')))}: {fe.message}")
        key = cam.name.strip().casefold()
        line = _line_for(("cameras", i, "name"), lines)
        if key in seen:
            problems.append(f"{filename}:{line}: cameras[{i}].name: duplicate camera name {cam.name!r} (first at line {seen[key]})")
        else:
            seen[key] = line
        cams.append(cam)
    if problems:
        raise ConfigFileError(filename, problems)
    return [c.validated() for c in cams]


# ------------------------------------------------------------------ applying


def _restore_masked_secret(new_source: str, old_source: str | None) -> str:
    """An exported file has ``user:***@``; keep the stored password when the rest is the same."""
    if not old_source or "://" not in new_source:
        return new_source
    n, o = urlsplit(new_source), urlsplit(old_source)
    if n.password == "***" and o.password is not None and mask_secrets(old_source) == new_source:
        return old_source
    return new_source


def import_cameras(store: Store, cameras: list[Camera], *, replace: bool = False) -> ImportReport:
    """Apply already-checked cameras in one transaction (merge by name; ``replace`` drops the rest)."""
    added, updated, unchanged, removed = [], [], [], []
    with store.uow() as uow:
        existing = {c.name.casefold(): c for c in uow.cameras.list()}
        incoming = set()
        for cam in cameras:
            key = cam.name.casefold()
            incoming.add(key)
            old = existing.get(key)
            if old is None:
                uow.cameras.add(cam)
                added.append(cam.name)
                continue
            cam = cam.with_changes(id=old.id, source=_restore_masked_secret(cam.source, old.source))
            if cam == old:
                unchanged.append(cam.name)
            else:
                uow.cameras.update(cam)
                updated.append(cam.name)
        if replace:
            for key, old in existing.items():
                if key not in incoming:
                    uow.cameras.remove(old.id)  # type: ignore[arg-type]
                    removed.append(old.name)
        uow.commit()
    return ImportReport(tuple(added), tuple(updated), tuple(unchanged), tuple(removed))


def max_file_bytes(store: Store) -> int:
    """The ``import.max_bytes`` setting (a positive whole number), else the default."""
    with store.uow() as uow:
        value = uow.settings.get(SETTING_MAX_FILE_BYTES)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return DEFAULT_MAX_FILE_BYTES
    try:
        n = int(value)
    except ValueError:
        return DEFAULT_MAX_FILE_BYTES
    return n if n > 0 else DEFAULT_MAX_FILE_BYTES


def import_file(store: Store, path: Path | str, *, replace: bool = False) -> ImportReport:
    return import_cameras(store, parse_cameras_file(path, max_bytes=max_file_bytes(store)), replace=replace)


# ------------------------------------------------------------------ writing


def camera_to_dict(cam: Camera, *, include_secrets: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": cam.name,
        "source": cam.source if include_secrets else mask_secrets(cam.source),
        "active": cam.active,
    }
    if cam.max_fps is not None:
        d["max_fps"] = cam.max_fps
    if cam.loop:
        d["loop"] = True
    d["stall_timeout"] = cam.stall_timeout
    if cam.location:
        d["location"] = cam.location
    if cam.tags:
        d["tags"] = list(cam.tags)
    d["motion"] = {
        "enabled": cam.motion.enabled,
        "threshold": cam.motion.threshold,
        "warmup_frames": cam.motion.warmup_frames,
    }
    return d


def export_text(cameras: list[Camera], *, include_secrets: bool = False) -> str:
    doc = {"version": FORMAT_VERSION, "cameras": [camera_to_dict(c, include_secrets=include_secrets) for c in cameras]}
    header = "# Edge Station cameras, exported. Import with: edge-station import FILE\n"
    if not include_secrets and any(has_secret(c.source) for c in cameras):
        header += "# Passwords are masked as ***; importing this file keeps the stored passwords.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def export_file(store: Store, path: Path | str, *, include_secrets: bool = False) -> int:
    """Write every camera to ``path`` atomically; returns how many.

    Only a regular file is written: a device, a directory, a FIFO or a socket is
    refused. A symbolic link is followed (its target is replaced, the link stays).
    A file with passwords in clear (``include_secrets``) is made 0600.
    """
    with store.uow() as uow:
        cams = uow.cameras.list()
    write_private_text(Path(path), export_text(cams, include_secrets=include_secrets),
                       private=include_secrets)
    return len(cams)


def write_private_text(path: Path, text: str, *, private: bool) -> None:
    """Replace ``path`` with ``text`` in one step (a temporary file in the same folder, renamed)."""
    import os
    import stat
    import tempfile

    target = Path(os.path.realpath(path))  # a symlink is followed to the file it names
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise ConfigFileError(path, [f"{path}: cannot write: {e.strerror or e}"]) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket"
                if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ConfigFileError(path, [f"{path}: is {kind}; export writes regular files only"])
    if private:
        mode = 0o600
    elif st is not None:
        mode = stat.S_IMODE(st.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as e:
        raise ConfigFileError(path, [f"{path}: cannot write: {e.strerror or e}"]) from None
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)


__all__ = [
    "ConfigFileError", "ImportReport", "camera_to_dict", "export_file", "export_text",
    "import_cameras", "import_file", "parse_cameras_file", "parse_cameras_text",
]
