"""Damaged model files: missing, failing their checksum, or matching it but not loadable (registered damaged:
not a zip, a zip that is not a skops model, a truncated archive, a pickle, a type heald does not trust).
Each time predict answers 503 naming the file (not a 500 from BadZipFile), the artifact sensor reports the
champion damaged with the same reason, the API stays up, no request row is captured, and the damaged file
and its version row are kept for inspection (nothing deleted)."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sklearn.preprocessing import FunctionTransformer
from skops.io import dumps
from sqlalchemy import update

from daemon.api import ApiServer, create_app
from daemon.capture import Capture
from daemon.compose import Heald, build
from daemon.metrics import Metrics
from daemon.onboard import onboard
from knowledge.clock import ManualClock
from knowledge.sql import schema as t
from knowledge.values import Version
from pipeline.train import TrainParams
from sensors.artifact import ArtifactSensor
from sensors.base import SenseContext
from tests.conftest import make_settings, table


def zipped(**members: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name.replace("_", "."), content)
    return buffer.getvalue()


# name -> (the damaged bytes, from the healthy ones; whether the registry's sha256 is updated to match them;
#          words the error must hold)
Damage = Callable[[bytes], bytes]
CASES: dict[str, tuple[Damage, bool, str]] = {
    "text, not a zip": (lambda _: b"this is not a model\n", True, "is not a skops model (BadZipFile"),
    "zero bytes": (lambda _: b"", True, "is empty (0 bytes)"),
    "zip without a schema": (lambda _: zipped(hello_txt="hi"), True, "is not a skops model (KeyError"),
    "zip with a broken schema": (lambda _: zipped(schema_json="{"), True, "is not a skops model (JSONDecodeError"),
    "truncated archive": (lambda good: good[: len(good) // 2], True, "is not a skops model"),
    "a pickle": (lambda _: pickle.dumps({"model": [1, 2, 3]}), True, "is not a skops model"),
    "an untrusted type": (lambda _: dumps(FunctionTransformer(func=print)), True, "untrusted types ['builtins.print']"),
    "checksum mismatch": (lambda good: good[:-1] + bytes([good[-1] ^ 1]), False, "fails its checksum"),
    "file deleted": (lambda _: b"<deleted>", False, "is missing"),
}


@pytest.fixture
def onboarded(tmp_path: Path) -> Iterator[tuple[Heald, Version]]:
    heald = build(make_settings(tmp_path / "state"), clock=ManualClock(), pool="inline")
    version = onboard(
        heald.store,
        heald.registry,
        name="m",
        frame=table(300),
        target="y",
        now=heald.clock.now(),
        params=TrainParams(n_estimators=3, n_jobs=1),
    )
    yield heald, version
    heald.close()


def damage(heald: Heald, version: Version, how: Damage, rehash: bool) -> bytes | None:
    path = heald.settings.artifacts / version.artifact
    bad = how(path.read_bytes())
    if bad == b"<deleted>":
        path.unlink()
        return None
    path.write_bytes(bad)
    if rehash:  # registered damaged: the registry's sha256 is that of the bad bytes, so the checksum passes
        with heald.store.engine.begin() as c:
            c.execute(
                update(t.versions).where(t.versions.c.model == "m").values(sha256=hashlib.sha256(bad).hexdigest())
            )
    return bad


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_champion_is_a_clear_503_and_the_sensor_reports_it(
    onboarded: tuple[Heald, Version], case: str
) -> None:
    """A restarted heald (empty model cache) over a damaged champion: 503 naming the file, the sensor's
    artifact_ok is 0 with the reason, healthz still answers, nothing captured, the file and row still there."""
    first, version = onboarded
    how, rehash, words = CASES[case]
    bad = damage(first, version, how, rehash)
    heald = build(first.settings, clock=ManualClock(), pool="inline")  # a restart: nothing cached
    try:
        capture = Capture(heald.settings.landing, lambda: heald.store)
        server = ApiServer(create_app(lambda: heald, capture, Metrics(heald.store, heald.registry)), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{server.start()}"
        try:
            answer = httpx.post(
                f"{base}/models/m/predict", json={"rows": [{"a": 0.1, "b": 0.2, "c": "red"}]}, timeout=60
            )
            assert answer.status_code == 503, answer.text
            assert "model file" in answer.text and words in answer.text, answer.text
            assert httpx.get(f"{base}/healthz", timeout=60).status_code == 200
        finally:
            server.stop()
        assert capture.pending() == 0
        model = heald.store.get_model("m")
        [reading] = ArtifactSensor().sense(SenseContext(now=heald.clock.now(), model=model, registry=heald.registry))
        assert reading.metric == "artifact_ok" and reading.value == 0.0
        assert words in str(reading.evidence["reason"]), reading.evidence
        path = heald.settings.artifacts / version.artifact
        assert (path.read_bytes() if path.exists() else None) == bad
        assert [v.number for v in heald.store.list_versions("m")] == [1]
    finally:
        heald.close()


def test_a_healthy_champion_reads_ok_and_is_loaded_once(onboarded: tuple[Heald, Version]) -> None:
    """The control case: artifact_ok is 1, and checking loadability every tick costs one load per version."""
    first, _ = onboarded
    heald = build(first.settings, clock=ManualClock(), pool="inline")
    try:
        model = heald.store.get_model("m")
        for _ in range(3):
            [reading] = ArtifactSensor().sense(
                SenseContext(now=heald.clock.now(), model=model, registry=heald.registry)
            )
            assert reading.value == 1.0
        assert heald.registry.held() == [("m", 1)]
    finally:
        heald.close()
