"""Vendor apt repositories configured with a ``signed-by`` keyring that exists."""

from __future__ import annotations

import pytest

from builder.verify import probe

DISTRO_HOSTS = ("deb.debian.org", "security.debian.org", "archive.ubuntu.com", "security.ubuntu.com",
                "azure.archive.ubuntu.com", "ports.ubuntu.com")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "feed" in metafunc.fixturenames:
        from builder.verify.suites.conftest import load

        feeds = load(metafunc.config)["apt_feeds"]
        metafunc.parametrize("feed", sorted(feeds.items()), ids=sorted(feeds))


@pytest.fixture(scope="module")
def sources(host):
    return probe.apt_sources(host)


def third_party(source: probe.Source) -> bool:
    return not any(host_name in uri for uri in source.uris for host_name in DISTRO_HOSTS)


def test_signed_by(sources, host, check):
    """Every non-distribution source names its keyring (no keys trusted globally) and the keyring exists."""
    problems = []
    for source in filter(third_party, sources):
        keyring = source.signed_by
        if not keyring:
            problems.append(f"{source.file}: {' '.join(source.uris)} has no signed-by")
        elif keyring.startswith("/") and host.run(f"test -s '{keyring}'").rc != 0:
            problems.append(f"{source.file}: keyring {keyring} missing or empty")
    check.that(not problems, "every vendor source has signed-by=<existing keyring>", problems or "all signed")


def test_feed(feed, sources, check):
    """Each vendor feed the image's packages come from is configured, signed (found by its URL path, which
    upstream, mirrors and the stand-in feed share)."""
    feed, marker = feed
    matching = [s for s in sources if any(marker in uri for uri in s.uris)]
    found = [f"{s.file} signed-by={s.signed_by}" for s in matching] or f"no source for the {feed} feed"
    check.that(bool(matching) and all(s.signed_by for s in matching), f"a {feed} source with signed-by", found)
