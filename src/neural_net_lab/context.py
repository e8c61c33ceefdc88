"""The project's Kedro context: its ``catalog`` is built with the project's catalog class.

Kedro builds the catalog of ``kedro run`` with ``settings.DATA_CATALOG_CLASS`` but the
context's own ``catalog`` (``kedro ipython``, ``kedro jupyter``, notebooks, ``kedro catalog``)
with a plain ``DataCatalog``, so a save from a notebook would write in place while a run reads
the same file (docs/concurrency.md).
"""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.project import settings
from kedro.io import CatalogProtocol


class ProjectContext(KedroContext):
    @property
    def catalog(self) -> CatalogProtocol:
        return self._get_catalog(catalog_class=settings.DATA_CATALOG_CLASS)
