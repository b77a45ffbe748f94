"""ir: an incident-response playbook runner.

The library does the work; `ir.cli` is a thin Typer layer on top of it.
"""

__version__ = "0.2.0"
