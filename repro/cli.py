"""The `repro` command line (DESIGN §8): thin wrappers that parse options and call the library.

Every ReproError becomes one line on stderr and its exit code (2 bad input, 1 failed check); no tracebacks.
"""

from __future__ import annotations

import sys

import click

from repro.errors import ReproError


@click.group()
@click.version_option(package_name="repro")
def cli() -> None:
    """Class-conditional image synthesis by gradient-based inference on converted Caffe models."""


def main(argv: list[str] | None = None) -> int:
    try:
        rc = cli.main(args=argv, prog_name="repro", standalone_mode=False)
    except ReproError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return 2
    except OSError as e:  # files the user named: missing, unreadable, a folder where a file was expected
        click.echo(f"error: {e.strerror}: {e.filename}" if e.filename else f"error: {e}", err=True)
        return 2
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
