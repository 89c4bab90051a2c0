"""The recommendation service: a JSON API and a web page over trained runs.

``create_app(runs)`` (``app.py``) builds the FastAPI application; ``mfmrec serve`` runs it
on uvicorn. Recommendation requests go through the micro-batcher (``batcher.py``), which
gathers concurrent requests for one model into one ``recommend_top_k`` call.
"""

from mfmrec.serve.app import create_app

__all__ = ["create_app"]
