"""JSON files of a run: atomic writes by the output policy, and strict readers whose faults are one line."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgefn.core import outputs
from edgefn.core.errors import EdgefnError


def to_jsonable(obj: Any) -> Any:
    """`obj` as JSON values: a record that knows its JSON form (`to_dict`, the manifests) gives it, other
    dataclasses all their fields; paths become strings, numpy and torch scalars numbers."""
    if callable(getattr(obj, "to_dict", None)) and not isinstance(obj, type):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def write_json(path: Path, obj: Any, follow_symlinks: bool = False) -> None:
    """Write JSON by the output policy (atomically for a regular file); a symlink is refused unless
    `follow_symlinks` (a path the user named), so no file inside a run is written through a link."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n"
    outputs.write_text(path, text, option="file", follow_symlinks=follow_symlinks)


def read_json(path: Path) -> Any:
    """Read a JSON file, with a one-line error when it is missing or broken."""
    return parse_json(read_text(path), path)


# The Python types a manifest field may hold (str, int, float, bool, dict, list, NoneType), or a tuple of them.
JsonType = type | tuple[type, ...]
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def read_text(path: Path, follow_symlinks: bool = True) -> str:
    """A UTF-8 file's text; a missing file, anything but a regular file (a folder, FIFO or device, refused
    before reading: nothing blocks), a symlink when `follow_symlinks` is False, or bad bytes: one line."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        if path.is_symlink():
            raise EdgefnError(f"{path} is a symlink, not a regular file")
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise EdgefnError(f"missing file: {path}") from None
    except OSError as e:
        raise EdgefnError(f"cannot read {path} ({e.strerror or e})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise EdgefnError(f"{path} is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgefnError(f"{path} is not UTF-8 text (byte {e.start})") from None


def parse_json(text: str, path: Path) -> Any:
    """JSON text read from `path`, with a one-line error when it is broken or nested too deeply to parse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise EdgefnError(f"{path} is not valid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, and integers over Python's digit limit
        raise EdgefnError(f"{path} is not valid JSON ({e})") from None


def _is_json_type(value: Any, expected: JsonType) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):  # JSON true/false is no number
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def _type_name(expected: JsonType) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def check_json_object(
    value: Any,
    where: str,
    fields: Mapping[str, JsonType] | None = None,
    required: tuple[str, ...] = (),
    fix: str = "",
) -> dict[str, Any]:
    """`value` when it is a JSON object whose `fields` (where present; the `required` ones always) have the
    given types; else one line naming `where`, the field and `fix`."""
    hint = f"; {fix}" if fix else ""
    if not isinstance(value, dict):
        found = _TYPE_NAMES.get(type(value), type(value).__name__)
        raise EdgefnError(f"{where} is {found}, not a JSON object{hint}")
    missing = [k for k in required if k not in value]
    if missing:
        raise EdgefnError(f"{where} has no {', '.join(repr(k) for k in missing)}{hint}")
    for key, expected in (fields or {}).items():
        if key in value and not _is_json_type(value[key], expected):
            found = _TYPE_NAMES.get(type(value[key]), type(value[key]).__name__)
            raise EdgefnError(f"{where}: {key!r} is {found}, not {_type_name(expected)}{hint}")
    return value


def read_json_object(
    path: Path,
    fields: Mapping[str, JsonType] | None = None,
    required: tuple[str, ...] = (),
    fix: str = "",
    follow_symlinks: bool = True,
) -> dict[str, Any]:
    """A JSON object file checked by `check_json_object`; any fault (missing, a FIFO, not JSON, too deep, of
    another shape) is one line naming the file."""
    try:
        value = parse_json(read_text(path, follow_symlinks), path)
    except EdgefnError as e:
        raise EdgefnError(f"{e}; {fix}" if fix else str(e)) from None
    return check_json_object(value, str(path), fields, required, fix)


def read_optional_json(
    path: Path, fields: Mapping[str, JsonType] | None = None, fix: str = ""
) -> dict[str, Any]:
    """A JSON object file (checked like `read_json_object`), or {} when it is absent."""
    if not os.path.lexists(path):
        return {}
    return read_json_object(path, fields, fix=fix)


def json_field(path: Path, key: str) -> Any:
    """`key` of a JSON object file; None when the file is absent, damaged, special or of another shape."""
    try:
        value = parse_json(read_text(path), path)
    except EdgefnError:
        return None
    return value.get(key) if isinstance(value, dict) else None
