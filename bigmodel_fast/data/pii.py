"""PII masking: e-mail addresses, IP addresses and phone numbers are replaced by placeholder tokens.

:func:`mask_pii` replaces, in this order (each kind switchable in :class:`PIIConfig`):

1. ``email``: ``local@domain.tld`` (ASCII local part of letters, digits and ``._%+-``; dotted domain ending in a
   2+ letter TLD) -> ``<EMAIL>``;
2. ``ipv6`` (see 4; first, so that an IPv4-mapped address is one match);
3. ``ipv4``: four dot-separated decimal octets 0..255 without leading zeros -> ``<IP_ADDRESS>``; not when the
   run goes on with more dotted numbers (``1.2.3.4.5``, OIDs), not three-part versions (``3.11.2``), and not after
   a version word or pin (``version 1.2.3.4``, ``v1.2.3.4``, ``Python 3.11.2.1``, ``版本 1.2.3.4``,
   ``pkg==1.2.3.4``);
4. ``ipv6``: full (``2001:0db8:85a3:0000:0000:8a2e:0370:7334``), compressed (``2001:db8::1``, ``fe80::1%eth0``)
   and IPv4-mapped (``::ffff:192.0.2.1``) forms, validated with :mod:`ipaddress` -> ``<IP_ADDRESS>``; a
   compressed form needs three groups, or two with one of at least three hex digits, so times (``12:30``,
   ``12:30:45``), MAC addresses, Python slices (``a[1::2]``), C++ scopes (``std::map``) and ``::1`` stay;
5. ``phone``: international ``+CC`` numbers (``+1 (555) 123-4567``, ``+86 138 1234 5678``,
   ``+44 20 7946 0958``; 8..15 digits as E.164), US/NANP numbers with a separator
   (``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``1-800-555-1234``) and Chinese mobile numbers
   (``1[3-9]`` + 9 digits, optionally split 3-4-4: ``13812345678``, ``138-1234-5678``) -> ``<PHONE>``.

Things that merely look similar stay: dates (``2023-10-01``, ``2023.10.01``), version numbers, decimals
(``3.14159``), ISBNs (``978-3-16-148410-0``, ``ISBN 7-5012-1234-5``), longer digit runs (an 18-digit ID or a
13-digit ISBN never yields an 11-digit mobile number from its middle), clock times.

Boundaries are ASCII-only on purpose: in Chinese text a number or address is usually glued to CJK characters
(``联系电话13812345678。``, ``邮箱zhang@example.com``), which ``\\b``/``\\w`` (Unicode-aware) would treat as part of
the same word.

``mask_pii(text, cfg)`` returns ``(masked_text, counts)`` with ``counts = {"email": n, "ipv4": n, "ipv6": n,
"phone": n}``; :func:`mask_documents` does the same over :class:`~bigmodel_fast.data.sources.Document` s, counting
in a :class:`~bigmodel_fast.data.stats.PIIStats`.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .sources import Document
from .stats import PIIStats

__all__ = ["PIIConfig", "PIIStats", "mask_pii", "mask_documents", "KINDS"]

KINDS = ("email", "ipv4", "ipv6", "phone")


@dataclass(frozen=True)
class PIIConfig:
    """Which kinds of PII :func:`mask_pii` replaces, and with what."""

    email: bool = True
    ipv4: bool = True
    ipv6: bool = True
    phone: bool = True
    email_token: str = "<EMAIL>"
    ip_token: str = "<IP_ADDRESS>"
    phone_token: str = "<PHONE>"


# ------------------------------------------------------------------------------------------------ e-mail

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])"
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?"  # local part: no leading/trailing dot
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)

# ------------------------------------------------------------------------------------------------ IPv4

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?<![A-Za-z0-9_.\-]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9A-Za-z_]|\.[0-9])")
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:version|versions|ver|release|python|build|rev|revision|v)\.?\s*|版本\s*|[=<>!~]=\s*)$", re.IGNORECASE)

# ------------------------------------------------------------------------------------------------ IPv6

_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_:.])"
    rf"(?:{_H}|:)?(?::(?:{_H})?){{2,7}}"
    r"(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"  # IPv4 suffix (::ffff:1.2.3.4)
    r"(?:%[0-9A-Za-z]+)?"  # zone index
    r"(?![0-9A-Za-z_:]|\.[0-9])"
)

# ------------------------------------------------------------------------------------------------ phones

_PHONE = re.compile(
    r"(?<![0-9A-Za-z_+\-.])(?:"
    # international: +CC then 1..6 groups, optional single separators, optional (area)
    r"(?P<intl>\+[1-9][0-9]{0,2}(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9]{1,5})){1,6})"
    # US / NANP: (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-1234
    r"|(?P<us>(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[.\-])[0-9]{3}[.\-][0-9]{4})"
    # Chinese mobile: 13812345678, 138 1234 5678, 138-1234-5678
    r"|(?P<cn>1[3-9][0-9](?:[0-9]{8}|(?P<sep>[ \-])[0-9]{4}(?P=sep)[0-9]{4}))"
    r")(?![0-9A-Za-z_]|[.\-][0-9])"
)


def _ipv4_ok(text: str, m: re.Match[str]) -> bool:
    return _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()) is None


def _ipv6_ok(s: str) -> bool:
    addr = s.split("%", 1)[0]
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    if "::" not in addr:
        return True  # full form: 8 groups (or 6 + IPv4)
    groups = [g for g in addr.replace("::", ":").split(":") if g and "." not in g]
    if "." in addr:
        return True  # IPv4-mapped/compatible
    return len(groups) >= 3 or (len(groups) == 2 and max(map(len, groups)) >= 3)


def _phone_ok(m: re.Match[str]) -> bool:
    if m.group("intl") is not None:
        s = m.group("intl")
        digits = sum(c.isdigit() for c in s)
        if not 8 <= digits <= 15 or s.count("(") != s.count(")"):
            return False
        last = re.split(r"[ .\-()]", s)[-1]
        return len(last) >= 2  # "+1 2 3 4 5 6 7 8" is arithmetic, not a number
    return True


def mask_pii(text: str, cfg: PIIConfig | None = None) -> tuple[str, dict[str, int]]:
    """Return ``(text with PII replaced, counts per kind)``; see the module docstring for what is matched."""
    cfg = cfg if cfg is not None else PIIConfig()
    counts = dict.fromkeys(KINDS, 0)
    if cfg.email and "@" in text:
        text, counts["email"] = _EMAIL.subn(cfg.email_token, text)
    if cfg.ipv6 and text.count(":") >= 2:  # before IPv4: "::ffff:192.0.2.1" is one address
        def ipv6(m: re.Match[str]) -> str:
            if _ipv6_ok(m.group(0)):
                counts["ipv6"] += 1
                return cfg.ip_token
            return m.group(0)
        text = _IPV6.sub(ipv6, text)
    if cfg.ipv4 and "." in text:
        def ipv4(m: re.Match[str]) -> str:
            if _ipv4_ok(m.string, m):
                counts["ipv4"] += 1
                return cfg.ip_token
            return m.group(0)
        text = _IPV4.sub(ipv4, text)
    if cfg.phone:
        def phone(m: re.Match[str]) -> str:
            if _phone_ok(m):
                counts["phone"] += 1
                return cfg.phone_token
            return m.group(0)
        text = _PHONE.sub(phone, text)
    return text, counts


def mask_documents(
    docs: Iterable[Document], cfg: PIIConfig | None = None, stats: PIIStats | None = None
) -> Iterator[Document]:
    """Yield ``docs`` with PII masked; ``stats`` (optional) counts the documents (all kept), those changed
    (``modified``) and the replacements per kind (``stats.masked``)."""
    cfg = cfg if cfg is not None else PIIConfig()
    stats = stats if stats is not None else PIIStats()
    masked = stats.masked
    for doc in docs:
        text, c = mask_pii(doc.text, cfg)
        for k, v in c.items():
            masked[k] = masked.get(k, 0) + v
        stats.seen += 1
        stats.kept += 1
        if text != doc.text:
            stats.modified += 1
            doc = dataclasses.replace(doc, text=text)
        yield doc
