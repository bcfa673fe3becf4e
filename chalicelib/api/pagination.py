"""Vamp's page/per_page query parameters, and the X-Total-Count and Link response headers."""
from __future__ import annotations

from urllib.parse import urlencode

from chalicelib.errors import FieldError, ValidationFailed

DEFAULT_PER_PAGE = 30
MAX_PAGE = 10**6


def page_params(query: dict[str, str] | None, per_page_max: int) -> tuple[int, int]:
    """page and per_page of a query string, each checked against its bound."""
    query = query or {}
    return check_page(query.get("page"), query.get("per_page"), per_page_max)


def check_page(page: object, per_page: object, per_page_max: int, prefix: str = "") -> tuple[int, int]:
    """The one check of paging, whatever form a query takes (a query string, a body): each an
    integer from 1 to its bound, else a 400 at `<prefix>page` / `<prefix>per_page`."""
    errors, values = [], {}
    for key, raw, default, top in (("page", page, 1, MAX_PAGE), ("per_page", per_page, DEFAULT_PER_PAGE, per_page_max)):
        try:
            if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            value = default if raw in (None, "") else int(raw)
            if not 1 <= value <= top:
                raise ValueError
            values[key] = value
        except (TypeError, ValueError):
            errors.append(FieldError(prefix + key, f"must be an integer from 1 to {top}"))
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
