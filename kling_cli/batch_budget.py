"""A batch's cost limit (`--max-cost`): the estimate checked before the run starts, and the
`Budget` that stops submitting once what the run spent would pass it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kling_cli.errors import InvalidRequestError

if TYPE_CHECKING:
    from kling_cli.manifest import PlannedItem


def item_estimate(planned: PlannedItem) -> float:
    return float(planned.provider.price.usd_per_image * planned.request.num_images)


def check_max_cost(usd: float | None) -> float | None:
    """`--max-cost` if it is a usable limit in USD: finite and not negative (0 allows nothing
    to be spent). NaN, infinite and negative values are refused (`InvalidRequestError`, exit
    2): NaN compares false with everything, so it would silently switch the cap off."""
    if usd is not None and (not math.isfinite(usd) or usd < 0):
        raise InvalidRequestError(
            f"--max-cost must be a finite number of US dollars, 0 or more, not {usd:g}."
        )
    return usd


def refuse_over_budget(estimate: float, max_cost: float | None) -> None:
    """Refuse to start (`InvalidRequestError`, exit 2) when the estimate in USD is over
    `--max-cost`, which `check_max_cost` has checked."""
    check_max_cost(max_cost)
    if max_cost is not None and estimate > max_cost + 1e-9:
        raise InvalidRequestError(
            f"The estimated cost is ${estimate:.2f}, over --max-cost ${max_cost:.2f}; "
            "nothing was submitted."
        )


@dataclass
class Budget:
    """`--max-cost` during a run: what the items this run submitted cost, as their provider
    reported it, or at their estimate while that is unknown."""

    limit: float | None
    spent: float = 0.0
    exhausted: bool = False

    def reserve(self, estimate: float) -> bool:
        """Whether an item estimated at `estimate` may be submitted now. Once one may not,
        none may: the run stops submitting."""
        over = self.limit is not None and self.spent + estimate > self.limit + 1e-9
        self.exhausted = self.exhausted or over
        if self.exhausted:
            return False
        self.spent += estimate
        return True

    def settle(self, estimate: float, cost: float | None) -> None:
        """The item ended: count what the provider reported instead of the estimate."""
        if cost is not None:
            self.spent += cost - estimate
