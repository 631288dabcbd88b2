"""chatdoc.ui — the Gradio views (patient, staff, researcher). The only package that imports gradio.

``build_app(settings, service)`` returns the FastAPI app with the views mounted on one
:class:`chatdoc.service.Consultations`; ``serve()`` runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatdoc.service import Consultations


def build_app(settings=None, service: Consultations | None = None, warm: bool = False):
    from chatdoc.ui.server import build_app as _build

    return _build(settings, service, warm=warm)


def serve(host: str | None = None, port: int | None = None, warm: bool = True,
          service: Consultations | None = None) -> None:
    from chatdoc.ui.server import serve as _serve

    _serve(host, port, warm, service)


__all__ = ["build_app", "serve"]
