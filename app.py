"""Start the chatdoc web app: ``python app.py`` (defaults from config: http://127.0.0.1:7860).

Patients: ``/``; staff: ``/staff``; researchers: ``/lab``. Same as ``chatdoc serve``.
"""

from chatdoc.ui import serve

if __name__ == "__main__":
    serve()
