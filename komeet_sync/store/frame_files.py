"""Writing the sync's results to a folder and reading them back: every DataFrame as a Parquet
file, everything else as JSON beside it.

A result is a DataFrame, or a frozen dataclass (a directory snapshot, Komeet's accounts)
whose fields are DataFrames, other such dataclasses, or JSON values (text, numbers, times,
enums, and lists or dicts of them). A dataclass becomes a folder: ``<field>.parquet`` for
each frame, a sub-folder for each nested dataclass, and ``fields.json`` for the rest with the
class's import path, so that reading it back gives the same class. Any fsspec filesystem
serves (a local folder, s3://, gs://): the paths are ``upath.UPath``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from upath import UPath

FIELDS = "fields.json"
STAMP = "stamp.json"  # when and by which run the result was written
FRAME = "frame.parquet"  # a result that is a DataFrame on its own
NOTHING = "nothing.json"  # a result that is None: the asset read nothing for this domain


class FrameFileError(ValueError):
    """A folder that does not hold a result written here."""


def write_result(result: Any, folder: UPath, stamp: dict[str, str] | None = None) -> list[UPath]:
    """Write ``result`` into ``folder``, with ``stamp`` (its run and time) beside it; return
    the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        (folder / STAMP).write_text(json.dumps(stamp))
    if result is None:
        (folder / NOTHING).write_text("null")
        return [folder / NOTHING]
    if isinstance(result, pd.DataFrame):
        return [write_frame(result, folder / FRAME)]
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        raise FrameFileError(
            f"cannot store a {type(result).__name__}: give a DataFrame or a dataclass of them"
        )
    written: list[UPath] = []
    fields: dict[str, Any] = {"__type__": _type_path(type(result))}
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, pd.DataFrame):
            written.append(write_frame(value, folder / f"{field.name}.parquet"))
        elif dataclasses.is_dataclass(value) and _holds_frames(value):
            written.extend(write_result(value, folder / field.name))
            fields[field.name] = {"__folder__": field.name}
        else:
            fields[field.name] = _to_json(value)
    (folder / FIELDS).write_text(json.dumps(fields, indent=1, sort_keys=True))
    return [*written, folder / FIELDS]


def read_stamp(folder: UPath) -> dict[str, str]:
    """The run and time a result was written by, if recorded."""
    path = folder / STAMP
    return json.loads(path.read_text()) if path.exists() else {}


def read_result(folder: UPath, renamed: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """What ``write_result`` wrote into ``folder``. ``renamed`` maps the import paths of
    types that moved or changed since the folder was written to what builds them now
    (``store.legacy``)."""
    if (folder / NOTHING).exists():
        return None
    if (folder / FRAME).exists():
        return read_frame(folder / FRAME)
    if not (folder / FIELDS).exists():
        raise FrameFileError(f"{folder} holds no stored result (no {FIELDS} or {FRAME})")
    renamed = renamed or {}
    fields = json.loads((folder / FIELDS).read_text())
    kind = _import(fields.pop("__type__"), renamed)
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, dict) and "__folder__" in value:
            values[name] = read_result(folder / value["__folder__"], renamed)
        else:
            values[name] = _from_json(value, renamed)
    for path in folder.iterdir():
        if path.name.endswith(".parquet") and path.name != FRAME:
            values[path.name.removesuffix(".parquet")] = read_frame(path)
    return kind(**values)


def write_frame(frame: pd.DataFrame, path: UPath) -> UPath:
    """A frame as a Parquet file on any fsspec filesystem."""
    frame.to_parquet(path.path, filesystem=path.fs, index=False)
    return path


def read_frame(path: UPath) -> pd.DataFrame:
    """A Parquet file as a frame. pyarrow reads it through the filesystem, not a Python file
    object: reading from one leaves a thread that aborts the process at exit, now and then
    ("terminate called without an active exception", pyarrow 26)."""
    return pd.read_parquet(path.path, filesystem=path.fs)


def frame_rows(path: UPath) -> int:
    """A Parquet file's row count, from its metadata alone."""
    return pq.ParquetFile(path.path, filesystem=path.fs).metadata.num_rows


def _holds_frames(value: Any) -> bool:
    return any(
        isinstance(getattr(value, f.name), pd.DataFrame)
        or (
            dataclasses.is_dataclass(getattr(value, f.name))
            and _holds_frames(getattr(value, f.name))
        )
        for f in dataclasses.fields(value)
    )


def _to_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return {"__enum__": _type_path(type(value)), "value": value.value}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__type__": _type_path(type(value)),
            **{f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(item) for item in value]}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_json(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise FrameFileError(f"cannot store a {type(value).__name__} value as JSON: {value!r}")


def _from_json(value: Any, renamed: Mapping[str, Callable[..., Any]]) -> Any:
    if isinstance(value, list):
        return [_from_json(item, renamed) for item in value]
    if not isinstance(value, dict):
        return value
    if "__enum__" in value:
        return _import(value["__enum__"], renamed)(value["value"])
    if "__datetime__" in value:
        return datetime.fromisoformat(value["__datetime__"])
    if "__tuple__" in value:
        return tuple(_from_json(item, renamed) for item in value["__tuple__"])
    if "__type__" in value:
        kind = _import(value["__type__"], renamed)
        return kind(
            **{key: _from_json(item, renamed) for key, item in value.items() if key != "__type__"}
        )
    return {key: _from_json(item, renamed) for key, item in value.items()}


def _type_path(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


def _import(path: str, renamed: Mapping[str, Callable[..., Any]]) -> Any:
    if path in renamed:
        return renamed[path]
    module, _, name = path.partition(":")
    if not module.startswith("komeet_sync."):
        raise FrameFileError(f"{path}: only komeet_sync's own types are read back")
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        raise FrameFileError(
            f"{path}: no such type in this version of komeet-sync; read the folder with "
            "komeet_sync.store.legacy.read_result if an older version wrote it"
        ) from None
    return found
