"""Bases of the request and response models, the list envelope and the error shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from invoicing import pages
from invoicing.specs import Filters

Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class Body(BaseModel):
    """A request body: camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Public(BaseModel):
    """A response body: camelCase on the wire, fields in the order they are shown."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


ItemT = TypeVar("ItemT", bound=BaseModel)
RowT = TypeVar("RowT")


class Page(Public, Generic[ItemT]):
    """A list, newest first: `nextCursor` fetches the next page (null on the last)."""

    data: list[ItemT]
    next_cursor: str | None

    @classmethod
    def of(cls, page: pages.Page[RowT], render: Callable[[RowT], ItemT]) -> Page[ItemT]:
        return cls(data=[render(row) for row in page.rows], next_cursor=page.next_cursor)


class FilterItem(Body):
    key: str
    values: list[str | int | float] | str | int | float


# {property: [allowed values]}, or [{key, values}].
FiltersIn = dict[str, list[str]] | list[FilterItem]


def filters_spec(raw: FiltersIn | None) -> Filters:
    """Filters as the domain takes them: property -> allowed values (as strings)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {key: tuple(values) for key, values in raw.items()}
    result: dict[str, tuple[str, ...]] = {}
    for item in raw:
        values = item.values if isinstance(item.values, list) else [item.values]
        result[item.key] = tuple(str(v) for v in values)
    return result


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable machine-readable code, e.g. validation_error")
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error: 400 bad JSON, 401/403, 404, 409, 413, 422."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "The body is not valid JSON"),
        (401, "No or no valid API key"),
        (403, "The key does not belong to that tenant"),
        (404, "Not found"),
        (409, "Illegal state transition or duplicate code"),
        (422, "Validation failed; the message names the field"),
    )
}
