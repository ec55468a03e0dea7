"""Ingest: reading users' tabular files (CSV or Parquet) into frames, with errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import DataError


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, or raise ``DataError`` naming the file and the problem."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"{path.name}: cannot be parsed: {str(exc).strip()}") from None


def read_tables(paths: list[str]) -> pd.DataFrame:
    """Several files read and concatenated in order."""
    frames = [read_table(Path(p)) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
