"""Reading the nodes' ``/diagnostics`` statuses in tests."""

from test.support.ros_probe import Received


def statuses(diagnostics: Received, node: str) -> list[dict[str, str]]:
    """Every status published by ``node`` (its key values), oldest first."""
    found = []
    for array in diagnostics.messages:
        for status in array.status:
            if status.name.rsplit("/", 1)[-1] == node:
                found.append({item.key: item.value for item in status.values})
    return found


def latest(diagnostics: Received, node: str) -> dict[str, str]:
    """The newest status of ``node``, or an empty dict."""
    found = statuses(diagnostics, node)
    return found[-1] if found else {}


def figure(diagnostics: Received, node: str, key: str, default: float = -1.0) -> float:
    """A number from the newest status of ``node`` that has ``key``."""
    for status in reversed(statuses(diagnostics, node)):
        if key in status:
            try:
                return float(status[key])
            except ValueError:
                return default
    return default


def agent_rates(diagnostics: Received, min_steps: int = 20) -> list[float]:
    """The agent's measured rates (Hz), from statuses after its first ``min_steps`` steps."""
    return [
        float(status["rate_hz"])
        for status in statuses(diagnostics, "agent")
        if "rate_hz" in status and int(status.get("steps", "0")) >= min_steps
    ]
