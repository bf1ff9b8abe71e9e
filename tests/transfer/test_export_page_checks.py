"""``stores.bulk.spliced_page`` and ``turn_dict_page``: a page of records' stored turns checked at once
(for the splice, or as dicts), which must decide for every record exactly what ``spliced_turns`` or
``turn_dicts`` decides for it alone, whatever else is on the page (an odd record next to good ones,
turns that would only parse joined across two records, a value encrypted with another key)."""

from __future__ import annotations

import pytest

from lkpersist.crypto.codec import PLAIN, PLAIN_GUARD
from lkpersist.crypto.fernet import FernetCodec
from lkpersist.crypto.keys import generate_key
from lkpersist.model.session import Turn
from lkpersist.stores.bulk import spliced_page, spliced_turns, turn_dict_page, turn_dicts


def _payloads(name: str, count: int) -> list[bytes]:
    return [Turn(("user", "assistant")[i % 2], f"{name} {i} «é»", 1_800_000_000.25 + i, f"{name}-{i}").to_json().encode()
            for i in range(count)]


GOOD = [_payloads("a", 3), [], _payloads("b", 1), _payloads("c", 10)]
ODD = {
    "integer timestamp": [b'{"role":"user","text":"x","timestamp":1800000000,"item_id":null}'],
    "keys in another order": [b'{"text":"x","role":"user","timestamp":1800000000.5,"item_id":null}'],
    "not json": [b"{not json"],
    "two values in one payload": [_payloads("d", 1)[0] + b"," + _payloads("d", 1)[0]],
    "a line break between tokens": [_payloads("e", 1)[0].replace(b',"text"', b',\n"text"')],
    "a timestamp beyond 2**63": [b'{"role":"user","text":"x","timestamp":1e19,"item_id":null}'],
}


@pytest.mark.parametrize("codec", [PLAIN, PLAIN_GUARD])
def test_a_page_of_good_records_reads_as_each_record_alone(codec: object) -> None:
    page = spliced_page(GOOD, codec)  # type: ignore[arg-type]
    assert page == [spliced_turns(payloads, codec) for payloads in GOOD]  # type: ignore[arg-type]
    assert all(dicts is not None for dicts in page)
    assert [len(dicts or ()) for dicts in page] == [3, 0, 1, 10]


@pytest.mark.parametrize("odd", ODD.values(), ids=ODD.keys())
@pytest.mark.parametrize("place", [0, 2, 4])
def test_an_odd_record_is_left_out_alone(odd: list[bytes], place: int) -> None:
    pages = [*GOOD]
    pages.insert(place, odd)
    found = spliced_page(pages, PLAIN)
    assert found == [spliced_turns(payloads, PLAIN) for payloads in pages]
    assert found[place] is None
    assert sum(dicts is None for dicts in found) == 1


def test_turns_that_only_parse_across_two_records_are_not_spliced() -> None:
    whole = _payloads("f", 2)
    first, second = whole[0], whole[1]
    # a record ending in the first half of a turn and the next starting with its second half: joined over
    # the page they would read as turns, each alone they do not
    cut = first.index(b',"timestamp"')
    pages = [_payloads("g", 1) + [first[:cut]], [first[cut + 1:], second]]
    assert spliced_page(pages, PLAIN) == [None, None]
    # with a record of two turns in one payload after them, the page holds as many turns as payloads
    assert spliced_page([*pages, ODD["two values in one payload"]], PLAIN) == [None, None, None]
    assert spliced_page([whole[:1] + [first + b"," + second], []], PLAIN) == [None, []]


def test_encrypted_turns_are_never_spliced() -> None:
    codec = FernetCodec([generate_key()])
    pages = [[codec.encode(payload.decode()).encode() for payload in payloads] for payloads in GOOD]
    assert spliced_page(pages, codec) == [None] * len(pages)


@pytest.mark.parametrize("odd", [None, *ODD.values()], ids=["none", *ODD.keys()])
def test_turn_dict_page_reads_each_record_as_turn_dicts_alone(odd: list[bytes] | None) -> None:
    pages = [*GOOD] if odd is None else [GOOD[0], odd, *GOOD[1:]]
    found = turn_dict_page(pages, PLAIN)
    assert found == [turn_dicts(payloads, PLAIN) for payloads in pages]
    assert all(dicts is not None for dicts in found[:1] + found[2:])  # the good ones, whatever is beside them


def test_turn_dict_page_decrypts_and_leaves_out_a_record_it_cannot() -> None:
    codec, other = FernetCodec([generate_key()]), FernetCodec([generate_key()])
    pages = [[codec.encode(payload.decode()).encode() for payload in payloads] for payloads in GOOD]
    assert turn_dict_page(pages, codec) == [turn_dicts(payloads, PLAIN) for payloads in GOOD]
    pages.insert(1, [other.encode(_payloads("h", 1)[0].decode()).encode()])
    found = turn_dict_page(pages, codec)
    assert found[1] is None
    assert [dicts for index, dicts in enumerate(found) if index != 1] == [turn_dicts(payloads, PLAIN) for payloads in GOOD]
