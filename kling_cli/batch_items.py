"""Where a batch item's job is found again on a re-run: its journal key (same item, same
output folder, same key), whichever provider list the re-run names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kling_cli.journal import JobRecord, Journal
    from kling_cli.manifest import PlannedItem

# The provider a spread item's key names: any of them, so that a re-run that lists its
# providers in another order, adds one or drops one finds the item where it was made.
_SPREAD_KEY = "*"


def item_key(planned: PlannedItem, output_dir: Path, provider: str | None = None) -> str:
    """Same item, same output folder: same key, so a re-run finds the job again. `provider`:
    the one the key names (by default the item's, or any for a spread item)."""
    if provider is None:
        provider = _SPREAD_KEY if planned.alternatives else planned.provider.id
    material = json.dumps(
        {
            "id": planned.item.item_id,
            "provider": provider,
            "request": planned.request.model_dump(mode="json"),
            "output_dir": str(output_dir.resolve()),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def earlier_job(journal: Journal, planned: PlannedItem, output_dir: Path) -> JobRecord | None:
    """The item's latest job from an earlier run: a spread item's under any provider (or one
    of its providers alone); a one-provider item's also where a spread run made it there."""
    key = planned.key or item_key(planned, output_dir)
    keys = [key]
    if planned.alternatives:
        keys += [item_key(planned, output_dir, p.id) for p in planned.alternatives]
    else:
        keys.append(item_key(planned, output_dir, _SPREAD_KEY))
    jobs = [journal.find_batch_item(one) for one in keys]
    if not planned.alternatives:
        jobs[1:] = [j for j in jobs[1:] if j is not None and j.provider == planned.provider.id]
    return max((j for j in jobs if j is not None), key=lambda j: j.created_at, default=None)
