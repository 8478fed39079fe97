"""Keep library noise off the CLI's terminal (issue 16)."""

from __future__ import annotations

import logging
import sys
import warnings


def quiet_libraries() -> None:
    """For the CLI: library log records go nowhere and library ``warnings`` are not shown unless asked for with
    ``-W``/``PYTHONWARNINGS``.

    azure-identity logs each failed credential of DefaultAzureCredential's chain, and the whole chain's failure,
    at WARNING on its ``azure.identity`` loggers (azure-identity 1.27.0: azure/identity/_credentials/chained.py,
    azure/identity/_internal/decorators.py); with no handler configured Python's last-resort handler would print
    them on stderr. A handler on the root logger, even one that drops everything, turns that off."""
    logging.getLogger().addHandler(logging.NullHandler())
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
