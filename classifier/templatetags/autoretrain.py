"""{% auto_retrain_notice project %}: why automatic retraining is waiting or paused, once."""

from __future__ import annotations

from django import template

from classifier.receivers import auto_retrain_state

register = template.Library()


@register.inclusion_tag("pages/_auto_retrain.html")
def auto_retrain_notice(project) -> dict:
    state = auto_retrain_state(project)
    return {"state": state, "notice": state.notice if state is not None else ""}
