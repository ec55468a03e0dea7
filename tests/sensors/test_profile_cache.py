"""A champion's reference profile is parsed once per version and shared by intake and the sensors across ticks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from daemon.compose import Heald
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from pipeline.profile import Profile
from pipeline.train import TrainParams
from sensors.base import ProfileCache
from sensors.intake import Intake
from tests.conftest import table


def small_model(heald: Heald, clock: ManualClock) -> None:
    """Model "m", a small forest on 600 rows, with its first version as champion."""
    onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(600),
        target="y",
        now=clock.now(),
        params=TrainParams(n_estimators=5, max_depth=4),
    )


def test_a_version_is_parsed_once_and_a_new_version_again(heald: Heald, clock: ManualClock) -> None:
    """Fresh reads of the same champion get the same parsed profile; another version (number or checksum) is
    parsed anew and replaces it, and what is returned is the profile the version's row holds."""
    small_model(heald, clock)
    cache = ProfileCache()
    champion = heald.registry.champion("m")
    assert champion is not None
    first = cache.get(champion)
    parsed = Profile.from_json(champion.profile)
    assert first is not None and parsed is not None and first.to_json() == parsed.to_json()
    assert cache.get(heald.registry.champion("m")) is first  # type: ignore[arg-type]
    other = replace(champion, number=champion.number + 1, sha256="0" * 64)
    second = cache.get(other)
    assert second is not None and second is not first and second.to_json() == first.to_json()
    assert cache.get(champion) is not first  # one entry per model: the older version was let go


def test_the_loop_shares_intake_profiles_with_the_sensors(heald: Heald, clock: ManualClock) -> None:
    """After a tick with a batch, the profile intake checked the batch against is the one the sensors read: the
    loop's contexts use intake's cache, so a tick parses a champion's profile at most once (and not again next
    tick)."""
    small_model(heald, clock)
    champion = heald.registry.champion("m")
    assert champion is not None
    for i in range(2):
        folder = heald.settings.landing / "m"
        folder.mkdir(parents=True, exist_ok=True)
        table(200, seed=i + 1).to_csv(folder / f"b{i}.csv", index=False)
        clock.advance(timedelta(hours=1))
        heald.loop.tick()
        held = heald.loop.p.intake.profiles.get(champion)
        model = heald.store.list_models()[0]
        ctx = heald.loop._context(model, clock.now(), Intake(batches=[], observations=[]))
        assert ctx.profile is held
    assert heald.store.observations("m", metric="drift_share")
