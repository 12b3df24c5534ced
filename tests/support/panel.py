"""Talking to the web panel (``live_agent.view.web.WebPanel``) as its page does."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def post_control(
    url: str, name: str, value: object, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    """POST ``{"name": name, "value": value}`` to the panel at ``url`` (ending in /) + control;
    returns the HTTP status and the JSON reply (an error's too)."""
    request = urllib.request.Request(
        url + "control",
        data=json.dumps({"name": name, "value": value}).encode(),
        headers={"Content-Type": content_type},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
