"""Who is asking: the client address behind trusted proxies, and the key limits are kept under."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from api.clients import client_address, client_key, remembered_peer_key


@pytest.fixture
def trust(configure):
    """Set TRUSTED_PROXIES for one test."""

    def apply(spec: str) -> None:
        configure(trusted_proxies=spec)

    return apply


@pytest.fixture(autouse=True)
def no_proxies_trusted(trust):
    trust("")


def request_from(address: str, forwarded_for: str | None = None, user=None):
    extra = {"REMOTE_ADDR": address}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    request = RequestFactory().get("/api/operations", **extra)
    request.user = user or AnonymousUser()
    return request


def test_the_client_is_remote_addr_when_no_proxy_is_trusted():
    request = request_from("203.0.113.9", forwarded_for="198.51.100.1")

    assert client_address(request) == "203.0.113.9"
    assert client_key(request) == "ip:203.0.113.9"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(trust):
    trust("10.0.0.0/8")
    # The client wrote the leftmost hop itself; our proxy appended the address it saw.
    request = request_from("10.0.0.2", forwarded_for="198.51.100.66, 203.0.113.7")

    assert client_address(request) == "203.0.113.7"
    assert client_key(request) == "ip:203.0.113.7"


def test_trusted_hops_in_x_forwarded_for_are_skipped(trust):
    trust("10.0.0.0/8, 192.168.1.1")
    request = request_from(
        "10.0.0.2", forwarded_for="198.51.100.66, 203.0.113.7, 192.168.1.1, 10.1.2.3"
    )

    assert client_address(request) == "203.0.113.7"


def test_an_untrusted_peer_cannot_name_a_client_in_x_forwarded_for(trust):
    trust("10.0.0.0/8")
    request = request_from("203.0.113.9", forwarded_for="198.51.100.1")

    assert client_address(request) == "203.0.113.9"


def test_a_trusted_proxy_without_a_usable_hop_is_itself_the_client(trust):
    trust("10.0.0.0/8")

    assert client_address(request_from("10.0.0.2")) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2", forwarded_for="10.0.0.9")) == "10.0.0.2"


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        ("203.0.113.7:1001", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("198.51.100.66, 203.0.113.7:1001, 10.1.2.3:8080", "203.0.113.7"),
    ],
)
def test_a_forwarded_address_with_a_port_is_the_address_without_it(trust, forwarded, address):
    trust("10.0.0.0/8")

    request = request_from("10.0.0.2", forwarded_for=forwarded)

    assert client_address(request) == address


def test_clients_on_different_ports_of_one_address_share_a_key(trust):
    trust("10.0.0.0/8")

    keys = {
        client_key(request_from("10.0.0.2", forwarded_for=hop))
        for hop in ("203.0.113.7:1001", "203.0.113.7:2002", "203.0.113.7")
    }

    assert keys == {"ip:203.0.113.7"}


@pytest.mark.parametrize("forwarded", ["not-an-ip", "unknown", "203.0.113.7:http", "[::1"])
def test_an_unparseable_forwarded_value_is_never_the_proxys_own_key(trust, forwarded):
    trust("10.0.0.0/8")
    proxy_key = client_key(request_from("10.0.0.2"))

    key = client_key(request_from("10.0.0.2", forwarded_for=forwarded))

    assert key != proxy_key
    assert key.startswith("ip:unparseable:")
    assert forwarded not in key  # a digest: the raw value never reaches the cache key
    assert key == client_key(request_from("10.0.0.3", forwarded_for=forwarded))


def test_different_unparseable_values_get_different_keys(trust):
    trust("10.0.0.0/8")

    first = client_key(request_from("10.0.0.2", forwarded_for="unknown"))
    second = client_key(request_from("10.0.0.2", forwarded_for="_hidden"))

    assert first != second


def test_ipv6_clients_in_one_slash_64_share_a_key():
    first = client_key(request_from("2001:db8:1:2::1"))
    second = client_key(request_from("2001:db8:1:2:ffff:ffff:ffff:fffe"))
    neighbour = client_key(request_from("2001:db8:1:3::1"))

    assert first == second == "ip:2001:db8:1:2::/64"
    assert neighbour == "ip:2001:db8:1:3::/64"


def test_an_ipv4_mapped_ipv6_address_is_keyed_as_its_ipv4_address():
    assert client_key(request_from("::ffff:192.0.2.5")) == "ip:192.0.2.5"
    assert client_key(request_from("::ffff:192.0.2.5")) == client_key(request_from("192.0.2.5"))


def test_a_nat64_client_is_keyed_by_its_embedded_ipv4_address():
    assert client_key(request_from("64:ff9b::c000:205")) == "ip:192.0.2.5"
    assert client_key(request_from("64:ff9b::203.0.113.7")) == "ip:203.0.113.7"
    # Two IPv4 hosts behind one NAT64 gateway share its /64 but not a key.
    assert client_key(request_from("64:ff9b::198.51.100.1")) != client_key(
        request_from("64:ff9b::198.51.100.2")
    )


def test_a_nat64_client_behind_a_trusted_proxy_is_keyed_by_its_ipv4_address(trust):
    trust("10.0.0.0/8")

    request = request_from("10.0.0.2", forwarded_for="[64:ff9b::192.0.2.5]:443")

    assert client_key(request) == "ip:192.0.2.5"


@pytest.mark.django_db
def test_a_signed_in_user_is_keyed_by_user_wherever_they_connect_from(django_user_model):
    user = django_user_model.objects.create_user("ada")

    keys = {client_key(request_from(address, user=user)) for address in ("192.0.2.1", "::1")}

    assert keys == {f"user:{user.pk}"}


def test_a_remembered_key_follows_a_change_of_trusted_proxies(trust):
    forwarded = "198.51.100.66, 203.0.113.7"
    trust("10.0.0.0/8")
    assert client_key(request_from("10.0.0.2", forwarded)) == "ip:203.0.113.7"

    trust("")

    assert client_key(request_from("10.0.0.2", forwarded)) == "ip:10.0.0.2"


def test_a_long_forwarded_header_is_keyed_alike_but_never_remembered(trust):
    trust("10.0.0.0/8")
    padding = ", ".join(f"10.0.{n // 250}.{n % 250}" for n in range(100))
    remembered = remembered_peer_key.cache_info().currsize

    key = client_key(request_from("10.0.0.2", f"203.0.113.7, {padding}"))

    assert key == "ip:203.0.113.7"
    assert remembered_peer_key.cache_info().currsize == remembered
