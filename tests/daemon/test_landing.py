"""The producers' side of the landing folder: what `healctl submit` creates, the service can take in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.landing import submit

SERVICE_UID = 61234  # stands for systemd's dynamic user, which owns the state folder


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file another owner")
def test_root_submitting_before_the_daemon_made_the_folder_leaves_it_to_the_service(tmp_path: Path) -> None:
    """Run as root into a state folder the service owns, before the daemon created `landing/<model>/`, submit
    creates the missing folders and the batch owned by the service (root's folder once kept the batch out)."""
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, SERVICE_UID, SERVICE_UID)
    source = tmp_path / "monday.csv"
    source.write_text("a,y\n1,0\n", encoding="utf-8")
    batch = submit(source, state / "landing" / "churn")
    for path in (state / "landing", state / "landing" / "churn", batch):
        assert (path.stat().st_uid, path.stat().st_gid) == (SERVICE_UID, SERVICE_UID), path
    assert batch.read_bytes() == source.read_bytes()


def test_submit_into_an_existing_folder_keeps_its_owner(tmp_path: Path) -> None:
    """A folder that exists is used as it is: the batch lands whole, under a new name, with the folder's owner."""
    folder = tmp_path / "landing" / "churn"
    folder.mkdir(parents=True)
    source = tmp_path / "monday.csv"
    source.write_text("a,y\n1,0\n", encoding="utf-8")
    batch = submit(source, folder)
    assert batch.parent == folder and batch.name.startswith("monday-")
    assert batch.stat().st_uid == folder.stat().st_uid
    assert [p.name for p in folder.iterdir()] == [batch.name]
