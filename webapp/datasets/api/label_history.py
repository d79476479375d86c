"""Label history API: per-image history, undo of the caller's last change, restore (owners)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.datasets import label_history
from webapp.datasets.access import image_for
from webapp.datasets.models import LabelEvent
from webapp.projects.access import project_for
from webapp.projects.models import Role


def label_source(request) -> str:
    """Pages mark their calls (static/js/ionsieve.js); everything else is an API call."""
    return (
        LabelEvent.Source.PAGE
        if request.headers.get("X-IonSieve-Source") == "page"
        else LabelEvent.Source.API
    )


class LabelEventSerializer(serializers.Serializer):
    user = serializers.CharField(help_text="whose label changed")
    label = serializers.CharField(allow_null=True, help_text="the new label; null when it was removed")
    previous = serializers.CharField(allow_null=True, help_text="the label before; null when there was none")
    at = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=LabelEvent.Source.choices)
    unsure = serializers.BooleanField()
    by = serializers.CharField(
        allow_null=True, help_text="who made the change (differs from user for restores)"
    )


class RestoreSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="set labels back to what they were at this time")
    user = serializers.CharField(
        allow_null=True,
        required=False,
        default=None,
        help_text="only this user's labels; null for everyone's",
    )


class ChangedSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="how many labels changed")


class UndoneSerializer(ChangedSerializer):
    images = serializers.ListField(
        child=serializers.IntegerField(), help_text="ids of the images changed back"
    )


class ImageLabelHistory(APIView):
    """Every change of every user's label on one image, newest first."""

    @extend_schema(responses={200: LabelEventSerializer(many=True)})
    def get(self, request, pk: int):
        im = image_for(request.user, pk)
        return Response([label_history.event_json(e) for e in label_history.for_image(im.pk)])


class RestoreLabels(APIView):
    """Owners: set one user's labels (or everyone's) back to what they were at a time."""

    @extend_schema(request=RestoreSerializer, responses={200: ChangedSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.OWNER)
        ser = RestoreSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        user = None
        if ser.validated_data["user"]:
            # Former members too: their labels stay in the project after they leave.
            user = get_user_model().objects.filter(username=ser.validated_data["user"]).first()
            if user is None:
                raise ValidationError({"user": [f"There is no user '{ser.validated_data['user']}'."]})
        n = label_history.restore(project, ser.validated_data["at"], user=user, actor=request.user)
        return Response({"changed": n})


class UndoLabels(APIView):
    """Annotators: revert the caller's last label change in the project (survives reloads)."""

    @extend_schema(request=None, responses={200: UndoneSerializer})
    def post(self, request, slug: str):
        project = project_for(request.user, slug, need=Role.ANNOTATOR)
        ids = label_history.undo_last(project, request.user)
        return Response({"changed": len(ids), "images": ids})
