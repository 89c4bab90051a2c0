"""The JSON API on a tiny trained SASRec and VIP5 (SIMULATED demo data with photos)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import torch

from mfmrec.evaluation.evaluator import recommend_top_k


def _top(client, user: str, model: str, k: int = 5) -> list[str]:
    r = client.get(f"/api/users/{user}/recommendations", params={"k": k, "model": model})
    assert r.status_code == 200, r.text
    return [rec["item"]["id"] for rec in r.json()["results"][0]["recommendations"]]


def test_health_info_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": 2}
    info = client.get("/api/info").json()
    assert info["simulated"] is True and info["has_images"] is True
    assert [(m["key"], m["produces"], m["explains"]) for m in info["models"]] == [
        ("sasrec", "scores", False), ("vip5", "list", True)]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/users/{user_id}/recommendations" in paths and "/api/recommendations" in paths


def test_user_search_and_paging(client, dataset):
    page = client.get("/api/users", params={"limit": 5, "offset": 5}).json()
    assert page["total"] == dataset.num_users
    assert [u["id"] for u in page["users"]] == dataset.user_ids[5:10]
    name = dataset.user_names[3]
    found = client.get("/api/users", params={"q": name.upper()}).json()
    assert dataset.user_ids[3] in [u["id"] for u in found["users"]]
    assert client.get("/api/users", params={"q": "no such user"}).json()["total"] == 0


def test_history_item_and_image(client, dataset):
    uid = dataset.user_ids[2]
    hist = client.get(f"/api/users/{uid}/history").json()
    assert [it["id"] for it in hist["items"]] == [dataset.item_ids[i]
                                                  for i in dataset.sequences[2]]
    item = client.get(f"/api/items/{hist['items'][0]['id']}").json()
    assert item["title"] == dataset.titles[int(dataset.sequences[2][0])]
    image = client.get(item["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("u", [0, 7, 29])
def test_recommendations_equal_recommend_top_k(client, runs, dataset, u):
    uid = dataset.user_ids[u]
    history = torch.as_tensor(dataset.sequences[u], dtype=torch.long)
    for run, key in zip(runs, ("sasrec", "vip5"), strict=True):
        expected = recommend_top_k(run.model, torch.tensor([u]), [history], 7)[0]
        assert _top(client, uid, key, k=7) == [dataset.item_ids[i] for i in expected]
    both = client.get(f"/api/users/{uid}/recommendations", params={"k": 3}).json()
    assert [r["model"] for r in both["results"]] == ["sasrec", "vip5"]
    scores = [r["score"] for r in both["results"][0]["recommendations"]]
    assert scores == sorted(scores, reverse=True) and None not in scores
    assert all(r["score"] is None for r in both["results"][1]["recommendations"])


def test_recommendations_equal_the_cli(client, trained, dataset, run_cli):
    _, sasrec_dir, _ = trained
    uid = dataset.user_ids[4]
    code, out, err = run_cli("recommend", sasrec_dir, "--user", uid, "--k", "5")
    assert code == 0, err
    served = _top(client, uid, "sasrec", k=5)
    printed = [iid for iid in dataset.item_ids if f" {iid} " in out]
    assert sorted(printed) == sorted(served)
    assert [out.index(f" {iid} ") for iid in served] == sorted(out.index(f" {iid} ")
                                                              for iid in served)


def test_a_posted_history_is_ranked_like_a_user(client, dataset):
    u = 5
    history = [dataset.item_ids[i] for i in dataset.sequences[u]]
    posted = client.post("/api/recommendations",
                         json={"history": history, "k": 6, "model": "sasrec"}).json()
    assert [r["item"]["id"] for r in posted["results"][0]["recommendations"]] == \
        _top(client, dataset.user_ids[u], "sasrec", k=6)
    assert posted["user"] is None


def test_explanations_from_models_that_declare_them(client, dataset):
    uid, iid = dataset.user_ids[1], dataset.item_ids[int(dataset.sequences[1][-1])]
    body = client.get(f"/api/users/{uid}/explanations/{iid}").json()
    assert [e["model"] for e in body["explanations"]] == ["vip5"]
    assert isinstance(body["explanations"][0]["text"], str) and body["note"] is None
    refused = client.get(f"/api/users/{uid}/explanations/{iid}", params={"model": "sasrec"})
    assert refused.status_code == 422 and "sasrec" in refused.json()["detail"]


@pytest.mark.parametrize(("method", "url", "body", "status", "field"), [
    ("get", "/api/users/nobody/history", None, 404, "user_id"),
    ("get", "/api/users/nobody/recommendations", None, 404, "user_id"),
    ("get", "/api/items/nothing", None, 404, "item_id"),
    ("get", "/api/users/user0000/recommendations?k=0", None, 422, "k"),
    ("get", "/api/users/user0000/recommendations?k=51", None, 422, "k"),
    ("get", "/api/users/user0000/recommendations?k=ten", None, 422, "k"),
    ("get", "/api/users/user0000/recommendations?model=gpt", None, 404, "model"),
    ("get", "/api/users/user0000/explanations/nothing", None, 404, "item_id"),
    ("get", "/api/users?limit=0", None, 422, "limit"),
    ("get", "/api/users?offset=-1", None, 422, "offset"),
    ("post", "/api/recommendations", {"history": []}, 422, "history"),
    ("post", "/api/recommendations", {"history": "item0001"}, 422, "history"),
    ("post", "/api/recommendations", {"history": ["item0001", "zzz"]}, 422, "history[1]"),
    ("post", "/api/recommendations", {"history": ["item0001"], "k": -3}, 422, "k"),
    ("post", "/api/recommendations", {"history": ["item0001"], "model": "x"}, 404, "model"),
    ("post", "/api/recommendations", {"history": ["item0001"], "extra": 1}, 422, "extra"),
])
def test_bad_input_is_a_4xx_naming_the_field(client, method, url, body, status, field):
    r = getattr(client, method)(url, **({"json": body} if body is not None else {}))
    assert r.status_code == status, r.text
    assert field in str(r.json()["detail"])
    assert client.get("/healthz").status_code == 200


def test_malformed_json_body_is_a_422(client):
    r = client.post("/api/recommendations", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert client.get("/healthz").status_code == 200


def test_micro_batching_gathers_concurrent_requests_into_fewer_calls(app, runs, dataset):
    stats = app.state.service.batcher.stats
    users = list(range(24))

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(*(c.get(
                f"/api/users/{dataset.user_ids[u]}/recommendations",
                params={"k": 5, "model": "sasrec"}) for u in users))
        return [[rec["item"]["id"] for rec in r.json()["results"][0]["recommendations"]]
                for r in rs]

    before = stats.calls
    batched = asyncio.run(burst())
    calls = stats.calls - before
    assert calls < len(users) / 2, f"{len(users)} requests took {calls} model calls"
    assert max(stats.sizes[before:]) > 1
    model = runs[0].model
    for u, got in zip(users, batched, strict=True):  # identical to one user per call
        hist = torch.as_tensor(dataset.sequences[u], dtype=torch.long)
        alone = recommend_top_k(model, torch.tensor([u]), [hist], 5)[0]
        assert got == [dataset.item_ids[i] for i in np.asarray(alone)]


def test_a_model_not_trained_on_explanations_is_labelled_so():
    from types import SimpleNamespace

    from mfmrec.serve.service import ServedModel

    def served(tasks):
        config = SimpleNamespace(model=SimpleNamespace(tasks=tasks))
        return ServedModel("m", SimpleNamespace(config=config, model=None))

    assert served(["sequential", "direct", "explanation"]).trained_on_explanations
    assert not served(["sequential", "direct"]).trained_on_explanations
    assert served(None).trained_on_explanations  # a model config without tasks
