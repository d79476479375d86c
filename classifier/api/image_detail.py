"""The image detail page's data: the datasets app's arrays plus this app's prediction history."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.evaluation import probability_history
from webapp.datasets.access import image_for
from webapp.datasets.pixels import image_payload


class ProbabilityRowSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="null for the default score")
    name = serializers.CharField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="by class name")


class ChannelSerializer(serializers.Serializer):
    name = serializers.CharField()
    colour = serializers.CharField(help_text="default display colour, #rrggbb")
    values = serializers.CharField(
        help_text="base64 of float32 little-endian, row-major [height, width]; NaN = not acquired"
    )
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    hotspot = serializers.FloatField(
        allow_null=True, help_text="default upper clip (99th percentile of non-zero)"
    )
    hotspot_percentile = serializers.FloatField(
        help_text="where the hotspot clip sits among the pixels, 0-100"
    )
    quantiles = serializers.ListField(
        child=serializers.FloatField(), help_text="the 0, 0.1, ..., 100th percentiles of the acquired pixels"
    )


class ImageDataSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    mz = serializers.FloatField(allow_null=True)
    shape = serializers.ListField(
        child=serializers.IntegerField(), allow_null=True, help_text="[height, width]"
    )
    downsample = serializers.IntegerField(help_text="always 1: the values are at native resolution")
    dtype = serializers.CharField(help_text="float32")
    channels = ChannelSerializer(many=True, help_text="one for ion images, 2-4 for microscopy")
    tic = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        allow_null=True,
        help_text="the dataset's TIC, block-averaged to at most 256 px",
    )
    tic_downsample = serializers.IntegerField()
    history = ProbabilityRowSerializer(many=True)


class ImageData(APIView):
    """The image's values at native resolution (per channel, base64 float32), the dataset's
    TIC and the image's probabilities from every model version."""

    @extend_schema(responses={200: ImageDataSerializer})
    def get(self, request, pk: int):
        image = image_for(request.user, pk)
        return Response({**image_payload(image), "history": probability_history(image)})
