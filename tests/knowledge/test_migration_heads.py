"""Opening a store that is already at the newest schema skips alembic, and the shortcut agrees with alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from knowledge.sql import engine as engines


def test_heads_read_from_the_files_are_alembics_heads() -> None:
    """The heads found by reading the migration files are exactly those alembic computes from them."""
    cfg = Config()
    cfg.set_main_option("script_location", str(engines.MIGRATIONS))
    assert engines._heads() == frozenset(ScriptDirectory.from_config(cfg).get_heads())


def test_a_store_at_head_opens_without_importing_alembic(tmp_path: Path) -> None:
    """The first open migrates (alembic runs); a second process opening the same store at head never imports
    alembic, and reads its data."""
    url = f"sqlite:///{tmp_path / 'heald.db'}"
    probe = (
        "import sys\n"
        "from knowledge.sql.store import SqlKnowledgeStore\n"
        f"store = SqlKnowledgeStore.open({url!r})\n"
        "print(len(store.list_models()), 'alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    assert first.stdout.split() == ["0", "True"]
    assert again.stdout.split() == ["0", "False"]
