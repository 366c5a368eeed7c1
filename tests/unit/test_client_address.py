"""ClientAddress: whom a per-address limit charges when a balancer stands in front."""

from __future__ import annotations

from tornado.httputil import HTTPHeaders, HTTPServerRequest

from agenthub.api.security import ClientAddress


def _request(peer: str, *forwarded: str) -> HTTPServerRequest:
    headers = HTTPHeaders()
    for value in forwarded:
        headers.add("X-Forwarded-For", value)
    request = HTTPServerRequest(method="GET", uri="/", headers=headers)
    request.remote_ip = peer
    return request


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    assert ClientAddress(()).of(_request("10.0.0.7", "1.2.3.4")) == "10.0.0.7"


def test_an_untrusted_peer_cannot_choose_its_address():
    policy = ClientAddress(("127.0.0.1",))
    assert policy.of(_request("10.0.0.7", "1.2.3.4")) == "10.0.0.7"


def test_behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client():
    policy = ClientAddress(("127.0.0.1", "10.0.0.0/24"))
    # The client forged a first entry; HAProxy (10.0.0.5) appended the real one.
    assert policy.of(_request("127.0.0.1", "6.6.6.6, 192.0.2.10, 10.0.0.5")) == "192.0.2.10"
    assert policy.of(_request("127.0.0.1", "6.6.6.6", "192.0.2.11")) == "192.0.2.11"
    # No header, or only our own proxies in it: the peer.
    assert policy.of(_request("127.0.0.1")) == "127.0.0.1"
    assert policy.of(_request("127.0.0.1", "10.0.0.5")) == "127.0.0.1"
    # Something that is not an address beyond our proxies: not keyed on.
    assert policy.of(_request("127.0.0.1", "not-an-ip")) == "127.0.0.1"
    assert policy.of(_request("127.0.0.1", "2001:db8::1")) == "2001:db8::1"
