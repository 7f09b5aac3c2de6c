"""``tibackup create secret generic``, and the listing of Secrets: names and key counts, never values."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tibackup.cli.embedded_opts import namespace_option, open_store, state_dir_option, valid_names
from tibackup.embedded import lifecycle
from tibackup.embedded.store import Store
from tibackup.errors import UsageError
from tibackup.resources.meta import rfc3339

_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
MAX_SECRET_BYTES = 1024 * 1024  # as Kubernetes: a Secret holds at most 1 MiB


def _pairs(literals: tuple[str, ...], files: tuple[str, ...]) -> dict[str, str]:
    data: dict[str, str] = {}
    for item in literals:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError("--from-literal must be KEY=VALUE (got one without '=' or without a key)")
        data[key] = value
    for item in files:
        key, sep, path = item.partition("=")
        if not sep:
            key, path = Path(item).name, item
        try:
            data[key] = Path(path).read_text()
        except UnicodeDecodeError:
            raise UsageError(f"--from-file {path}: not UTF-8 text; tibackup Secrets hold text only") from None
        except OSError as exc:
            raise UsageError(f"--from-file {path}: {exc.strerror}") from None
    for key in data:  # Kubernetes' rule for Secret keys (they may become file names)
        if len(key) > 253 or not _SECRET_KEY.fullmatch(key) or key == "." or key.startswith(".."):
            raise UsageError(
                f"secret key {key!r} is not valid: use at most 253 letters, digits, '-', '_' and '.' "
                "(not '.', nor starting with '..')"
            )
    if not data:
        raise UsageError("give the Secret's data with --from-literal=KEY=VALUE or --from-file=KEY=PATH")
    if sum(len(k) + len(v.encode("utf-8")) for k, v in data.items()) > MAX_SECRET_BYTES:
        raise UsageError("the Secret's data is larger than 1 MiB, the most a Kubernetes Secret may hold")
    return data


@click.group()
def create() -> None:
    """Create objects from the command line (Secrets)."""


@create.group("secret")
def secret() -> None:
    """Create a Secret."""


@secret.command(
    "generic",
    epilog="""\b
Examples:
  tibackup create secret generic s3-secret -n test1 \\
      --from-literal=access_key=AKIA… --from-literal=secret_key=…
  tibackup create secret generic backup-demo1-tidb-secret -n test1 --from-literal=password="$password"
  tibackup create secret generic tidb-tls -n test1 --from-file=ca.crt=./ca.pem
""",
)
@click.argument("name", callback=valid_names)
@click.option("--from-literal", "literals", multiple=True, help="KEY=VALUE (repeatable).")
@click.option("--from-file", "files", multiple=True, help="KEY=PATH or PATH (the key is the file name).")
@namespace_option
@state_dir_option
def generic(
    name: str, literals: tuple[str, ...], files: tuple[str, ...], namespace: str, state_dir: Path | None
) -> None:
    """Store a Secret (owner-only permissions); its values are never printed again."""
    data = _pairs(literals, files)
    store = open_store(state_dir)
    store.put_secret(namespace, name, data)
    click.echo(f"secret/{name} created")


def print_secrets(store: Store, namespace: str | None, names: tuple[str, ...], output: str | None) -> None:
    from tibackup.cli.table_view import age, echo_documents, echo_none_found, render_table

    infos = store.list_secrets(namespace)
    if names:
        missing = [n for n in names if n not in {i.name for i in infos}]
        if missing:
            from tibackup.cli.get_cmd import KubectlNotFound

            raise KubectlNotFound(f'secrets "{missing[0]}" not found in namespace "{namespace}"')
        infos = [i for i in infos if i.name in names]
    if output in ("json", "yaml"):
        items = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": i.name,
                    "namespace": i.namespace,
                    "creationTimestamp": rfc3339(i.created),
                },
                "type": "Opaque",
                "keys": i.keys,
            }
            for i in infos
        ]
        echo_documents(items, single=len(names) == 1, output=output)
        return
    if output == "name":
        for info in infos:
            click.echo(f"secret/{info.name}")
        return
    if not infos:
        echo_none_found(namespace)
        return
    now = lifecycle.now()
    headers = ["NAME", "TYPE", "DATA", "AGE"]
    rows = [[i.name, "Opaque", str(i.keys), age(i.created, now)] for i in infos]
    if namespace is None:
        headers.insert(0, "NAMESPACE")
        rows = [[i.namespace, *row] for i, row in zip(infos, rows, strict=True)]
    click.echo(render_table(headers, rows))
