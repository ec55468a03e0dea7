"""Sources (Monitor's input): where a model's batches come from, the landing folder, a database query or an API.

A pulled source (``sql``, ``http``) writes each page of new rows into the model's landing folder, where the
intake takes it like a dropped file (validation, quarantine with a reason, drift, labels); the page's
watermark advances in the transaction that records its batch (``sensors.sources.puller``).
"""

from sensors.sources.base import Page, Source, Stream

__all__ = ["Page", "Source", "Stream"]
