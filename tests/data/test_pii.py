"""Tests for bigmodel_fast.data.pii: what is masked, what merely looks similar and stays, Chinese text, switches."""
from __future__ import annotations

import re

import pytest

from bigmodel_fast.data.pii import KINDS, PIIConfig, PIIStats, mask_documents, mask_pii
from bigmodel_fast.data.sources import Document

EMAIL, IP, PHONE = "<EMAIL>", "<IP_ADDRESS>", "<PHONE>"


# The PII in each text is marked with «»: the test masks the text without the marks and expects every marked span
# replaced by the kind's token.
MASKED = {
    "email": [
        "Write to «john.doe@example.com» today.",
        "«a+tag_1@mail.example.co.uk», «b-c@x.io»",
        "(«admin@python.org»)",
    ],
    "ipv4": [
        "Server at «192.168.1.1», gateway «10.0.0.254».",
        "ping «8.8.8.8»:53 or «0.0.0.0»/0",
        "host=«255.255.255.255»",
    ],
    "ipv6": [
        "addr «2001:0db8:85a3:0000:0000:8a2e:0370:7334» ok",
        "addr «2001:db8::1» ok",
        "link «fe80::1ff:fe23:4567:890a%eth0» up",
        "mapped «::ffff:192.0.2.128» here",
        "url http://[«2001:db8:85a3::8a2e:370:7334»]:8080/",
        "«FE80::0202:B3FF:FE1E:8329»",
    ],
    "phone": [
        "Call «+1 (555) 123-4567» now.",
        "Call «(555) 123-4567» or «555-123-4567» or «555.123.4567».",
        "Toll free «1-800-555-1234».",
        "London «+44 20 7946 0958», Paris «+33 1 23 45 67 89».",
        "Mobile «+8613812345678» or «+86 138 1234 5678»",
        "手机«13812345678»",
        "Tel: «159-1234-5678» / «186 1234 5678»",
    ],
}
TOKENS = {"email": EMAIL, "ipv4": IP, "ipv6": IP, "phone": PHONE}
_MARK = re.compile("«([^»]*)»")


@pytest.mark.parametrize("kind,marked", [(kind, m) for kind, texts in MASKED.items() for m in texts])
def test_masks(kind, marked):
    text, expected = _MARK.sub(r"\1", marked), _MARK.sub(TOKENS[kind], marked)
    out, counts = mask_pii(text)
    assert out == expected
    assert counts[kind] == expected.count(TOKENS[kind])
    assert sum(counts.values()) == counts[kind]


@pytest.mark.parametrize("text", [
    # dates and times
    "Released 2023-10-01 at 12:30, updated 2023.10.01 12:30:45.123 and 01/02/2023.",
    "The ratio is 16:9; see John 3:16.",
    # version numbers, decimals, numeric runs
    "Python 3.11.2 and Python 3.11.2.1 fix it; pin novas==3.1.1.3; see version 1.2.3.4 and v1.2.3.4.",
    "OID 1.2.840.113549.1.1.11 and 1.2.3.4.5 are not addresses; neither is 300.1.1.1 or 01.02.03.04.",
    "pi is 3.14159, e is 2.71828, and 1,234,567.89 dollars.",
    # ISBNs, IDs, long numbers
    "ISBN 978-3-16-148410-0, ISBN 0-306-40615-2, ISBN 7-5012-1234-5, 9787501212345.",
    "身份证号110101199003071234,订单号13812345678901,金额13812345678.5元。",
    "Call 555 1234 or ext. 1234; 1+1=2; +1 2 3 is math.",
    # things with colons that are not IPv6
    "a[1::2] and x[::2], std::map, Example::, 00:1A:2B:3C:4D:5E, ::1 is loopback, 1:2:3.",
    # e-mail look-alikes
    "@mention, user@localhost, name@ domain.com, a@b, email me at [at] example dot com.",
])
def test_look_alikes_stay(text):
    out, counts = mask_pii(text)
    assert out == text, out
    assert counts == dict.fromkeys(KINDS, 0)


def test_chinese_text():
    text = ("如有疑问请联系张先生,电话13812345678,邮箱zhang.san@example.com。"
            "服务器地址为192.168.0.1,IPv6地址为2001:db8::8a2e:370:7334。"
            "客服热线+86 10 6512 3456。1998年1月1日,版本3.11.2发布,价格3.50元。")
    out, counts = mask_pii(text)
    assert out == (f"如有疑问请联系张先生,电话{PHONE},邮箱{EMAIL}。"
                   f"服务器地址为{IP},IPv6地址为{IP}。"
                   f"客服热线{PHONE}。1998年1月1日,版本3.11.2发布,价格3.50元。")
    assert counts == {"email": 1, "ipv4": 1, "ipv6": 1, "phone": 2}


def test_full_width_chinese_digits_after_nfkc():
    import unicodedata

    raw = "电话：１３８１２３４５６７８。"
    assert mask_pii(unicodedata.normalize("NFKC", raw))[0] == f"电话:{PHONE}。"


def test_switches():
    text = "mail a@example.com from 10.1.2.3 or 2001:db8::1, call 555-123-4567"
    for kind in KINDS:
        cfg = PIIConfig(**{kind: False})
        out, counts = mask_pii(text, cfg)
        assert counts[kind] == 0
        assert sum(counts.values()) == 3
    out, counts = mask_pii(text, PIIConfig(email=False, ipv4=False, ipv6=False, phone=False))
    assert out == text and not any(counts.values())
    out, _ = mask_pii(text, PIIConfig(email_token="[E]", ip_token="[IP]", phone_token="[P]"))
    assert out == "mail [E] from [IP] or [IP], call [P]"


def test_mask_documents():
    docs = [Document(text="a@example.com", source="s"), Document(text="nothing here", source="s", line=2)]
    stats = PIIStats()
    out = list(mask_documents(docs, stats=stats))
    assert [d.text for d in out] == [EMAIL, "nothing here"]
    assert out[1] is docs[1] and out[0].source == "s"
    assert stats.masked["email"] == 1
    assert stats.seen == stats.kept == 2 and stats.modified == 1
    assert stats.to_dict() == {"seen": 2, "kept": 2, "modified": 1,
                               "masked": {"email": 1, "ipv4": 0, "ipv6": 0, "phone": 0}}


def test_linear_time_on_pathological_input():
    import time

    nasty = "1." * 20000 + "@" + "a-" * 20000 + ":" * 5000 + "+1 " * 5000
    t0 = time.perf_counter()
    mask_pii(nasty)
    assert time.perf_counter() - t0 < 2.0
