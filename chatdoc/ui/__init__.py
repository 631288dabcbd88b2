"""chatdoc.ui — the Gradio views (patient, staff, researcher). The only package that imports gradio.

``build_app()`` returns the FastAPI app with the views mounted; ``serve()`` runs it.
"""

from __future__ import annotations


def build_app(settings=None):
    from chatdoc.ui.server import build_app as _build

    return _build(settings)


def serve(host: str | None = None, port: int | None = None, warm: bool = True) -> None:
    from chatdoc.ui.server import serve as _serve

    _serve(host, port, warm)


__all__ = ["build_app", "serve"]
