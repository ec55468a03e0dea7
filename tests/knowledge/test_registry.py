"""The model registry: atomic artifacts, verified loads, trusted types, and safe promotion and rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import FunctionTransformer

from knowledge.artifacts import ArtifactStore, write_atomic
from knowledge.errors import ActionError, ArtifactError
from knowledge.registry import ModelRegistry
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import Alias, ModelRecord, Task
from pipeline.train import train
from tests.conftest import table

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    store = SqlKnowledgeStore.open(f"sqlite:///{tmp_path / 'k.db'}")
    store.add_model(
        ModelRecord(name="m", task=Task.CLASSIFICATION, target="y", features=["a", "b", "c"], created_at=T0)
    )
    return ModelRegistry(store, ArtifactStore(tmp_path / "artifacts"))


def register(registry: ModelRegistry, seed: int = 0) -> int:
    frame = table(200, seed=seed)
    trained = train(frame, target="y", task="classification")
    version = registry.register(
        "m", trained.estimator, at=T0, reference=frame[["a", "b", "c"]], metrics=trained.metrics
    )
    return version.number


def fresh(registry: ModelRegistry) -> ModelRegistry:
    """A registry with an empty cache, as after a restart."""
    return ModelRegistry(registry.store, registry.artifacts)


def test_registered_version_round_trips_with_identical_predictions(registry: ModelRegistry) -> None:
    """A saved pipeline loads (after its checksum matches) and predicts exactly as before."""
    frame = table(200)
    trained = train(frame, target="y", task="classification")
    version = registry.register("m", trained.estimator, at=T0, reference=frame[["a", "b", "c"]])
    loaded = fresh(registry).load(version)
    assert (loaded.predict(frame) == trained.estimator.predict(frame)).all()
    assert len(version.sha256) == 64
    assert fresh(registry).reference(version).shape == (200, 3)


def test_a_changed_byte_refuses_to_load(registry: ModelRegistry) -> None:
    """One flipped byte makes the load fail with the file named; nothing is deserialised."""
    number = register(registry)
    version = registry.version("m", number)
    path = registry.artifacts.root / version.artifact
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="fails its checksum"):
        fresh(registry).load(version)


def test_a_missing_file_is_named(registry: ModelRegistry) -> None:
    """A deleted artifact gives an error naming the file."""
    version = registry.version("m", register(registry))
    (registry.artifacts.root / version.artifact).unlink()
    with pytest.raises(ArtifactError, match="is missing"):
        fresh(registry).verify(version)


def test_untrusted_types_are_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    """A file whose checksum matches but that asks for a type outside the trusted list is never loaded."""
    artifacts = ArtifactStore(tmp_path)
    sha = artifacts.save_model("evil.skops", FunctionTransformer(func=print))
    with pytest.raises(ArtifactError, match="untrusted types"):
        artifacts.load_model("evil.skops", sha)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    """After a write only the final file exists, with the new content."""
    target = tmp_path / "a" / "file.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_rollback_goes_to_the_newest_stable_version_that_verifies(registry: ModelRegistry) -> None:
    """Rollback skips a stable version whose file is damaged and marks the version it left."""
    v1, v2, v3 = (register(registry, seed=s) for s in (1, 2, 3))
    registry.mark_stable("m", v1, at=T0, reason="t")
    registry.mark_stable("m", v2, at=T0, reason="t")
    registry.promote("m", v3, at=T0, actor="heald", reason="t")
    (registry.artifacts.root / registry.version("m", v2).artifact).write_bytes(b"broken")
    move = registry.rollback("m", at=T0, actor="heald", reason="test")
    assert (move.from_version, move.to_version) == (v3, v1)
    assert registry.version("m", v3).rolled_back_at is not None


def test_a_rolled_back_version_needs_a_person_to_come_back(registry: ModelRegistry) -> None:
    """heald may not promote a version that was rolled back; an operator may."""
    v1, v2 = register(registry, 1), register(registry, 2)
    registry.mark_stable("m", v1, at=T0, reason="t")
    registry.promote("m", v2, at=T0, actor="heald", reason="t")
    registry.rollback("m", at=T0, actor="heald", reason="t")
    with pytest.raises(ActionError, match="only an operator"):
        registry.promote("m", v2, at=T0, actor="heald", reason="again")
    registry.promote("m", v2, at=T0, actor="healctl", reason="operator knows best")
    assert registry.store.alias("m", Alias.CHAMPION) == v2


def test_rollback_without_a_target_is_a_clear_error(registry: ModelRegistry) -> None:
    """With no other stable version there is nothing to roll back to, and the champion stays."""
    v1 = register(registry)
    registry.promote("m", v1, at=T0, actor="heald", reason="t")
    with pytest.raises(ActionError, match="no stable version"):
        registry.rollback("m", at=T0, actor="heald", reason="t")
    assert registry.store.alias("m", Alias.CHAMPION) == v1


def test_check_reports_a_sound_registry_and_a_broken_one(registry: ModelRegistry) -> None:
    """check() is empty for a healthy registry and names the problem for a damaged champion."""
    v1 = register(registry)
    registry.promote("m", v1, at=T0, actor="heald", reason="t")
    assert registry.check("m") == []
    (registry.artifacts.root / registry.version("m", v1).artifact).write_bytes(b"x")
    assert any("checksum" in p for p in registry.check("m"))


def test_forest_alone_round_trips(tmp_path: Path) -> None:
    """A bare forest (no preprocessing) also needs only the trusted types."""
    artifacts = ArtifactStore(tmp_path)
    frame = table(100)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(frame[["a", "b"]], frame["y"])
    sha = artifacts.save_model("f.skops", forest)
    loaded = artifacts.load_model("f.skops", sha)
    assert (loaded.predict(frame[["a", "b"]]) == forest.predict(frame[["a", "b"]])).all()
