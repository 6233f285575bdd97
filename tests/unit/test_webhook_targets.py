"""Which URLs a webhook may be sent to."""

from __future__ import annotations

import pytest

from services.core.webhooks.targets import TargetRefused, check_resolved, check_url


@pytest.mark.parametrize("url", ["https://hooks.example.org/twofa", "http://93.184.216.34:8443/x",
                                 "https://[2a00:1450::1]/x"])
def test_public_http_targets_are_accepted(url):
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:9/x", "http://api.localhost/x",
                                 "http://10.0.0.1/x", "http://172.16.5.4/x", "http://192.168.1.1/x",
                                 "http://169.254.169.254/x", "http://[::1]/x", "http://[fe80::1]/x",
                                 "http://[fd00::1]/x", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x",
                                 "http://224.0.0.1/x", "http://100.64.0.1/x"])
def test_private_loopback_and_link_local_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "https://u:p@example.org/x",
                                 "https:///nohost", "http://example.org:99999/x", "javascript:alert(1)"])
def test_malformed_targets_are_refused_even_when_private_ones_are_allowed(url):
    with pytest.raises(TargetRefused):
        check_url(url, allow_private=True)


def test_a_name_is_checked_on_every_address_it_resolves_to():
    assert "private, loopback" in (check_resolved("http://localhost:9/x", allow_private=False) or "")
    assert check_resolved("http://localhost:9/x", allow_private=True) is None
    assert check_resolved("http://93.184.216.34/x", allow_private=False) is None
