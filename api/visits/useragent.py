"""What the User-Agent header says about the browser, OS and device type (ua-parser)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

_TABLET_HINTS = ("ipad", "tablet", "kindle", "playbook", "nexus 7", "nexus 9", "nexus 10")


@dataclass(frozen=True, slots=True)
class Device:
    browser: str
    os: str
    device_type: str
    """desktop, mobile, tablet, bot or other."""


def _device_type(ua: str, os: str, device_family: str, device_brand: str) -> str:
    lowered = ua.lower()
    family = device_family.lower()
    if device_brand == "Spider" or family == "spider":
        return "bot"
    if any(hint in family or hint in device_brand.lower() for hint in _TABLET_HINTS):
        return "tablet"
    if os in {"iOS", "Android"} or "mobile" in lowered:
        # Android tablets omit "Mobile" from their user agent.
        return "mobile" if os == "iOS" or "mobile" in lowered else "tablet"
    if os in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora"}:
        return "desktop"
    return "other"


@lru_cache(maxsize=4096)
def describe(user_agent: str) -> Device:
    """Browser and OS families (with the major version) and the device type. Unknown parts
    are "Other"; an empty header gives empty strings."""
    if not user_agent:
        return Device("", "", "")
    result = parse(user_agent[:1000])
    browser = result.user_agent.family if result.user_agent else "Other"
    major = result.user_agent.major if result.user_agent else None
    os = result.os.family if result.os else "Other"
    device = result.device
    device_type = _device_type(
        user_agent, os, device.family if device else "", (device.brand or "") if device else ""
    )
    label = f"{browser} {major}" if major else browser
    return Device(browser=label[:64], os=os[:64], device_type=device_type)
