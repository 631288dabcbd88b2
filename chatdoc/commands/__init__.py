"""CLI command modules. Each module defines ``register(app, groups)``; chatdoc.cli discovers them.

``groups`` holds shared sub-command groups (``groups["eval"]`` for ``chatdoc eval ...``) so several
modules can contribute to one group. Import heavy libraries inside command functions, not at the top.
"""
