"""`qa keys add|list|revoke`: scoped API keys (qa.keys), for the team that serves qa to others.

A new key is printed once, alone on the last line, so ``KEY=$(qa keys add bot --read '*' | tail -1)`` works;
the file keeps only its SHA-256 and `qa keys list` never shows either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from qa.collections import BadCollection
from qa.config import Settings
from qa.keys import KeyFile, KeyProblem, parse_scope, show_scope

keys_app = typer.Typer(
    help="Scoped API keys: who may read and change which collections. A running server sees changes within a second.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

IndexOpt = Annotated[
    Path | None, typer.Option("--index-dir", help="Index folder; the keys live in its keys.json [env QA_INDEX_DIR].")
]
KeysFileOpt = Annotated[Path | None, typer.Option("--keys-file", help="The key file itself [env QA_KEYS_FILE].")]


def _file(index_dir: Path | None, keys_file: Path | None) -> KeyFile:
    overrides = {"index_dir": index_dir, "keys_file": keys_file}
    try:
        settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    except ValidationError as exc:
        messages = (str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise _fail("invalid configuration: " + "; ".join(messages)) from None
    return KeyFile(settings.key_file_path())


def _fail(message: object) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), f" {message}"))
    return typer.Exit(1)


@keys_app.command()
def add(
    name: Annotated[str, typer.Argument(help="Who or what holds the key (a person, a bot), unique.")],
    read: Annotated[
        str | None, typer.Option("--read", help="Collections it may read, comma-separated; '*' for all.")
    ] = None,
    write: Annotated[
        str | None, typer.Option("--write", help="Collections it may upload to and delete from; '*' for all.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May use /admin and /metrics (reads and writes all).")] = False,
    index_dir: IndexOpt = None,
    keys_file: KeysFileOpt = None,
) -> None:
    """Create a key and print it once, on the last line (only its hash is kept).

    Example: qa keys add alice --read hr,eng --write hr
    """
    if read is None and not admin:
        raise _fail("say what the key may read: --read hr,eng (or --read '*' for every collection)")
    try:
        read_scope = None if admin and read is None else parse_scope(read)
        write_scope = None if admin and write is None else parse_scope(write)
    except BadCollection as exc:
        raise _fail(exc) from None
    file = _file(index_dir, keys_file)
    try:
        token = file.add(name, read_scope, write_scope, admin)
    except KeyProblem as exc:
        raise _fail(exc) from None
    role = ", admin" if admin else ""
    out.print(f"added key {name!r}: reads {show_scope(read_scope)}, writes {show_scope(write_scope)}{role}")
    out.print(f"in {file.path}; copy the key now, it is not shown again (send it as 'Authorization: Bearer KEY'):")
    print(token, flush=True)  # alone on the last line, as it is, for `| tail -1`


@keys_app.command("list")
def list_(index_dir: IndexOpt = None, keys_file: KeysFileOpt = None) -> None:
    """Name, scopes and creation time of every key; never a key or its hash.

    Example: qa keys list
    """
    file = _file(index_dir, keys_file)
    try:
        records = file.records()
    except KeyProblem as exc:
        raise _fail(exc) from None
    if not records:
        out.print(f"no keys in {file.path} (add one: qa keys add NAME --read COLLECTIONS)")
        return
    rows = [("NAME", "READ", "WRITE", "ADMIN", "CREATED")]
    rows += [(r.name, show_scope(r.read), show_scope(r.write), "yes" if r.admin else "no", r.created) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@keys_app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The key's name, as `qa keys list` shows it.")],
    index_dir: IndexOpt = None,
    keys_file: KeysFileOpt = None,
) -> None:
    """Revoke a key: a running server refuses it within a second.

    Example: qa keys revoke alice
    """
    file = _file(index_dir, keys_file)
    try:
        file.revoke(name)
    except KeyProblem as exc:
        raise _fail(exc) from None
    out.print(f"revoked key {name!r}")
