"""The JSON shapes of the API (pydantic models, published in ``/openapi.json``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

K_MAX = 50  # largest top-k one request may ask for (also capped by the catalogue size)
HISTORY_MAX = 200  # most items a posted history may hold


class ModelInfo(BaseModel):
    key: str = Field(description="Name to pass as `model` (the run directory's name)")
    name: str = Field(description="Registered model name, e.g. sasrec or vip5")
    produces: str = Field(description="`scores` (ranked by score) or `list` (own ranked list)")
    tasks: list[str]
    explains: bool = Field(description="Whether the model generates explanations")
    run_dir: str


class Info(BaseModel):
    dataset: str
    simulated: bool = Field(description="True when the dataset is SIMULATED")
    num_users: int
    num_items: int
    has_images: bool
    k_max: int
    models: list[ModelInfo]


class Health(BaseModel):
    status: str
    models: int


class Item(BaseModel):
    id: str = Field(description="External item id")
    number: int = Field(description="The item's number inside prompts")
    title: str | None
    image_url: str | None = Field(description="URL of the item's photo, null when none")


class ItemDetail(Item):
    attributes: dict[str, object]


class User(BaseModel):
    id: str = Field(description="External user id")
    name: str | None
    history_length: int


class UserPage(BaseModel):
    total: int = Field(description="Users matching the query")
    offset: int
    users: list[User]


class History(BaseModel):
    user: User
    items: list[Item]


class Recommendation(BaseModel):
    rank: int
    item: Item
    score: float | None = Field(description="The model's score (null for list-generating "
                                "models, which rank by their own list)")


class ModelRecommendations(BaseModel):
    model: str
    name: str
    produces: str
    recommendations: list[Recommendation]


class Recommendations(BaseModel):
    user: str | None = Field(description="External user id; null for a posted history")
    k: int
    results: list[ModelRecommendations]


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[str] = Field(min_length=1, max_length=HISTORY_MAX,
                               description="External item ids, oldest first")
    k: int = Field(10, ge=1, le=K_MAX)
    model: str | None = Field(None, description="A model key; omitted: every loaded model")


class Explanation(BaseModel):
    model: str
    name: str
    text: str


class Explanations(BaseModel):
    user: str
    item: Item
    rating: float | None = Field(description="The rating the explanation is for")
    explanations: list[Explanation]
    note: str | None = Field(description="What was assumed, or why there is no explanation")
