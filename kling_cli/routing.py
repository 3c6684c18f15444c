"""Which providers a new job may go to, and in what order: `-p a,b,c` (or `default_provider`
as a list) in the order given; `-p auto` (or `route = "cheapest"`) the providers with a key,
cheapest first. Either way a provider whose documented capabilities cannot serve this exact
request is left out, with the reason. No I/O: the request is checked, never sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kling_cli.errors import ConfigError, InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kling_cli.config import ConfigFile
    from kling_cli.providers.base import Provider
    from kling_cli.request import GenerationRequest

AUTO = "auto"
ROUTE_SETTING = "route"
CHEAPEST = "cheapest"


@dataclass(frozen=True)
class Choice:
    """One provider considered for the request: its estimated cost, whether a key is set,
    and why it cannot serve the request (None: it can)."""

    provider: Provider
    cost: float
    has_key: bool
    unable: str | None = None

    @property
    def can_serve(self) -> bool:
        return self.unable is None


@dataclass
class Route:
    """The providers to try in order (`order`), and every one considered, with reasons.
    `routed`: more than one provider was named, or `auto`: attempts are recorded."""

    order: list[Choice]
    considered: list[Choice] = field(default_factory=list)
    auto: bool = False
    routed: bool = False

    @property
    def first(self) -> Choice:
        return self.order[0]


def provider_spec(provider: str | Sequence[str] | None) -> str | None:
    """The Python API's `provider`: an id, `a,b,c`, `auto`, or a list of ids (tried in order,
    as a config file's `default_provider` list is), as the `--provider` text."""
    if provider is None or isinstance(provider, str):
        return provider
    return ",".join(provider)


def provider_ids(spec: str | None) -> list[str] | None:
    """`a,b,c` as ids (lower case, blanks dropped); None for no spec."""
    if spec is None:
        return None
    return [part.strip().lower() for part in spec.split(",") if part.strip()]


def requested(explicit: str | None, config: ConfigFile) -> list[str] | None:
    """The providers asked for (`-p`, $KLING_PROVIDER, `default_provider`, or `auto` from
    `route = "cheapest"`), checked to be known; None when nothing is asked for."""
    from kling_cli.config import resolve_provider_id

    ids = provider_ids(resolve_provider_id(explicit, config))
    route = config.get(ROUTE_SETTING)
    if route is not None and route != CHEAPEST:
        raise ConfigError(
            f"route = {route!r} in {config.path} is not a route; the one there is "
            f"{CHEAPEST!r} (or leave it out to use default_provider)."
        )
    if ids is None and route == CHEAPEST:
        ids = [AUTO]
    if ids is None:
        return None
    if not ids:
        raise InvalidRequestError("--provider is empty; name a provider id, a list, or auto.")
    if AUTO in ids and len(ids) > 1:
        raise InvalidRequestError(
            f"--provider {','.join(ids)}: auto chooses among every provider with a key, so it "
            "stands alone."
        )
    if len(set(ids)) != len(ids):
        raise InvalidRequestError(f"--provider {','.join(ids)} names a provider twice.")
    for provider_id in ids:
        if provider_id != AUTO:
            config.registry.info(provider_id)
    return ids


def plan_route(
    ids: list[str],
    config: ConfigFile,
    request: GenerationRequest,
    *,
    emulate: bool,
    aspect_unset: bool,
    strict: bool = True,
) -> Route:
    """The order to try `ids` in (or, for `auto`, the providers with a key, under `emulate`
    every provider, cheapest first; equal prices keep the catalog's order), and every provider
    considered. `strict`: raise `InvalidRequestError` when none can serve the request, naming
    why for each, and `ConfigError` when none has a key."""
    from kling_cli.config import resolve_key

    auto = ids == [AUTO]
    names = list(config.registry) if auto else ids
    considered = []
    for provider_id in names:
        provider = config.registry.lookup(provider_id)
        has_key = emulate or resolve_key(provider, config, check=False) is not None
        choice = _choice(provider, request, has_key, aspect_unset)
        if len(names) > 1 and not has_key and choice.can_serve:
            # Of several, one without a key is passed over, as one that cannot serve.
            choice = Choice(provider, choice.cost, has_key, "no API key is set.")
        considered.append(choice)
    if auto:
        considered.sort(key=lambda choice: choice.cost)
    order = [choice for choice in considered if choice.can_serve]
    route = Route(order, considered, auto=auto, routed=auto or len(ids) > 1)
    if strict and len(names) > 1 and not any(choice.has_key for choice in considered):
        what = (
            "-p auto chooses among the providers with a key, and none has one."
            if auto
            else (f"No API key is set for any of {', '.join(names)}.")
        )
        raise ConfigError(
            what, hint="Store keys with `kling config set-key <id>`, or add --emulate."
        )
    if strict and not order:
        reasons = " ".join(f"{c.provider.name}: {c.unable}" for c in considered if c.has_key)
        raise InvalidRequestError(f"No provider asked for can serve this request. {reasons}")
    return route


def with_default_aspect(
    request: GenerationRequest, provider: Provider, aspect_unset: bool
) -> GenerationRequest:
    """Our default with references is `auto`; where a provider has none, the one ratio every
    provider accepts."""
    if aspect_unset and "auto" not in provider.capabilities.aspect_ratios:
        return request.model_copy(update={"aspect_ratio": "1:1"})
    return request


def _choice(
    provider: Provider, request: GenerationRequest, has_key: bool, aspect_unset: bool
) -> Choice:
    from kling_cli.jobs.preview import estimated_cost

    shaped = with_default_aspect(request, provider, aspect_unset)
    cost = estimated_cost(provider, shaped)
    try:
        provider.check_request(shaped)
    except InvalidRequestError as refused:
        return Choice(provider, cost, has_key, refused.message)
    return Choice(provider, cost, has_key)


def describe_route(route: Route) -> list[dict[str, object]]:
    """Every provider considered: those it would try, in order, then those that cannot serve
    the request and why, for `--dry-run` and `kling providers route`."""
    rows: list[dict[str, object]] = []
    position = {id(choice): n for n, choice in enumerate(route.order, start=1)}
    for choice in [*route.order, *(c for c in route.considered if not c.can_serve)]:
        rows.append(
            {
                "provider": choice.provider.id,
                "name": choice.provider.name,
                "order": position.get(id(choice)),
                "estimated_cost": round(choice.cost, 6),
                "key_configured": choice.has_key,
                "unable": choice.unable,
            }
        )
    return rows


def explain_skipped(route: Route) -> str | None:
    """The providers named in `-p a,b,c` that the job will not go to, and why (no key, or
    the request is not one they serve); None when it may go to each."""
    skipped = [choice for choice in route.considered if not choice.can_serve]
    if not skipped:
        return None
    reasons = " ".join(f"{choice.provider.id}: {choice.unable}" for choice in skipped)
    return f"Not trying {', '.join(choice.provider.id for choice in skipped)}. {reasons}"


def explain_auto(route: Route) -> str:
    """Why `-p auto` chose what it chose, in one line: the choice and its cost, the failover
    order, and the providers with a key that cannot serve the request."""
    first = route.first
    text = (
        f"-p auto: {first.provider.name} (${first.cost:.4f}), the cheapest provider with a key "
        "that can serve this request"
    )
    if len(route.order) > 1:
        text += "; then " + ", ".join(choice.provider.id for choice in route.order[1:])
    unable = [c for c in route.considered if c.has_key and not c.can_serve]
    if unable:
        text += ". Cannot: " + " ".join(f"{c.provider.id}: {c.unable}" for c in unable)
    return text if text.endswith(".") else text + "."
