"""Vamp's page/per_page query parameters, and the X-Total-Count and Link response headers."""
from __future__ import annotations

from urllib.parse import urlencode

from chalicelib.errors import FieldError, ValidationFailed

DEFAULT_PER_PAGE = 30


def page_params(query: dict[str, str] | None, per_page_max: int) -> tuple[int, int]:
    query = query or {}
    errors, values = [], {}
    for key, default, top in (("page", 1, 10**6), ("per_page", DEFAULT_PER_PAGE, per_page_max)):
        raw = query.get(key)
        try:
            value = default if raw in (None, "") else int(raw)
            if not 1 <= value <= top:
                raise ValueError
            values[key] = value
        except ValueError:
            errors.append(FieldError(key, f"must be an integer from 1 to {top}"))
    if errors:
        raise ValidationFailed("Invalid paging", errors)
    return values["page"], values["per_page"]


def page_headers(path: str, query: dict[str, str] | None, page: int, per_page: int, total: int) -> dict[str, str]:
    last = max(1, -(-total // per_page))
    rest = {k: v for k, v in (query or {}).items() if k not in ("page", "per_page")}

    def link(p: int, rel: str) -> str:
        return f'<{path}?{urlencode({**rest, "page": p, "per_page": per_page})}>; rel="{rel}"'

    links = [link(1, "first")]
    if page > 1:
        links.append(link(min(page - 1, last), "prev"))
    if page < last:
        links.append(link(page + 1, "next"))
    links.append(link(last, "last"))
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}
