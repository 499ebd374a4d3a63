from itertools import pairwise

import pytest

from seekgate.guards.pii import PII_TYPES, NameDetector, find_pii
from seekgate.guards.types import Action, Finding, Kind


def _found(text: str, **kwargs: bool) -> list[tuple[str, str]]:
    return [(text[f.start : f.end], f.type) for f in find_pii(text, **kwargs)]


def _luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it pass Luhn."""
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    """An IBAN with correct mod-97 check digits for a made-up account."""
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def _spaced(value: str, sep: str = " ") -> str:
    return sep.join(value[i : i + 4] for i in range(0, len(value), 4))


def _amex_grouped(card: str) -> str:
    return f"{card[:4]} {card[4:10]} {card[10:]}"


# --- email -----------------------------------------------------------------------------------


def test_an_email_is_found_with_its_exact_span():
    text = "Write to maria.gonzalez+ops@mail.example.com, thanks."
    assert _found(text) == [("maria.gonzalez+ops@mail.example.com", "email")]


def test_file_names_and_package_pins_with_at_signs_are_not_emails():
    assert _found("icon@2x.png, lodash@4.17.21, @types/node, name@sha256:abc") == []


def test_a_git_remote_address_stays_an_email():
    assert _found("git@github.example.com:org/repo.git") == [("git@github.example.com", "email")]


# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "1-800-555-0199",
        "+1 (415) 555-0132",
        "+1 415 555 0132",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+49 30 1234567",
        "+33 1 23 45 67 89",
        "+14155550132",
        "020 7946 0958",
        "030 1234567",
        "01 23 45 67 89",
    ],
)
def test_a_phone_number_is_found_with_its_exact_span(phone):
    text = f"Call {phone}, please."
    assert _found(text) == [(phone, "phone")]


@pytest.mark.parametrize(
    "text",
    [
        "released 2024-01-15 at 10:30:00, see 15/01/2024",
        "pip install foo==1.2.3 && node v20.11.1",
        "ts=1700000000123 id=123456789012 order 4155550132",
        "listening on localhost:8080 and ports 3000-3010",
        "hex 0x1a2b3c4d and #ff5733",
        "2023-10-12 14:23:45,123 INFO started pid=48213",
        "matrix = [[100, 200], [300, 400]] and 212 555 0123 4567 8901",
        "ISBN 978-3-16-148410-0",
    ],
)
def test_dates_versions_ids_ports_and_hex_are_not_phones(text):
    assert _found(text) == []


# --- credit cards ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        _luhn_complete("411111111111111"),  # Visa test range, 16 digits
        _spaced(_luhn_complete("555555555555444")),
        _spaced(_luhn_complete("601100000000000"), "-"),
        _amex_grouped(_luhn_complete("37828224631000")),
    ],
)
def test_a_card_number_with_a_valid_check_digit_is_found(card):
    text = f"card: {card} exp 12/30"
    assert _found(text) == [(card, "credit_card")]


def test_a_card_number_with_a_wrong_check_digit_is_not_found():
    good = _luhn_complete("411111111111111")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert _found(f"card {bad}") == []


def test_a_luhn_valid_number_without_a_card_prefix_or_with_odd_grouping_is_not_found():
    assert _found(f"id {_luhn_complete('987654321098765')}") == []
    card = _luhn_complete("411111111111111")
    assert _found(f"card {card[:3]} {card[3:9]}-{card[9:]}") == []


# --- IBAN ------------------------------------------------------------------------------------


def test_an_iban_is_found_with_or_without_spaces():
    iban = _iban("DE", "370400440532013000")
    assert len(iban) == 22
    assert _found(f"IBAN {iban}.") == [(iban, "iban")]
    assert _found(f"IBAN {_spaced(iban)}.") == [(_spaced(iban), "iban")]
    gb = _iban("GB", "WEST12345698765432")
    assert _found(f"pay to {gb}") == [(gb, "iban")]


def test_an_iban_with_wrong_check_digits_or_length_is_not_found():
    iban = _iban("DE", "370400440532013000")
    wrong = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
    assert _found(f"IBAN {wrong}") == []
    assert _found(f"IBAN {_iban('DE', '3704004405320130001')}") == []


# --- IP addresses ----------------------------------------------------------------------------


def test_public_and_documentation_addresses_are_found():
    text = "hosts 203.0.113.5, 8.8.8.8:53, http://198.51.100.7/x, root@192.0.2.10 and [2001:db8::1]:443"
    assert _found(text) == [
        ("203.0.113.5", "ip_address"),
        ("8.8.8.8", "ip_address"),
        ("198.51.100.7", "ip_address"),
        ("192.0.2.10", "ip_address"),
        ("2001:db8::1", "ip_address"),
    ]


def test_private_loopback_and_link_local_addresses_need_private_ips():
    text = "10.0.0.5 192.168.1.1 127.0.0.1 169.254.1.1 0.0.0.0 ::1 fe80::1 fd00::2"
    assert _found(text) == []
    assert [v for v, _ in _found(text, private_ips=True)] == text.split()


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4",
        "v1.2.3.4",
        "foo==1.2.3.4",
        "python 3.11.4.1",
        "OID 2.5.4.3",
        "1.3.6.1.4.1.311",
        "netmask 255.255.255.0",
        "std::vector<int> a::b",
        "MAC 00:1a:2b:3c:4d:5e at 10:30:00",
        "999.1.1.1",
    ],
)
def test_versions_oids_and_non_addresses_are_not_ips(text):
    assert _found(text) == []


# --- SSN -------------------------------------------------------------------------------------


def test_a_us_ssn_is_found_only_with_valid_area_group_and_serial():
    ssn = "-".join(("123", "45", "6789"))  # noqa: FLY002 -- assembled, so no file holds an SSN-shaped literal
    assert _found(f"SSN {ssn}.") == [(ssn, "us_ssn")]
    assert _found("000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000") == []


# --- everything together -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "id = '550e8400-e29b-41d4-a716-446655440000'",
        "created_at: 2024-03-01T12:34:56.789Z (1709296496)",
        "semver 10.20.30 and 1.0.0-rc.1+build.123",
        "color: #1a2b3c; ptr = 0x7ffee4b3c8a0",
        "for i in range(1000, 2000, 3000): total += i * 1234567",
    ],
)
def test_code_hard_negatives_find_nothing(text):
    assert _found(text) == []


def test_an_ibans_digits_are_not_also_reported_as_phone_or_card():
    iban = _spaced(_iban("FR", "20041010050500013M02606"))
    assert _found(f"IBAN: {iban}") == [(iban, "iban")]


def test_findings_are_sorted_flags_of_kind_pii_and_types_are_declared():
    text = f"a@example.com; 203.0.113.9; (415) 555-0132; {_luhn_complete('411111111111111')}; {_iban('NL', 'ABNA0417164300')}"
    found = find_pii(text)
    assert found == sorted(found)
    assert all(a.end <= b.start for a, b in pairwise(found))
    assert {(f.kind, f.action) for f in found} == {(Kind.PII, Action.FLAG)}
    assert {f.type for f in found} == {"email", "ip_address", "phone", "credit_card", "iban"}
    assert {f.type for f in found} <= set(PII_TYPES)


# --- names -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def names() -> NameDetector:
    detector = NameDetector()
    detector.load()
    return detector


def test_a_person_name_in_prose_is_found(names):
    text = "Please send the signed contract to Maria Gonzalez before Friday."
    at = text.index("Maria")
    assert names.find(text) == [Finding(at, at + len("Maria Gonzalez"), Kind.PII, "person")]


def test_code_identifiers_and_code_blocks_are_not_names(names):
    text = (
        "Call `getUserName()` and set userName = getUserName();\n"
        "```python\nclass MariaGonzalez:\n    def getUserName(self): return 'Maria Gonzalez'\n```\n"
        "The Docker daemon talks to Redis.\n"
    )
    assert names.find(text) == []


def test_a_name_deep_in_a_long_text_keeps_its_offset(names):
    filler = "The service reads the configuration and writes a report every hour.\n" * 400
    text = filler + "Questions go to Maria Gonzalez on the platform team.\n"
    at = text.index("Maria")
    assert len(text) > 25_000
    assert names.find(text) == [Finding(at, at + len("Maria Gonzalez"), Kind.PII, "person")]


# --- context -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "DATABASE_URL=postgres://billing:s3cr3t@db.example.com:5432/billing",
        "git clone https://" + "gh" + "s_" + "A1b2C3d4" * 4 + "@github.com/acme/site.git",
        "SENTRY_DSN=https://" + "0f" * 16 + "@o4412.ingest.us.sentry.io/5551",
        "ssh://deploy@build.example.org/srv/repo.git",
        "amqp://worker:pw@mq.example.com:5672/",
    ],
)
def test_the_user_part_of_a_url_is_not_an_email(text):
    assert [t for _, t in _found(text)] == []


def test_an_email_in_a_url_path_or_query_and_a_mailto_stay_emails():
    text = "https://example.com/invite?to=ana.lima@example.org and mailto:ops@example.net"
    assert _found(text) == [("ana.lima@example.org", "email"), ("ops@example.net", "email")]


@pytest.mark.parametrize(
    "text",
    [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "<FileVersion>12.4.201.77</FileVersion>",
        '[assembly: AssemblyFileVersion("3.18.140.9")]',
        '__version__ = "4.21.130.65"',
        '{"name": "agent", "version": "6.12.200.31"}',
        "ProductVersion is now 10.0.19041.1",
        "Upgrading the billing service to 5.16.120.44",
        "bumped from 7.2.190.11 to 7.2.190.12",
    ],
)
def test_four_part_versions_named_by_their_context_are_not_ips(text):
    assert _found(text) == []


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("host = 203.0.113.9", "203.0.113.9"),
        ("$ ssh root@198.51.100.4", "198.51.100.4"),
        ("server 8.8.8.8", "8.8.8.8"),
        ("nameserver 1.1.1.1", "1.1.1.1"),
        ("Connecting to 9.9.9.9 ...", "9.9.9.9"),
        ("GET /lookup/8.8.4.4 200", "8.8.4.4"),
        ("version: 2\nhost: 203.0.113.77", "203.0.113.77"),
        ("the resolver was upgraded; it now answers on 198.51.100.53", "198.51.100.53"),
        ("socat tcp-connect:198.51.100.23:4444 exec:/bin/sh", "198.51.100.23"),
        ("dial tcp:2001:db8::7", "2001:db8::7"),
    ],
)
def test_addresses_in_logs_configs_and_commands_are_still_ips(text, ip):
    assert _found(text) == [(ip, "ip_address")]


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ('<a href="tel:+1 415 555 0132">call</a>', "+1 415 555 0132"),
        ("TEL;TYPE=cell:+44 20 7946 0958", "+44 20 7946 0958"),
        ("Phone:415-555-0132", "415-555-0132"),
        ("7,Ana Lima,ana@example.org,(415) 555-0132,2024-02-01T10:00:00Z", "(415) 555-0132"),
        ("7,Ana Lima,415-555-0132,42017", "415-555-0132"),
    ],
)
def test_a_phone_after_a_colon_or_before_a_csv_field_is_found(text, phone):
    assert [(v, t) for v, t in _found(text) if t == "phone"] == [(phone, "phone")]


@pytest.mark.parametrize(
    "text",
    [
        "started 10:30:00 2024-01-01",
        "at 12:415-555-0132",
        "total 415 555 0132,50 EUR",
    ],
)
def test_times_and_decimal_amounts_around_digit_groups_are_not_phones(text):
    assert [v for v, t in _found(text) if t == "phone"] == []
