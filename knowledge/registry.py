"""The model registry: versions, their verified artifacts, and the aliases that say which one serves.

It keeps the registry's promises: an artifact is on disk (fsynced and renamed) before the row naming it
commits; a promotion moves the alias, writes its history and the action journal in one transaction; a
load checks the sha256 first; a version that was rolled back is never promoted again without a person.

Loaded estimators are cached by (model, version, sha256), but only those serving and rollback need (the
versions an alias names) plus the one used last: a daemon that retrains for years holds a few models in
memory per model, not every version it ever loaded.

Every alias move carries the caller's lease ``epoch`` down to the store, which refuses it when stale.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from knowledge.artifacts import ArtifactStore
from knowledge.errors import ActionError, ArtifactError, NotFoundError
from knowledge.sql.store import SqlKnowledgeStore
from knowledge.values import JSON, Alias, AliasMove, Version

if TYPE_CHECKING:
    import pandas as pd  # annotations only: healctl's read-only commands open the registry without pandas

OPERATOR_ACTORS = ("operator", "healctl")


class ModelRegistry:
    """Versions and aliases of every model, over the knowledge store and the artifact folder."""

    def __init__(self, store: SqlKnowledgeStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts
        self._cache: dict[tuple[str, int, str], Any] = {}
        self._cache_lock = threading.Lock()  # the API's threads and the loop share the cache

    def register(
        self,
        model: str,
        estimator: Any,
        *,
        at: datetime,
        reference: pd.DataFrame,
        params: JSON | None = None,
        metrics: JSON | None = None,
        data_fingerprint: str = "",
        profile: JSON | None = None,
        health: str = "healthy",
        created_by: str = "operator",
        dumped: bytes | None = None,
    ) -> Version:
        """Store a new version: artifact and reference sample first, then the row that names them.

        ``dumped`` is the estimator's skops bytes when a worker process made them already."""
        number = self.store.next_version_number(model)
        artifact = f"{model}/v{number:04d}.skops"
        sha = self.artifacts.save_model(artifact, estimator, dumped)
        ref_path = f"{model}/v{number:04d}.reference.parquet"
        self.artifacts.save_frame(ref_path, reference)
        version = Version(
            model=model,
            number=number,
            artifact=artifact,
            sha256=sha,
            params=params or {},
            metrics=metrics or {},
            data_fingerprint=data_fingerprint,
            reference=ref_path,
            profile=profile or {},
            health=health,
            created_by=created_by,
            created_at=at,
        )
        registered = self.store.add_version(version)
        self._remember((model, number, sha), estimator)
        return registered

    def version(self, model: str, number: int) -> Version:
        return self.store.get_version(model, number)

    def champion(self, model: str) -> Version | None:
        number = self.store.alias(model, Alias.CHAMPION)
        return None if number is None else self.store.get_version(model, number)

    def load(self, version: Version) -> Any:
        """The estimator of ``version``, verified against its sha256 (cached by checksum afterwards)."""
        key = (version.model, version.number, version.sha256)
        if key in self._cache:
            return self._cache[key]
        estimator = self.artifacts.load_model(version.artifact, version.sha256)
        self._remember(key, estimator)  # pruning on a miss only: a served request costs no extra query
        return estimator

    def held(self) -> list[tuple[str, int]]:
        """The (model, version) pairs whose estimators are held in memory (for tests and the memory bench)."""
        with self._cache_lock:
            return sorted((model, number) for model, number, _ in self._cache)

    def _remember(self, key: tuple[str, int, str], estimator: Any) -> None:
        """Cache ``key`` and drop the model's other versions that no alias names."""
        model = key[0]
        keep = set(self.store.aliases(model).values()) | {key[1]}
        with self._cache_lock:
            for old in [k for k in self._cache if k[0] == model and k[1] not in keep]:
                del self._cache[old]
            self._cache[key] = estimator

    def verify(self, version: Version) -> None:
        """Raise ``ArtifactError`` unless the file exists and matches its sha256 right now."""
        self.artifacts.read_verified(version.artifact, version.sha256)

    def verifies(self, version: Version) -> bool:
        try:
            self.verify(version)
        except ArtifactError:
            return False
        return True

    def in_memory_only(self, model: str, number: int) -> bool:
        """Whether version ``number`` serves only from its in-memory copy: loaded once, its file no longer verifies.

        Serving goes on, but a restart would leave no model that loads: status, /readyz and a metric show it.
        A version never loaded is not read at all (status pages call this for every model).
        """
        cached = [key for key in self._cache if key[:2] == (model, number)]
        if not cached:
            return False
        version = self.store.get_version(model, number)
        return (model, number, version.sha256) in cached and not self.verifies(version)

    def reference(self, version: Version) -> pd.DataFrame:
        return self.artifacts.load_frame(version.reference)

    def promote(
        self,
        model: str,
        number: int,
        *,
        at: datetime,
        actor: str,
        reason: str,
        action_id: int | None = None,
        epoch: int | None = None,
    ) -> AliasMove:
        """Make ``number`` the champion, if it verifies and was never rolled back (unless a person says so)."""
        version = self.store.get_version(model, number)
        if version.rolled_back_at is not None and actor not in OPERATOR_ACTORS:
            raise ActionError(f"{model} v{number} was rolled back; only an operator may promote it again")
        self.verify(version)
        current = self.store.alias(model, Alias.CHAMPION)
        return self.store.move_alias(
            model,
            Alias.CHAMPION,
            number,
            at=at,
            actor=actor,
            reason=reason,
            action_id=action_id,
            expect_from=current,
            epoch=epoch,
        )

    def rollback_targets(self, model: str) -> Iterator[Version]:
        """Stable versions other than the champion, never rolled back, whose files verify; newest first."""
        champion = self.store.alias(model, Alias.CHAMPION)
        for version in reversed(self.store.list_versions(model)):
            if version.number == champion or version.stable_at is None or version.rolled_back_at:
                continue
            if self.verifies(version):
                yield version

    def rollback(
        self,
        model: str,
        *,
        at: datetime,
        actor: str,
        reason: str,
        action_id: int | None = None,
        to: int | None = None,
        epoch: int | None = None,
    ) -> AliasMove:
        """Point the champion at ``to`` (default: the newest stable version that verifies); mark the old one
        rolled back, so it is never promoted again without a person.

        ``to`` undoes a harmful promotion: the version it replaced need not be stable yet, but it must verify
        and never have been rolled back itself.
        """
        target = next(self.rollback_targets(model), None) if to is None else self.store.get_version(model, to)
        if target is None:
            raise ActionError(f"model {model!r} has no stable version that verifies to roll back to")
        if to is not None:
            if target.rolled_back_at is not None:
                raise ActionError(f"{model} v{to} was rolled back before; only an operator may bring it back")
            self.verify(target)
        current = self.store.alias(model, Alias.CHAMPION)
        return self.store.move_alias(
            model,
            Alias.CHAMPION,
            target.number,
            at=at,
            actor=actor,
            reason=reason,
            action_id=action_id,
            expect_from=current,
            rolled_back=current,
            epoch=epoch,
        )

    def mark_stable(self, model: str, number: int, *, at: datetime, reason: str, epoch: int | None = None) -> AliasMove:
        """Record that a version served healthy long enough to be a rollback target."""
        self.store.mark_stable(model, number, at)
        return self.store.move_alias(model, Alias.STABLE, number, at=at, actor="heald", reason=reason, epoch=epoch)

    def check(self, model: str) -> list[str]:
        """Problems with a model's registry (empty when sound): used after crashes and by tests."""
        problems: list[str] = []
        try:
            champion = self.champion(model)
        except NotFoundError as exc:
            return [str(exc)]
        if champion is None:
            return [f"model {model!r} has no champion"]
        try:
            # Read from disk, not the cache: the check is about what a restarted daemon would load.
            self.artifacts.load_model(champion.artifact, champion.sha256)
        except ArtifactError as exc:
            problems.append(str(exc))
        history = self.store.alias_history(model, Alias.CHAMPION)
        if not history or history[-1].to_version != champion.number:
            problems.append(f"champion alias history of {model!r} does not end at v{champion.number}")
        for before, after in itertools.pairwise(history):
            if after.from_version != before.to_version:
                problems.append(f"champion history of {model!r} skips from v{before.to_version}")
        return problems
