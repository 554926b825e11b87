"""People walking on the sidewalks beside the road, for random clips (`WorldSpec.walkers`).

Each walker keeps to one sidewalk (`SIDEWALK_M` beyond the road's left or right edge) at a steady
walking pace, in either direction; one that leaves the simulated range is replaced far ahead, as
random cars are. They are drawn from a stream of their own, so a seed's cars are those it has
without walkers, and their track ids start at WALKER_FIRST_ID, clear of the cars'.
"""

from __future__ import annotations

import numpy as np

from drivesim.world.categories import CLOTHES, draw_size
from drivesim.world.road import Road
from drivesim.world.traffic import FAR_M, NEAR_M, SIDEWALK_M, Car

WALKER_FIRST_ID = 100_000
# walkers per crowdedness bucket (inclusive range): busier streets have more people
WALKERS = {"empty": (0, 1), "light": (1, 3), "moderate": (2, 5), "crowded": (4, 8)}
PACE_MS = (0.9, 1.7)  # walking speeds, m/s
SPAWN_M, RESPAWN_M = (6.0, 90.0), (100.0, 150.0)


class Walkers:
    """Pedestrians on the sidewalks around an ego driving at `ego_speed` m/s."""

    def __init__(self, seed: int, road: Road, ego_speed: float, crowdedness: str):
        self.rng = np.random.default_rng([seed, 29])
        self.road, self.ego_speed = road, ego_speed
        self.next_id = WALKER_FIRST_ID
        lo, hi = WALKERS[crowdedness]
        self.people: list[Car] = []
        for _ in range(int(self.rng.integers(lo, hi + 1))):
            self._spawn(*SPAWN_M)

    def _spawn(self, lo: float, hi: float) -> None:
        rng, road = self.rng, self.road
        right = bool(rng.random() < 0.6)  # the near (right) sidewalk is the busier one in view
        lateral = road.right_edge_m + SIDEWALK_M if right else road.left_edge_m - SIDEWALK_M
        lateral += float(rng.uniform(-0.6, 0.6))
        pace = float(rng.uniform(*PACE_MS)) * (1 if rng.random() < 0.5 else -1)
        length, width, height = draw_size("pedestrian", rng)
        clothes = CLOTHES[int(rng.integers(len(CLOTHES)))]
        self.people.append(
            Car(
                self.next_id,
                "walker",
                lateral,
                float(rng.uniform(lo, hi)),
                pace,
                clothes,
                length,
                width,
                height,
                category="pedestrian",
            )
        )
        self.next_id += 1

    def step(self, dt: float) -> None:
        """Walk everyone dt seconds on, replacing those the ego has passed or left behind."""
        for person in self.people:
            person.ahead += (person.speed - self.ego_speed) * dt
        gone = [p for p in self.people if not NEAR_M <= p.ahead <= FAR_M]
        for person in gone:
            self.people.remove(person)
            self._spawn(*RESPAWN_M)
