"""Start the chatdoc web app: ``python app.py`` (defaults from config: http://127.0.0.1:7860).

Patients: ``/``; staff: ``/staff``; researchers: ``/lab``. Same as ``chatdoc serve``.
The composition root: one service object for the whole process, shared by the three views.
"""

from chatdoc.service import build_service
from chatdoc.ui import serve

if __name__ == "__main__":
    serve(service=build_service())
