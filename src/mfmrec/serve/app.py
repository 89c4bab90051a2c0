"""The FastAPI application: ``create_app(runs)``; routes under ``/api``, the page at ``/``.

Every request is checked before it reaches a model: unknown users and items are 404,
values out of range 422, and each error's ``detail`` names the field. Model work runs in
the batcher's worker thread; an exception there fails only its own requests (500 with
the message) and the server keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from mfmrec.errors import MfmrecError
from mfmrec.serve import schemas as S
from mfmrec.serve.catalog import BadInput, NotFound
from mfmrec.serve.service import Ranked, Service

log = logging.getLogger("mfmrec.serve")
NOT_FOUND = {404: {"description": "Unknown user, item or model (detail names the field)"}}
ITEM_ID = "External item id"
USER_ID = "External user id"
MODEL = "A model key from /api/info; omitted: every loaded model"
ASSUMED_RATING = 5.0  # explanation prompts ask for a rating; a recommendation is liked


def create_app(runs: Sequence[Any], max_batch: int = 32, max_wait_ms: float = 5.0) -> FastAPI:
    """The service over loaded runs (``mfmrec.training.runs.load_run``) of one dataset.

    ``max_batch=1, max_wait_ms=0`` turns micro-batching off (one model call per request).
    """
    service = Service(runs, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="mfmrec", version="0.1.0", lifespan=lifespan,
                  description="Recommendations, histories, photos and explanations from "
                  "trained mfmrec runs. Users and items are named by their external ids.")
    app.state.service = service
    _errors(app)
    _data_routes(app, service)
    _model_routes(app, service)
    _page(app)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=404)

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"},
                            status_code=500)


def _data_routes(app: FastAPI, service: Service) -> None:
    cat = service.catalog

    @app.get("/healthz", response_model=S.Health, tags=["service"])
    async def healthz() -> dict:
        return {"status": "ok", "models": len(service.models)}

    @app.get("/api/info", response_model=S.Info, tags=["service"])
    async def info() -> dict:
        ds = cat.ds
        return {"dataset": ds.name, "simulated": ds.simulated, "num_users": ds.num_users,
                "num_items": ds.num_items, "has_images": cat.has_images, "k_max": S.K_MAX,
                "models": [m.info() for m in service.models.values()]}

    @app.get("/api/users", response_model=S.UserPage, tags=["users"])
    async def users(q: str = Query("", max_length=200, description="Part of an id or name"),
                    limit: int = Query(50, ge=1, le=500),
                    offset: int = Query(0, ge=0)) -> dict:
        total, page = cat.search_users(q, limit, offset)
        return {"total": total, "offset": offset, "users": [cat.user_json(u) for u in page]}

    @app.get("/api/users/{user_id}/history", response_model=S.History, tags=["users"],
             responses=NOT_FOUND)
    async def history(user_id: str) -> dict:
        u = cat.user(user_id)
        return {"user": cat.user_json(u),
                "items": [cat.item_json(int(i)) for i in cat.ds.sequences[u]]}

    @app.get("/api/items/{item_id}", response_model=S.ItemDetail, tags=["items"],
             responses=NOT_FOUND)
    async def item(item_id: str) -> dict:
        return cat.item_json(cat.item(item_id), detail=True)

    @app.get("/api/items/{item_id}/image", tags=["items"], response_class=FileResponse,
             responses={200: {"content": {"image/*": {}}, "description": "The photo"},
                        **NOT_FOUND})
    async def image(item_id: str) -> FileResponse:
        path = cat.image_path(cat.item(item_id))
        if path is None:
            raise NotFound("item_id", f"item_id: item {item_id!r} has no photo")
        return FileResponse(path, headers={"Cache-Control": "max-age=3600",
                                           "X-Content-Type-Options": "nosniff"})


def _model_routes(app: FastAPI, service: Service) -> None:
    cat = service.catalog

    def chosen(model: str | None, need: str) -> list[str]:
        if model is None:
            return [m.key for m in service.models.values()
                    if (m.recommends if need == "sequential" else m.explains)]
        if model not in service.models:
            raise NotFound("model", f"model: unknown model {model!r} (loaded: "
                           f"{', '.join(service.models)})")
        served = service.models[model]
        if need == "sequential" and not served.recommends:
            raise BadInput("model", f"model: {model} does not recommend items")
        if need == "explanation" and not served.explains:
            raise BadInput("model", f"model: {model} does not generate explanations")
        return [model]

    async def ranked(names: list[str], user: int, history: np.ndarray, k: int) -> list[dict]:
        if k > cat.ds.num_items:
            raise BadInput("k", f"k: {k} exceeds the {cat.ds.num_items} items")
        # every model's request is queued at once; each joins its own model's batch
        results = await asyncio.gather(*(_guarded(name, service.recommend(name, user,
                                                                          history, k))
                                         for name in names))
        return [_model_result(service, name, result)
                for name, result in zip(names, results, strict=True)]

    @app.get("/api/users/{user_id}/recommendations", response_model=S.Recommendations,
             tags=["recommendations"], responses=NOT_FOUND)
    async def user_recommendations(user_id: str, k: int = Query(10, ge=1, le=S.K_MAX),
                                   model: str | None = Query(None, description=MODEL)) -> dict:
        u = cat.user(user_id)
        names = chosen(model, "sequential")
        history = np.asarray(cat.ds.sequences[u], dtype=np.int64)
        return {"user": user_id, "k": k, "results": await ranked(names, u, history, k)}

    @app.post("/api/recommendations", response_model=S.Recommendations,
              tags=["recommendations"], responses=NOT_FOUND)
    async def history_recommendations(body: S.HistoryRequest) -> dict:
        """Top-k for a history of item ids (a user not in the dataset). Prompt-based models
        need a user slot: the history is rendered as the first user's (index 0)."""
        history = cat.history_items(body.history)
        names = chosen(body.model, "sequential")
        return {"user": None, "k": body.k, "results": await ranked(names, 0, history, body.k)}

    @app.get("/api/users/{user_id}/explanations/{item_id}", response_model=S.Explanations,
             tags=["explanations"], responses=NOT_FOUND)
    async def explanations(user_id: str, item_id: str,
                           model: str | None = Query(None, description=MODEL),
                           rating: float | None = Query(None, ge=1, le=5, description=(
                               "Rating to explain; default: the user's review of the item, "
                               f"else {ASSUMED_RATING}"))) -> dict:
        """A generated explanation of why the user would like the item, from every model
        that declares the explanation task (or the one named)."""
        u, i = cat.user(user_id), cat.item(item_id)
        names = chosen(model, "explanation")
        request = cat.explanation_request(u, i)
        note = None
        if rating is not None:
            request["rating"] = rating
        elif request["rating"] is None:
            request["rating"] = ASSUMED_RATING
            note = (f"no review of this item by this user: explained for rating "
                    f"{ASSUMED_RATING:g} (pass ?rating= for another)")
        texts = [{"model": n, "name": service.models[n].model.name,
                  "text": await _guarded(n, service.explain(n, request))} for n in names]
        untrained = [n for n in names if not service.models[n].trained_on_explanations]
        if untrained:  # say so: such text is what an untrained prompt produces
            note = "; ".join(filter(None, [note, (
                f"{', '.join(untrained)}: not trained on explanations (run config "
                "model.tasks), so the text is what the untrained explanation prompt "
                "produces")]))
        if not texts:
            note = "none of the loaded models generates explanations"
        return {"user": user_id, "item": cat.item_json(i), "rating": request["rating"],
                "explanations": texts, "note": note}


async def _guarded(name: str, call: Awaitable[Any]) -> Any:
    """A model failure answers 500 naming the model, for this request only; a request
    the model's prompt cannot be filled from answers 422."""
    try:
        return await call
    except MfmrecError as exc:  # the request lacks what the model's prompt needs
        raise HTTPException(422, f"model {name}: {exc}") from None
    except Exception as exc:
        log.exception("model %s failed", name)
        raise HTTPException(500, f"model {name} failed: {type(exc).__name__}: {exc}") from None


def _model_result(service: Service, name: str, ranked: Ranked) -> dict:
    model = service.models[name].model
    recs = [{"rank": rank, "item": service.catalog.item_json(i), "score": score}
            for rank, (i, score) in enumerate(ranked, start=1)
            if 0 <= i < service.catalog.ds.num_items]  # -1: a slot a beam search left empty
    return {"model": name, "name": model.name, "produces": model.produces,
            "recommendations": recs}


def _page(app: FastAPI) -> None:
    static = resources.files("mfmrec.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))
