"""The request options a provider documents for Kling Image O1 that kling-cli does not expose,
with the reason: `kling providers show ID` lists them, so a user can tell a missing option
from a forgotten one. Every other documented option is a `kling generate` option."""

from __future__ import annotations

from collections.abc import Mapping

_SET_FOR_YOU = "set by kling-cli"

NOT_OFFERED: dict[str, dict[str, str]] = {
    # docs.unifically.com/api-reference/v1-tasks
    "unifically": {
        "dry_run": "its answer's shape is not documented; `kling generate --dry-run` shows "
        "the request and the estimate without sending anything",
    },
    # apiin.one model page and apiin-one.pages.dev/docs
    "apiinone": {
        "negative_prompt": 'listed only by the generic image docs as "not all models support '
        'this", not by the Kling Image O1 page',
        "seed": 'listed only by the generic image docs as "not all models support this"',
    },
    # runware.ai/docs/models/klingai-image-o1
    "runware": {
        "outputType": f"{_SET_FOR_YOU}: always URL (base64 answers would hold whole images "
        "in the journal's answers)",
        "includeCost": f"{_SET_FOR_YOU}: always on, for the job's cost",
        "deliveryMethod": f"{_SET_FOR_YOU}: sync when waiting, async with --no-wait",
        "resolution": f"{_SET_FOR_YOU}: with -a auto; width/height from the documented table "
        "otherwise",
        "routing": "semantics not documented",
        "advancedFeatures": "semantics not documented",
    },
    # inference.sh SDK `ApiAppRunRequest` and /docs/api/running-apps
    "inferencesh": {
        "n": f"{_SET_FOR_YOU}: always 1, since the app returns one image but bills for n; "
        "-n runs several tasks",
        "setup, infra, workers, function, session, session_timeout, run_at, metadata, "
        "app_id, version_id": "platform scheduling fields, not image options",
        "stream, wait": f"{_SET_FOR_YOU}: kling-cli reads the status stream itself",
    },
}


def not_offered(provider_id: str, copy_of: str | None = None) -> Mapping[str, str]:
    """The documented options not exposed for this provider (a named copy: its original's)."""
    return NOT_OFFERED.get(copy_of or provider_id, {})
