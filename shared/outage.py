"""An outage of something every message needs is not the message's fault.

A handler that cannot reach a dependency (today the case key bucket, whose JetStream leader a
cluster elects again when a node goes down) raises :class:`DependencyUnavailable`. A consumer then
holds its batch and tries it again once the dependency answers, instead of spending the messages'
deliveries: a few seconds' election must not send referrals to the dead letters. Plain Python.
"""

from __future__ import annotations


class DependencyUnavailable(RuntimeError):
    """A dependency did not answer. The message names the dependency and the error's type, never
    data."""
