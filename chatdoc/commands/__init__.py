"""CLI command modules: plain Typer command functions and sub-apps, wired up in :mod:`chatdoc.cli`.

Each command gets the process's service from :func:`chatdoc.commands._util.service`. Import heavy
libraries (and the tooling in chatdoc/tools) inside command functions, not at the top.
"""
