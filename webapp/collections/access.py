"""Who may see or change a collection: its owner changes it; shared users and everyone (when
public) read it; anyone else gets 404."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.collections.models import Collection


def collection_for(user, pk, owner: bool = False) -> Collection:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such collection.") from None
    collection = Collection.objects.visible_to(user).filter(pk=pk).first()
    if collection is None:
        raise Http404("No such collection.")
    if owner and collection.owner_id != user.pk:
        raise PermissionDenied("Only the collection's owner can change it.")
    return collection
