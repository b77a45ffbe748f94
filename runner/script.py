"""The `ir` console script: the process's set-up, then the command line. (Not `python -m`: that would put the
working directory first on sys.path, where a team's ./playbooks folder would shadow the bundled package.)"""

import gc


def main() -> None:
    # Starting up (imports: Typer, pydantic, Jinja) and loading playbooks allocate many objects that reference
    # counting frees. At the default threshold (700 allocations) the cyclic collector would rescan everything
    # imported again and again: ~25 ms of validating the bundled playbooks, cold. A run holds few objects, so
    # collecting every 50,000 allocations costs it no memory to speak of.
    gc.set_threshold(50_000)
    from ir.cli.app import main as cli

    try:
        cli()
    finally:
        # The process ends here. Frozen, the objects still alive are left out of the collector's last full pass
        # as the interpreter shuts down (~28 ms after validating the bundled playbooks). Files and the store are
        # closed by then (`with` blocks, explicit close), and standard output is flushed as always.
        gc.freeze()
