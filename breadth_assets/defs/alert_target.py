"""Where breadth signals are sent: one or more apprise URLs (Telegram, Slack, Discord, e-mail, a
webhook) from the environment, never shown."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

ALERT_URLS_VARIABLE = "BREADTH_ALERT_URLS"


@contextmanager
def _quiet() -> Iterator[None]:
    """apprise logs the URLs it fails to reach, tokens included: nothing of it is logged."""
    logger = logging.getLogger("apprise")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


class AlertTarget(dg.ConfigurableResource):
    """Sends a message to every URL of `urls` (space or comma separated apprise URLs)."""

    urls: str = Field(
        default="",
        description="apprise URLs, from $BREADTH_ALERT_URLS: a secret, never logged",
    )
    first_retry_seconds: int = Field(
        default=60,
        description="The wait after a failed send; it doubles with each failure, up to an hour",
    )

    def retry_after(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed send of a message."""
        return min(self.first_retry_seconds * 2 ** max(attempts - 1, 0), 3600)

    def configured(self) -> bool:
        return bool(self.urls.strip())

    def send(self, title: str, body: str) -> bool:
        """True when every target took the message; never raises."""
        import apprise

        with _quiet():
            try:
                notifier = apprise.Apprise()
                for url in self.urls.replace(",", " ").split():
                    if not notifier.add(url):
                        return False
                return bool(notifier.notify(title=title, body=body))
            except Exception:
                return False
