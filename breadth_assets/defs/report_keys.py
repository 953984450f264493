"""The metadata keys and log lines that the assets write and `breadth-assets run` reads back:
named once, so the two never drift apart."""

from __future__ import annotations

CLOSURES_FOUND = "closures_found"
"""A breadth run's count of asked days on which no ticker had a bar (closures in the data)."""
CLOSURES_FOUND_DAYS = "closures_found_days"
NO_BARS_AFTER = "no_bars_after"
"""The data's last day, when asked days come after it."""
ROWS_REJECTED = "rows_rejected"
"""A ticker partition's rows its source refused."""
CREDENTIALS_REFUSED = "credentials_refused"
"""On a failed ticker batch: the source refused its credentials, so no later batch can succeed."""
BREADTH_PROGRESS = "breadth: counted "
"""The start of the breadth step's log line per chunk of days."""
ACTIONS_APPLIED = "actions_applied"
"""How many corporate actions a ticker batch applied that its tickers' stored rows lacked."""
ACTIONS_APPLIED_LIST = "actions_applied_list"
"""Those actions, as `ABC split 1:5 on 2019-06-03, ...`."""
