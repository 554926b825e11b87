"""People walking on the sidewalks beside the road, for random clips (`WorldSpec.walkers`).

Each walker keeps to one sidewalk (`SIDEWALK_M` beyond the road's left or right edge) at a steady
walking pace, in either direction; one that leaves the simulated range is replaced far ahead, as
random cars are. Some of those in view at the start cross the road ahead instead (newcomers far
ahead do not: cars are spawned there too): they stand still along the road and walk
across at their pace, waiting at a lane's edge while a car (or the ego) would reach them before
they clear it, then walk on along the far sidewalk. They are drawn from a stream of their own, so
a seed's cars are those it has without walkers, and their track ids start at WALKER_FIRST_ID,
clear of the cars'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drivesim.world.categories import CLOTHES, draw_size
from drivesim.world.road import Road
from drivesim.world.traffic import FAR_M, LANE_WIDTH_M, NEAR_M, SIDEWALK_M, Car

WALKER_FIRST_ID = 100_000
# walkers per crowdedness bucket (inclusive range): busier streets have more people
WALKERS = {"empty": (0, 1), "light": (1, 3), "moderate": (2, 5), "crowded": (4, 8)}
PACE_MS = (0.9, 1.7)  # walking speeds, m/s
SPAWN_M, RESPAWN_M = (6.0, 90.0), (100.0, 150.0)
CROSSING_SHARE = 0.3  # of the walkers in view at the start of a clip, those who cross the road
CROSSING_AHEAD_M = (15.0, 60.0)  # where they cross, ahead of the ego at the start
CLEAR_MARGIN_S = 1.0  # a crosser steps into a lane only if no car reaches it sooner than this after


class Walkers:
    """Pedestrians on the sidewalks around an ego driving at `ego_speed` m/s."""

    def __init__(self, seed: int, road: Road, ego_speed: float, crowdedness: str):
        self.rng = np.random.default_rng([seed, 29])
        self.road, self.ego_speed = road, ego_speed
        self.next_id = WALKER_FIRST_ID
        lo, hi = WALKERS[crowdedness]
        self.people: list[Car] = []
        self.crossing: dict[int, tuple[float, float]] = {}  # track id -> (far sidewalk, lateral m/s)
        self.car_speeds: dict[int, float] = {}  # the cars' speeds over the last step (traffic adapts its own)
        self._car_ahead: dict[int, float] = {}
        for _ in range(int(self.rng.integers(lo, hi + 1))):
            self._spawn(first=True)

    def _spawn(self, first: bool) -> None:
        """A new walker: in view at the start of a clip, else far ahead (no one pops up near)."""
        rng, road = self.rng, self.road
        lo, hi = SPAWN_M if first else RESPAWN_M
        right = bool(rng.random() < 0.6)  # the near (right) sidewalk is the busier one in view
        sidewalks = (road.right_edge_m + SIDEWALK_M, road.left_edge_m - SIDEWALK_M)
        lateral = sidewalks[0] if right else sidewalks[1]
        lateral += float(rng.uniform(-0.6, 0.6))
        pace = float(rng.uniform(*PACE_MS)) * (1 if rng.random() < 0.5 else -1)
        if first and rng.random() < CROSSING_SHARE:  # not far ahead: a car may spawn on them there
            lo, hi = CROSSING_AHEAD_M
            far = sidewalks[1] if right else sidewalks[0]
            self.crossing[self.next_id] = (far, abs(pace) * (1.0 if far > lateral else -1.0))
            pace = 0.0  # still along the road while crossing it
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

    def step(self, dt: float, cars: Sequence[Car] = (), ego_lateral: float | None = None) -> None:
        """Walk everyone dt seconds on, replacing those the ego has passed or left behind; crossers
        wait at a lane's edge while one of `cars` (or the ego, at `ego_lateral`) is coming."""
        ahead = {car.track_id: car.ahead for car in cars}
        self.car_speeds = {
            i: (a - self._car_ahead[i]) / dt + self.ego_speed
            for i, a in ahead.items()
            if i in self._car_ahead
        }
        self._car_ahead = ahead
        for person in self.people:
            if person.track_id in self.crossing:
                self._cross(person, dt, cars, ego_lateral)
            person.ahead += (person.speed - self.ego_speed) * dt
        gone = [p for p in self.people if not NEAR_M <= p.ahead <= FAR_M]
        for person in gone:
            self.people.remove(person)
            self.crossing.pop(person.track_id, None)
            self._spawn(first=False)

    def _cross(self, person: Car, dt: float, cars: Sequence[Car], ego_lateral: float | None) -> None:
        far, velocity = self.crossing[person.track_id]
        step = velocity * dt
        if abs(far - person.lateral) <= abs(step):  # across: walk on along this sidewalk
            person.lateral = far
            person.speed = abs(velocity) * (1 if self.rng.random() < 0.5 else -1)
            del self.crossing[person.track_id]
            return
        lane_now, lane_next = self._lane_at(person.lateral), self._lane_at(person.lateral + step)
        if (
            lane_next is not None
            and lane_next != lane_now
            and self._lane_busy(person, lane_next, velocity, cars, ego_lateral)
        ):
            return  # wait at the lane's edge
        person.lateral += step

    def _lane_at(self, lateral: float) -> int | None:
        """The lane (0 = the divider's right, negative: oncoming) at a lateral position; None off the road."""
        if not self.road.left_edge_m <= lateral < self.road.right_edge_m:
            return None
        return int(np.floor(lateral / LANE_WIDTH_M))

    def _lane_busy(
        self, person: Car, lane: int, velocity: float, cars: Sequence[Car], ego_lateral: float | None
    ) -> bool:
        """Would a vehicle in `lane` reach the person before they have walked across it?"""
        clear_s = LANE_WIDTH_M / abs(velocity) + CLEAR_MARGIN_S
        ego_in_lane = ego_lateral is not None and self._lane_at(ego_lateral) == lane
        for car in cars:
            if self._lane_at(car.lateral) != lane:
                continue
            gap = person.ahead - car.ahead  # > 0: the car is behind the crossing point
            reach = car.length / 2 + 1.0
            if abs(gap) < reach:
                return True
            speeds = [car.speed, self.car_speeds.get(car.track_id, car.speed)]
            if ego_in_lane and car.ahead > 0:
                speeds.append(self.ego_speed + 1.0)  # the traffic speeds up a car the ego closes on
            for speed in speeds:
                if speed * gap > 0 and (abs(gap) - reach) / abs(speed) < clear_s:
                    return True
        if ego_in_lane:
            return person.ahead > -2.0 and person.ahead / max(self.ego_speed, 1e-3) < clear_s
        return False
